"""The online policies beside the conventional and near-optimal ones (beyond the paper).

Per seed (`online_runs`): test AR, test CR and J (the desired AUC, Σ_{t=1..T} L_dsr(θ_t)) of
each policy, and the cost of finding it, in wall seconds and in conventional runs:

- conventional: one run (nothing to find);
- near-optimal: the policy optimisation's epochs (Σ of `policy_history.parquet`'s `seconds`),
  over the conventional evaluation run timed in the online job of the same run;
- online: its τ candidates' runs (one per candidate of `online.tau_grid`) and its own run, over
  that conventional run, all timed alike in one job (`results/<run>/online/costs.json`).

and in FLOPs counted on the run's shapes (`results/<run>/online/flops.json`, pipeline/policy/
flops.py), over the FLOPs of a conventional run: the same ratios free of the machine's load.

Then mean ± sd over the seeds; and for the main run the Learning-Law statistics of the online
policies (SIM, CR, Property 4.1) with the CR the run's SIM–CR fit predicts from their SIM.
Torch-free, like every analysis job.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analysis.learning_law import SimCrFit, analyse_policy, read_examples
from pipeline.analysis.tables import mean_sd_columns
from pipeline.config import ONLINE_POLICIES, at_grid_end
from pipeline.metrics import acceleration_ratio, compression_ratio
from pipeline.results import read_pipeline_parquet

CURVES = ["step", "desired_loss", "test_loss"]
#: (column, heading, format) of the per-policy table, in order.
METRICS = [
    ("test_ar", "test AR", ".2f"),
    ("test_auc_ratio", "test AUC ratio", ".3f"),
    ("ar_minus_near_optimal", "AR − near-optimal AR", "+.2f"),
    ("test_cr", "test CR", ".3f"),
    ("j", "J (desired AUC)", ".1f"),
    ("cost_seconds", "cost: wall s", ".1f"),
    ("cost_conventional_runs", "cost: conventional runs", ".3g"),
    ("cost_flops", "cost: FLOPs", ".3g"),
    ("cost_flops_conventional_runs", "cost: conventional runs of FLOPs", ".3g"),
]


def _curves(path: str | Path) -> pd.DataFrame:
    return read_pipeline_parquet(path, CURVES).to_pandas().sort_values("step")


def seed_rows(
    seed: int,
    run: str,
    dumps: dict[str, str],
    costs: dict,
    flops: dict,
    history: str | Path | None,
    steps: int,
    log_vocab: float,
) -> list[dict]:
    """One row per policy of one seed. `dumps`: policy → steps.parquet, with `conventional`,
    `near_optimal` (absent when that seed has no optimised policy) and every online policy;
    `costs`: the wall seconds measured in the online job; `flops`: the counted FLOPs of the
    `online_flops` job (pipeline/policy/flops.py)."""
    curves = {name: _curves(path) for name, path in dumps.items()}
    conv = curves["conventional"]
    conventional_auc = float(conv["test_loss"].iloc[1:].sum())
    conventional_seconds = float(costs["conventional_seconds"])
    conventional_flops = float(flops["conventional_run"])
    near_ar = math.nan
    if "near_optimal" in curves:
        near_ar = acceleration_ratio(
            conv["test_loss"].to_numpy(), curves["near_optimal"]["test_loss"].to_numpy()
        )
    rows = []
    for name, frame in curves.items():
        test_auc = float(frame["test_loss"].iloc[1:].sum())
        ar = acceleration_ratio(conv["test_loss"].to_numpy(), frame["test_loss"].to_numpy())
        if name == "conventional":
            seconds, tau, work = conventional_seconds, math.nan, conventional_flops
            at_edge = False
        elif name == "near_optimal":
            epochs = read_pipeline_parquet(history, ["seconds"]).to_pandas()
            seconds, tau, at_edge = float(epochs["seconds"].sum()), math.nan, False
            # every row is a policy epoch's adjoint pass, the last one's too (its gap)
            work = len(epochs) * float(flops["policy_epoch"])
        else:
            cost = costs["policies"][name]
            seconds = float(cost["seconds"])
            tau = math.nan if cost["tau"] is None else float(cost["tau"])
            at_edge = at_grid_end(tau, cost["grid"])
            work = float(flops["policies"][name]["total"])
        rows.append(
            {
                "seed": seed,
                "run": run,
                "policy": name,
                "tau": tau,
                "tau_at_edge": at_edge,
                "test_ar": ar,
                "test_cr": compression_ratio(test_auc, steps, log_vocab),
                "j": float(frame["desired_loss"].iloc[1:].sum()),
                "cost_seconds": seconds,
                "cost_conventional_runs": seconds / conventional_seconds,
                "cost_flops": work,
                "cost_flops_conventional_runs": work / conventional_flops,
                "test_auc_ratio": conventional_auc / test_auc,
                "ar_minus_near_optimal": ar - near_ar,
            }
        )
    return rows


def policy_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per policy (conventional, near-optimal, online ones): seeds, mean and sd of each metric."""
    rows = []
    for policy in ["conventional", "near_optimal", *ONLINE_POLICIES]:
        group = runs[runs["policy"] == policy]
        if group.empty:
            continue
        taus = [f"{t:g}" + ("*" if edge else "")
                for t, edge in zip(group["tau"], group["tau_at_edge"], strict=True)
                if np.isfinite(t)]  # fmt: skip
        row: dict = {"policy": policy, "seeds": len(group), "tau": " ".join(taus)}
        for column, _, _ in METRICS:
            values = group[column].to_numpy(dtype=float)
            if column == "ar_minus_near_optimal":  # only the seeds with a near-optimal policy
                values = values[~np.isnan(values)]
            if len(values) == 0:
                row[f"{column}_mean"] = row[f"{column}_sd"] = math.nan
                continue
            row[f"{column}_mean"] = float(values.mean())
            row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The policy table for people: mean ± sd per cell."""
    shown = pd.DataFrame({"policy": table["policy"], "seeds": table["seeds"]})
    shown = shown.assign(**mean_sd_columns(table, METRICS))
    shown["τ (per seed)"] = table["tau"].replace("", "–")
    return shown


def header(experiment: str, seeds: list[int], near_optimal_seeds: list[int]) -> str:
    """The Markdown table's heading: what the rows and columns are."""
    return "\n".join(
        [
            f"# Online policies beside the near-optimal one: {experiment}",
            "",
            "Beyond the paper (no paper number to compare with). Mean ± sd over seeds "
            f"{', '.join(map(str, seeds))}; the near-optimal policy at seeds "
            f"{', '.join(map(str, near_optimal_seeds))}. AR and CR on the test set, J the AUC of "
            "the desired loss. Online policies (pipeline/policy/online.py): γ_t from the "
            "contributions CT_t on the desired set at θ_t; `online_greedy` Π_Δ(1/N + τ·CT_t), "
            "`online_positive` ∝ max(CT_t, 0), `online_softmax` softmax(CT_t/τ); τ chosen by "
            "the lowest AUC on the held-out quarter of the desired set. Cost of finding the "
            "policy: the near-optimal one's policy epochs, an online one's τ runs (one per "
            "candidate) and its own run; in wall seconds and in conventional runs timed alike "
            "(the machine may be shared: timings are noisy). Test AUC ratio: the conventional "
            "policy's test AUC over the policy's (> 1: less area under the test loss; defined "
            "where AR swings on a flat curve). AR − near-optimal AR: at each seed that has a "
            "near-optimal policy, mean over those seeds (0: as fast; defined, unlike a share "
            "(AR − 1)/(AR_near-optimal − 1), when the near-optimal AR is near 1). τ marked * "
            "is at an edge of its candidate grid: a wider grid might choose further out.",
        ]
    )


def predicted_cr(fit: SimCrFit, sim: float) -> float:
    """The CR at which the fit SIM = c·ln(a/(b − CR)) gives `sim`: b − exp(ln a − SIM/c)."""
    if not fit.ok or fit.c in (None, 0) or not np.isfinite(sim):
        return math.nan
    return float(fit.b - math.exp(fit.log_a - sim / fit.c))


def online_learning_law(
    dumps: dict[str, tuple[str, str]],
    fit_path: str | Path,
    total_steps: int,
    log_vocab: float,
    settings: dict,
) -> pd.DataFrame:
    """Per online policy of the main run: the Learning-Law row of every policy (SIM, CR,
    Property 4.1, …, as in policies.csv) and the CR the run's SIM–CR fit predicts from SIM."""
    fit = SimCrFit.from_json(Path(fit_path).read_text())
    rows = []
    for policy, (steps_path, examples_path) in dumps.items():
        steps = read_pipeline_parquet(steps_path, ["step", "test_loss"]).to_pandas()
        _, row = analyse_policy(steps, read_examples(examples_path), total_steps, settings)
        auc = float(steps.sort_values("step")["test_loss"].iloc[1:].sum())
        cr = compression_ratio(auc, total_steps, log_vocab)
        predicted = predicted_cr(fit, row["sim"])
        rows.append({"policy": policy, "cr": cr, "auc": auc, **row, "predicted_cr": predicted,
                     "predicted_cr_error": predicted - cr})  # fmt: skip
    return pd.DataFrame(rows)


def read_costs(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
