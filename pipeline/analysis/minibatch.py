"""The minibatch AdamW comparison (`minibatch_online`): per seed and policy the metrics of its
test-loss curve against the conventional one of the same seed, and their mean ± sd per policy.

- test AR in steps: `metrics.acceleration_ratio` on the evaluated test losses (every
  `eval_every` steps, the same grid for every policy);
- test AR at equal FLOPs: the same first reach counted in FLOPs, AR · F_conv / F_policy with F
  the FLOPs of one training step (the desired gradient and the JVP of the online rules included);
- test CR: log|V| over the mean evaluated test loss after t = 0 (Σ_t L / T on the grid);
- perturbed weight share: the mean over steps of the weight the batch's perturbed examples get;
- wall seconds of the run's training steps (the evaluations and the held-out choice apart).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis.tables import format_number, mean_sd_columns, summary_over_seeds
from pipeline.config import at_grid_end
from pipeline.metrics import acceleration_ratio, auc, compression_ratio
from pipeline.results import read_pipeline_parquet

#: (column of the per-run table, heading, format) of the shown table, over seeds.
METRICS = [
    ("test_ar", "test AR (steps)", ".2f"),
    ("test_ar_flops", "test AR (equal FLOPs)", ".2f"),
    ("test_cr", "test CR", ".3f"),
    ("final_test_loss", "final test loss", ".3f"),
    ("perturbed_share", "perturbed weight share", ".2f"),
    ("step_flops_ratio", "FLOPs per step (conv. = 1)", ".2f"),
    ("run_seconds", "wall s (run)", ".1f"),
    ("selection_seconds", "wall s (choice on held-out)", ".1f"),
]


def read_curve(path: str | Path) -> pd.DataFrame:
    """A minibatch run's curve (`curve.parquet`)."""
    return read_pipeline_parquet(path).to_pandas()


def test_cr(test_loss: np.ndarray, log_vocab: float) -> float:
    """CR = log|V| / mean of the evaluated test losses after t = 0 (the points are every
    `eval_every` steps, so the curve's own count stands for T)."""
    return compression_ratio(auc(test_loss), len(test_loss) - 1, log_vocab)


def run_row(
    seed: int,
    policy: str,
    curve: pd.DataFrame,
    costs: dict,
    conventional: pd.DataFrame,
    conventional_costs: dict,
    log_vocab: float,
) -> dict:
    """The metrics of one seed's run of `policy` against that seed's conventional run."""
    test = curve["test_loss"].dropna().to_numpy()
    reference = conventional["test_loss"].dropna().to_numpy()
    ar = acceleration_ratio(reference, test)
    flops_ratio = costs["step_flops"] / conventional_costs["step_flops"]
    return {
        "seed": seed,
        "policy": policy,
        "value": costs["value"],
        "value_at_grid_end": costs["value"] is not None
        and at_grid_end(costs["value"], costs["grid"]),
        "test_ar": ar,
        "test_ar_flops": ar / flops_ratio,
        "test_cr": test_cr(test, log_vocab),
        "final_test_loss": float(test[-1]),
        "perturbed_share": float(curve["perturbed_share"].mean()),
        "step_flops": costs["step_flops"],
        "step_flops_ratio": flops_ratio,
        "run_seconds": costs["run_seconds"],
        "selection_seconds": costs["selection_seconds"],
    }


def runs_table(runs: dict[int, dict[str, tuple[pd.DataFrame, dict]]], log_vocab: float
               ) -> pd.DataFrame:  # fmt: skip
    """One row per seed and policy: {seed: {policy: (curve, costs)}}, each seed with its
    `conventional` run."""
    rows = []
    for seed, policies in runs.items():
        if "conventional" not in policies:
            raise ValueError(f"seed {seed} has no conventional run: every ratio needs it")
        conventional, conventional_costs = policies["conventional"]
        rows += [run_row(seed, policy, curve, costs, conventional, conventional_costs, log_vocab)
                 for policy, (curve, costs) in policies.items()]  # fmt: skip
    return pd.DataFrame(rows)


def chosen_values(group: pd.DataFrame) -> str:
    """The τ or B chosen per seed, an end of its grid marked *."""
    if group["value"].isna().all():
        return "–"
    return ", ".join(f"{format_number(v, '.3g')}{'*' if end else ''}"
                     for v, end in zip(group["value"], group["value_at_grid_end"],
                                       strict=True))  # fmt: skip


def policy_table(runs: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, shown): per policy (in `order`) the mean and sd over seeds of every metric,
    and the same formatted as 'mean ± sd' with the chosen τ / B per seed."""
    rows = []
    for policy in order:
        group = runs[runs["policy"] == policy]
        rows.append({"policy": policy, "seeds": len(group),
                     **summary_over_seeds(group, [c for c, _, _ in METRICS]),
                     "chosen": chosen_values(group)})  # fmt: skip
    numbers = pd.DataFrame(rows)
    shown = pd.DataFrame({"policy": numbers["policy"], **mean_sd_columns(numbers, METRICS),
                          "τ or B per seed": numbers["chosen"]})  # fmt: skip
    return numbers, shown


def mean_curves(runs: dict[int, dict[str, tuple[pd.DataFrame, dict]]]) -> pd.DataFrame:
    """Per policy and evaluated step: the mean and sd over seeds of the test loss, and the mean
    cumulative FLOPs of training to that step (the curve's `flops`, written by its job)."""
    frames = []
    for seed, policies in runs.items():
        for policy, (curve, _) in policies.items():
            points = curve[curve["test_loss"].notna()]
            frames.append(pd.DataFrame({"seed": seed, "policy": policy,
                                        "step": points["step"].to_numpy(),
                                        "flops": points["flops"].to_numpy(np.int64),
                                        "test_loss": points["test_loss"].to_numpy()}))  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    grouped = frame.groupby(["policy", "step"], sort=False)
    out = grouped.agg(flops=("flops", "mean"), test_loss=("test_loss", "mean"),
                      test_loss_sd=("test_loss", "std")).reset_index()  # fmt: skip
    out["test_loss_sd"] = out["test_loss_sd"].fillna(0.0)
    return out


def header(seeds: list[int], block: dict) -> str:
    """The Markdown table's heading: what was run and how to read it."""
    grid = ", ".join(f"{k} {v}" for k, v in block["tau_grid"].items())
    desired = ("the whole desired set" if block["desired_batch"] is None else
               f"{block['desired_batch']} desired examples drawn anew each step")  # fmt: skip
    return (
        "# Minibatch AdamW with online weighting (beyond the paper)\n\n"
        f"Transformer, seeds {', '.join(map(str, seeds))} (mean ± sd); T = {block['steps']} "
        f"AdamW steps of b = {block['batch_size']} (lr {block['lr']:g}, warm-up "
        f"{block['warmup']}, cosine to {block['min_lr_fraction']:g}·lr, weight decay "
        f"{block['weight_decay']:g}, betas ({block['beta1']:g}, {block['beta2']:g})), test loss "
        f"every {block['eval_every']} steps; CT's desired gradient over {desired}. AR: first "
        "reach of the conventional final test loss, in steps and in training FLOPs (the "
        "desired gradient and the JVP of CT included; the "
        f"evaluations and the held-out choice not). τ ({grid}) and B "
        f"({block['candidate_batch']}) chosen per seed on the held-out part of the desired "
        "set, one run per candidate (\\* an end of its grid). For orientation, the full-batch "
        "policies at this size: results/tables/online_policies_transformer.md.\n"
    )
