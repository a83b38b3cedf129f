"""The jobs of workflow/rules/minibatch.smk: minibatch AdamW with online weighting
(`minibatch_online`, beyond the paper; pipeline/policy/minibatch.py).

`minibatch_run`: one seed's run of one policy: its τ or B chosen on the held-out part of the
desired set (the test set is not read), then the run with CT from the whole desired set; writes
the per-step curve (Parquet) and the costs (JSON: the choice, FLOPs per step, wall seconds).
`minibatch_online_table`: the table over seeds and the figure.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from pipeline.analysis.minibatch import (
    header,
    mean_curves,
    policy_table,
    read_curve,
    runs_table,
)
from pipeline.analysis.online import read_costs
from pipeline.analysis.tables import write_table
from pipeline.plots.minibatch import plot_minibatch
from pipeline.results import write_atomic
from pipeline.runtime import job, resolve_device, resolve_dtype, rule_log

log = logging.getLogger("pipeline.minibatch")


def offline_scores(smk, n_train: int):
    """`offline_selection`'s scores: the weight of each training example under the saved
    time-independent policy (its first row: every row is the same), after checking that it was
    optimised on this run's data set."""
    from pipeline.jobs.training import load_policy  # torch: after job() set the environment

    p = smk.params
    if p.scores_data != p.settings["data_name"]:
        raise ValueError(
            f"offline_selection: the policy of {p.scores_run} was optimised on the data set "
            f"{p.scores_data}, this run's is {p.settings['data_name']}: the time-independent "
            "variant of `transformer_ablation` must keep the main `transformer.data`"
        )
    policy = load_policy(Path(smk.input.policies) / f"{p.scores_policy}.pt")
    if policy.shape[-1] != n_train:
        raise ValueError(f"offline_selection: {p.scores_run}'s policy weighs {policy.shape[-1]} "
                         f"examples, the training set has {n_train}")  # fmt: skip
    return policy[0]


def minibatch_run(smk) -> None:
    """One policy's minibatch run at one seed: results/<run>/minibatch/<policy>/."""
    with job(rule_log(smk), smk.threads, uses_torch=True):
        # here, not at the top: torch loads after job() has set the thread environment
        from pipeline.data.tinystories import perturbed_mask
        from pipeline.experiment import initial_parameters, load_run
        from pipeline.policy import minibatch, online
        from pipeline.training.descent import TrainingDiverged

        p = smk.params
        block, policy, seed = p.minibatch, p.policy, p.seed
        data_dir = Path(smk.input.data[0]).parent
        device, dtype = resolve_device(p.device), resolve_dtype(p.dtype)
        run = load_run(p.settings, data_dir, device, dtype)
        theta0 = initial_parameters(run, seed)
        perturbed = perturbed_mask(data_dir / "train.parquet")
        split = load_run(online.split_settings(run.settings), data_dir, device, dtype)
        held_out = online.held_out_run(split)  # the held-out desired examples as `test`
        chosen = minibatch.choose_value(held_out, theta0, policy, block, seed, perturbed)
        pool, kept = None, {}
        if policy == "offline_selection":
            pool = minibatch.offline_pool(offline_scores(smk, run.n_train),
                                          float(block["offline_fraction"]))  # fmt: skip
            kept = {"kept": int(pool.numel()),
                    "kept_perturbed_share": float(perturbed[pool].float().mean()),
                    "scores_from": p.scores_run}  # fmt: skip
            log.info("offline_selection: %d examples kept, %.0f %% of them perturbed",
                     kept["kept"], 100 * kept["kept_perturbed_share"])  # fmt: skip
        if chosen["grid"]:
            log.info("%s: %s chosen (held-out loss per candidate: %s)", policy, chosen["value"],
                     dict(zip(chosen["grid"], chosen["held_out_loss"], strict=True)))  # fmt: skip
        try:
            curve = minibatch.run_policy(run, theta0, policy, chosen["value"], block, seed,
                                         perturbed, pool)  # fmt: skip
        except TrainingDiverged as err:
            raise RuntimeError(f"{err}: lower `minibatch_online.lr` (= {block['lr']:g})") from None
        step_flops = minibatch.step_flops(run, theta0, policy, chosen["value"], block, perturbed)
        curve["flops"] = curve["step"].astype("int64") * step_flops  # training FLOPs to step t
        costs = {
            "run": run.settings["name"], "seed": seed, "policy": policy,
            "value": chosen["value"], "grid": chosen["grid"],
            "held_out_loss": chosen["held_out_loss"], "selection_seconds": chosen["seconds"],
            "run_seconds": float(curve["step_seconds"].sum()), "step_flops": step_flops,
            "flops": step_flops * int(block["steps"]), **kept,
        }  # fmt: skip
        final = curve["test_loss"].dropna().iloc[-1]
        log.info("%s: final test loss %.4f, %.1f s, %.3g FLOPs per step", policy, final,
                 costs["run_seconds"], step_flops)  # fmt: skip
        controls = "`minibatch_online.steps` sets its rows"
        write_atomic(smk.output.curve, lambda path: curve.to_parquet(path, index=False), controls)
        Path(smk.output.costs).write_text(json.dumps(costs, indent=2) + "\n")


def minibatch_online_table(smk) -> None:
    """results/tables/minibatch_online.{csv,md} (per policy, mean ± sd), ..._runs.csv (per seed
    and policy) and results/figures/minibatch_online.{pdf,png}."""
    with job(rule_log(smk)):
        p, inp = smk.params, smk.input
        order = list(p.order)
        runs: dict[int, dict[str, tuple[pd.DataFrame, dict]]] = {}
        for (seed, policy), curve, costs in zip(p.runs, inp.curves, inp.costs, strict=True):
            runs.setdefault(seed, {})[policy] = (read_curve(curve), read_costs(costs))
        per_run = runs_table(runs, p.log_vocab)
        per_run.to_csv(smk.output.runs, index=False)
        numbers, shown = policy_table(per_run, order)
        write_table(numbers, shown, smk.output.csv, smk.output.md,
                    header(sorted(runs), p.minibatch))  # fmt: skip
        log.info("per policy:\n%s", shown.to_string(index=False))
        plot_minibatch(mean_curves(runs), order, [smk.output.pdf, smk.output.png])
