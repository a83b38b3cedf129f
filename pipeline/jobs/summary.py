"""The jobs of a run's summary and report: the summary JSON, the policy-optimisation and
loss-curve figures of a run, and the findings page (rule at_a_glance).

Each reads the `snakemake` object of its rule's script (workflow/scripts/<job>.py is one call
into this module) and calls the pure functions of pipeline/analysis and pipeline/plots.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pipeline.analysis.findings import ENTRIES, judge, write_page
from pipeline.analysis.summary import summarize_run
from pipeline.plots.training import plot_loss_curves, plot_policy_optimization
from pipeline.runtime import job, rule_log

log = logging.getLogger("pipeline.jobs")


def summarize(smk) -> None:
    with job(rule_log(smk)):
        settings = smk.params.settings
        steps_paths = dict(zip(smk.params.policies, smk.input.steps, strict=True))
        benchmarks = {
            stage: [p for p in smk.input.benchmarks if f"/{stage}" in p]
            for stage in smk.params.stages
        }
        summary = summarize_run(
            settings,
            steps_paths,
            smk.input.history,
            benchmarks,
            smk.params.log_vocab,
            smk.params.paper_acceleration_ratio,
        )
        Path(smk.output[0]).write_text(json.dumps(summary, indent=2) + "\n")
        log.info(
            "acceleration ratio %.3f (paper %s)",
            summary["acceleration_ratio"],
            summary["paper_acceleration_ratio"],
        )


def figure_policy_optimization(smk) -> None:
    with job(rule_log(smk)):
        plot_policy_optimization(smk.input.history, smk.params.settings, smk.output)


def figure_loss_curves(smk) -> None:
    with job(rule_log(smk)):
        plot_loss_curves(
            smk.input.conventional,
            smk.input.near_optimal,
            smk.params.settings,
            smk.output,
            paper_style=smk.params.paper_style,
        )


def at_a_glance(smk) -> None:
    with job(rule_log(smk)):
        chosen = [entry for entry in ENTRIES if entry.name in smk.params.entries]
        findings = {entry.name: judge(entry) for entry in chosen}
        for name, found in findings.items():
            log.info("%s: %s (%s; paper: %s)", name, found.verdict, found.ours, found.paper)
        write_page(chosen, findings, smk.output.md, smk.output.csv, smk.output.json)
