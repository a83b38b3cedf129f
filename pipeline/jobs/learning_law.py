"""The jobs of workflow/rules/learning_law.smk: the Learning-Law tables of a run and their
figures. Like pipeline/jobs/training.py, each reads its rule's `snakemake` object and calls pure
functions (pipeline.analysis.learning_law, pipeline.plots.learning_law)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from pipeline.analysis.learning_law import (
    analyse_run,
    perturbed_weight_share,
    policy_epoch,
    read_examples,
    write_tables,
)
from pipeline.plots.learning_law import (
    plot_perturbed_weight,
    plot_property41,
    plot_property42,
    plot_property43,
    plot_sim_cr,
    plot_sim_per_step,
)
from pipeline.results import read_pipeline_parquet
from pipeline.runtime import job, rule_log

log = logging.getLogger("pipeline.learning_law")


def _dumps(smk) -> dict[str, tuple[str, str]]:
    """Policy name → (steps.parquet, examples.parquet), in the rule's policy order."""
    return dict(
        zip(
            smk.params.policies,
            zip(smk.input.steps, smk.input.examples, strict=True),
            strict=True,
        )
    )


def learning_law(smk) -> None:
    """SIM, the SIM–CR fit and Properties 4.1–4.3 of every policy of a run."""
    with job(rule_log(smk)):
        settings = smk.params.settings
        tables = analyse_run(
            _dumps(smk),
            settings["kind"],
            settings["train"]["steps"],
            smk.params.log_vocab,
            smk.params.learning_law,
            smk.params.heatmap_max_step,
            smk.params.seed,
        )
        names = ["policies", "sim_per_step", "fit", "property42", "property43"]
        write_tables(tables, {name: getattr(smk.output, name) for name in names})
        columns = ["policy", "cr", "sim", "property41_fraction", "perfectly_learned_count"]
        log.info("per policy:\n%s", tables.policies[columns].to_string(index=False))
        log.info("SIM–CR fit: %s", tables.fit)
        if not tables.fit.ok:
            log.warning("no SIM–CR fit: %s", tables.fit.message)


def perturbed_weight(smk) -> None:
    """Weight share and zero-weight fraction of perturbed vs clean TinyStories examples."""
    with job(rule_log(smk)):
        train = read_pipeline_parquet(smk.input.train).to_pandas()
        if "perturbed" not in train.columns:
            raise ValueError(
                f"{smk.input.train} has no `perturbed` column: the perturbed-weight table is for "
                "TinyStories runs only (transformer, transformer-…)"
            )
        cr = pd.read_csv(smk.input.policies).set_index("policy")["cr"]
        tolerance = smk.params.learning_law["zero_weight_tolerance"]
        frames = []
        for policy, path in zip(smk.params.policies, smk.input.examples, strict=True):
            share = perturbed_weight_share(
                read_examples(path), train["perturbed"].to_numpy(), tolerance
            )
            labels = {"policy": policy, "epoch": policy_epoch(policy), "cr": cr[policy]}
            frames.append(share.assign(**labels))
        table = pd.concat(frames, ignore_index=True)
        labels = ["policy", "epoch", "cr"]
        table = table[labels + [c for c in table.columns if c not in labels]]
        Path(smk.output[0]).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(smk.output[0], index=False)
        log.info(
            "mean over steps:\n%s",
            table.groupby("policy", sort=False)[
                ["perturbed_weight_share", "perturbed_zero_weight_fraction"]
            ]
            .mean()
            .to_string(),
        )


def figure_sim_per_step(smk) -> None:
    """Figure 6: SIM_t against the test loss, one line per policy coloured by CR."""
    with job(rule_log(smk)):
        plot_sim_per_step(smk.input.per_step, smk.params.settings, smk.output)


def figure_sim_cr(smk) -> None:
    """Figures 7 and 3b: SIM against CR with the fit SIM = c·ln(a / (b − CR))."""
    with job(rule_log(smk)):
        plot_sim_cr(
            smk.input.policies,
            smk.input.fit,
            smk.params.settings,
            smk.output,
            paper_style=smk.params.paper_style,
            online_path=smk.input.get("online"),
        )


def figure_property41(smk) -> None:
    """Figure 8: the share of non-contributive examples with zero weight, against CR."""
    with job(rule_log(smk)):
        plot_property41(smk.input.policies, smk.params.settings, smk.output)


def figure_property42(smk) -> None:
    """Figure 9: CDF of the relative weight of perfectly learned examples."""
    with job(rule_log(smk)):
        plot_property42(
            smk.input.property42,
            smk.input.policies,
            smk.params.settings,
            smk.params.loss_threshold,
            smk.output,
        )


def figure_property43(smk) -> None:
    """Figure 10: heat map of γ_{t,n} of sampled contributive examples, near-optimal policy."""
    with job(rule_log(smk)):
        plot_property43(
            smk.input.property43,
            smk.params.settings,
            smk.params.max_step,
            smk.params.sample_size,
            smk.output,
        )


def figure_perturbed_weight(smk) -> None:
    """Weight of perturbed vs clean examples over training, for policies along the optimisation."""
    with job(rule_log(smk)):
        plot_perturbed_weight(smk.input.table, smk.params.settings, smk.output)
