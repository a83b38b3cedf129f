"""The jobs of workflow/rules/ablation.smk: an experiment's ablation table and figure, and the
Perceptron seeds study."""

from __future__ import annotations

import json
import logging

import pandas as pd

from pipeline.analysis.ablation import (
    AblationRun,
    distribution_table,
    header,
    run_metrics,
    shown_distribution,
    shown_table,
    variant_table,
)
from pipeline.analysis.scale import fit_line, points_table, scale_markdown, scale_row, scale_summary
from pipeline.analysis.seeds import (
    correlation_footer,
    data_difficulty,
    difficulty_correlation,
    seeds_header,
)
from pipeline.analysis.tables import write_table
from pipeline.plots.ablation import plot_ablation, plot_seeds
from pipeline.plots.scale import plot_scale
from pipeline.runtime import job, rule_log

log = logging.getLogger("pipeline.ablation")


def ablation_runs_frame(smk) -> pd.DataFrame:
    """One row of `run_metrics` per run of the rule's `params.table["runs"]`, written to
    output.runs."""
    table = smk.params.table
    files = [
        AblationRun(variant, seed, run, conv, last, selected, history)
        for (variant, seed, run), conv, last, selected, history in zip(
            table["runs"],
            smk.input.conventional,
            smk.input.last,
            smk.input.selected,
            smk.input.history,
            strict=True,
        )
    ]
    runs = pd.DataFrame(
        [run_metrics(f, table["steps"][f.run], table["log_vocab"][f.run]) for f in files]
    )
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
    return runs


def ablation_table_job(smk) -> None:
    """results/tables/<experiment>_ablation.{csv,md} (per variant) and ..._runs.csv (per run)."""
    with job(rule_log(smk)):
        runs = ablation_runs_frame(smk)
        order = list(smk.params.variants)
        table = variant_table(runs, order)
        table.insert(1, "main", table["variant"] == smk.params.main)  # the main run's settings
        write_table(
            table,
            shown_table(table),
            smk.output.csv,
            smk.output.md,
            header(
                smk.params.table["kind"],
                smk.params.definitions,
                order,
                list(smk.params.seeds),
                smk.params.base,
                smk.params.main,
            ),
        )


def seeds_table_job(smk) -> None:
    """results/tables/perceptron_seeds.{csv,md}: the AR's distribution over many seeds, and
    ..._runs.csv with what makes each data draw easy or hard, ..._correlation.csv how the AR
    follows it."""
    with job(rule_log(smk)):
        runs = ablation_runs_frame(smk)
        difficulty = pd.DataFrame(
            [
                data_difficulty(train, desired)
                for train, desired in zip(smk.input.train, smk.input.desired, strict=True)
            ],
            index=[run for _, _, run in smk.params.table["runs"]],
        )
        runs = runs.join(difficulty, on="run")
        runs.to_csv(smk.output.runs, index=False)
        order = list(smk.params.variants)
        table = distribution_table(runs, order)
        correlation = difficulty_correlation(runs, order)
        correlation.to_csv(smk.output.correlation, index=False)
        write_table(
            table,
            shown_distribution(table),
            smk.output.csv,
            smk.output.md,
            seeds_header(order, list(smk.params.seeds)),
            correlation_footer(correlation),
        )


def ablation_figure_job(smk) -> None:
    with job(rule_log(smk)):
        plot_ablation(
            pd.read_csv(smk.input.runs), list(smk.params.variants), smk.output, smk.params.kind
        )


def seeds_figure_job(smk) -> None:
    with job(rule_log(smk)):
        plot_seeds(pd.read_csv(smk.input.runs), list(smk.params.variants), smk.output)


def scale_table_job(smk) -> None:
    """results/tables/transformer_scale.{csv,md,json} and ..._runs.csv: AR per run and scale,
    the fit against ln(T·N) and its extrapolation to the paper's scale."""
    with job(rule_log(smk)):
        runs = pd.DataFrame(
            [
                scale_row(point, seed, run, epochs, conv, last)
                for (point, seed, run), epochs, conv, last in zip(
                    smk.params.runs,
                    smk.params.policy_epochs,
                    smk.input.conventional,
                    smk.input.last,
                    strict=True,
                )
            ]
        )
        runs.to_csv(smk.output.runs, index=False)
        table = points_table(runs)
        table.to_csv(smk.output.csv, index=False)
        summary = scale_summary(runs, *smk.params.target)
        with open(smk.output.fit, "w") as file:
            json.dump(summary, file, indent=2)
        with open(smk.output.md, "w") as file:
            file.write(scale_markdown(table, summary))
        log.info("%s", scale_markdown(table, summary))


def scale_figure_job(smk) -> None:
    with job(rule_log(smk)):
        runs = pd.read_csv(smk.input.runs)
        fit = fit_line(runs["ln_TN"].to_numpy(), runs["test_ar"].to_numpy())
        plot_scale(points_table(runs), fit, tuple(smk.params.target), smk.output)
