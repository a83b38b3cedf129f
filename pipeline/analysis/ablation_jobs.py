"""The jobs of workflow/rules/ablation.smk: the Perceptron ablation's table and figure."""

from __future__ import annotations

import logging
import math

import pandas as pd

from pipeline.analysis.ablation import (
    AblationRun,
    header,
    run_metrics,
    shown_table,
    variant_table,
)
from pipeline.analysis.tables import write_table
from pipeline.runtime import job, rule_log

log = logging.getLogger("pipeline.ablation")


def ablation_table_job(smk) -> None:
    """results/tables/perceptron_ablation.{csv,md} (per variant) and ..._runs.csv (per run)."""
    with job(rule_log(smk)):
        files = [
            AblationRun(variant, seed, run, conv, last, selected, history)
            for (variant, seed, run), conv, last, selected, history in zip(
                smk.params.runs,
                smk.input.conventional,
                smk.input.last,
                smk.input.selected,
                smk.input.history,
                strict=True,
            )
        ]
        runs = pd.DataFrame([run_metrics(f, smk.params.steps[f.run], math.log(2)) for f in files])
        runs.to_csv(smk.output.runs, index=False)
        for row in runs.itertuples():
            log.info(
                "%s: test AR last %.3f, selected %.3f (epoch %d), desired AR %.3f, J −%.1f%%",
                row.run,
                row.test_ar_last,
                row.test_ar_selected,
                row.selected_epoch,
                row.desired_ar,
                row.j_reduction_pct,
            )
        order = list(smk.params.variants)
        table = variant_table(runs, order)
        write_table(
            table,
            shown_table(table),
            smk.output.csv,
            smk.output.md,
            header(smk.params.definitions, order, list(smk.params.seeds)),
        )


def ablation_figure_job(smk) -> None:
    from pipeline.plots.ablation import plot_ablation

    with job(rule_log(smk)):
        plot_ablation(pd.read_csv(smk.input.runs), list(smk.params.variants), smk.output)
