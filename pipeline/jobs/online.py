"""The job of workflow/rules/online.smk that compares the online policies with the others."""

from __future__ import annotations

import logging

import pandas as pd

from pipeline.analysis.online import (
    header,
    online_learning_law,
    policy_table,
    read_costs,
    seed_rows,
    shown_table,
)
from pipeline.analysis.tables import write_table
from pipeline.config import ONLINE_POLICIES
from pipeline.plots.online import plot_online_policies
from pipeline.runtime import job, rule_log

log = logging.getLogger("pipeline.online")


def online_policies_job(smk) -> None:
    """results/tables/online_policies_<experiment>.{csv,md} (per policy, mean ± sd), ..._runs.csv
    (per seed and policy), the figure, and the main run's online Learning-Law statistics."""
    with job(rule_log(smk)):
        p, inp = smk.params, smk.input
        near = dict(zip(p.near_optimal_seeds, zip(inp.near_optimal, inp.history, strict=True),
                        strict=True))  # fmt: skip
        rows = []
        for i, (seed, run) in enumerate(p.runs):
            online = inp.online[i * len(ONLINE_POLICIES) : (i + 1) * len(ONLINE_POLICIES)]
            dumps = {"conventional": inp.conventional[i]}
            history = None
            if seed in near:
                dumps["near_optimal"], history = near[seed]
            dumps.update(zip(ONLINE_POLICIES, online, strict=True))
            rows += seed_rows(seed, run, dumps, read_costs(inp.costs[i]),
                              read_costs(inp.flops[i]), history, p.steps,
                              p.log_vocab)  # fmt: skip
        runs = pd.DataFrame(rows)
        runs.to_csv(smk.output.runs, index=False)
        table = policy_table(runs)
        seeds = [seed for seed, _ in p.runs]
        write_table(table, shown_table(table), smk.output.csv, smk.output.md,
                    header(p.experiment, seeds, list(p.near_optimal_seeds)))  # fmt: skip
        log.info("per policy:\n%s", shown_table(table).to_string(index=False))
        law = online_learning_law(
            dict(
                zip(ONLINE_POLICIES, zip(inp.law_steps, inp.law_examples, strict=True), strict=True)
            ),  # fmt: skip
            inp.fit,
            p.steps,
            p.log_vocab,
            p.learning_law,
        )
        law.to_csv(smk.output.law, index=False)
        log.info("Learning Law:\n%s", law[["policy", "cr", "sim", "predicted_cr"]].to_string())
        plot_online_policies(runs, p.experiment, [smk.output.pdf, smk.output.png])
