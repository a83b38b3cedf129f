"""The jobs of workflow/rules/optimum.smk: the J–test frontier's table and figure
(`policy_frontier`) and the optimum's test AR against K (`optimum_k`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from pipeline import paper
from pipeline.analysis import judges
from pipeline.analysis.frontier import (
    frontier_header,
    frontier_table,
    k_header,
    k_table,
    law_header,
    law_rows,
    law_table,
    pareto_front,
    path_points,
    shown_law_table,
    shown_table,
    with_test_auc_ratio,
)
from pipeline.analysis.optimum_verdicts import (
    acceleration_at,
    convergence,
    property41_at_optimum,
    sim_at_optimum,
    verdicts_header,
    verdicts_table,
    weakest,
)
from pipeline.analysis.tables import write_table
from pipeline.plots.frontier import plot_frontier, plot_optimum_k
from pipeline.results import read_pipeline_parquet
from pipeline.runtime import job, rule_log

log = logging.getLogger("pipeline.optimum")


def study_points(smk) -> pd.DataFrame:
    """Every point of a study: each run's history (params.runs: path, seed, run, in the order
    of input.history) and, per seed, the conventional and online policies (input.online, in the
    order of params.seeds), with the test AUC ratio against the seed's conventional policy."""
    frames = [
        path_points(read_pipeline_parquet(history).to_pandas(), path, seed, run)
        for (path, seed, run), history in zip(smk.params.runs, smk.input.history, strict=True)
    ]
    for seed, online in zip(smk.params.seeds, smk.input.online, strict=True):
        points = pd.read_csv(online)
        points.insert(1, "seed", seed)
        frames.append(points)
    points = pd.concat(frames, ignore_index=True)
    conventional = points[points["path"] == "conventional"].set_index("seed")["test_auc"]
    return with_test_auc_ratio(points, conventional.to_dict())


def frontier_table_job(smk) -> None:
    """results/tables/policy_frontier_<kind>.{csv,md} and its points (_points.csv)."""
    with job(rule_log(smk)):
        points = study_points(smk)
        points.to_csv(smk.output.points, index=False)
        table = frontier_table(points, list(smk.params.paths), smk.params.near_optimal_gap)
        header = frontier_header(
            smk.params.kind,
            list(smk.params.seeds),
            list(smk.params.paths),
            smk.params.near_optimal_gap,
            paper.ACCELERATION_RATIO[smk.params.kind],
        )
        write_table(table, shown_table(table), smk.output.csv, smk.output.md, header)
        for row in table.itertuples():
            log.info("%s: J %.4g, test AR %.3f, test AUC ratio %.3f, gap/J %.3g (%s)", row.row,
                     row.objective_mean, row.test_acceleration_ratio_mean,
                     row.test_auc_ratio_mean, row.relative_gap_mean, row.picked)  # fmt: skip


def frontier_figure_job(smk) -> None:
    """results/figures/policy_frontier_<kind>.{pdf,png} from the table job's points."""
    with job(rule_log(smk)):
        points = pd.read_csv(smk.input.points)
        paths = list(smk.params.paths)
        front = pareto_front(points)  # over every point: the paths' and the online policies'
        picked = zip(front["path"], front["epoch"], strict=True)
        log.info("Pareto front: %s", " ".join(f"{path}@{epoch}" for path, epoch in picked))
        plot_frontier(points, front, paths, smk.params.kind, [smk.output.pdf, smk.output.png])


def optimum_k_table_job(smk) -> None:
    """results/tables/optimum_k_<kind>.{csv,md} and its points (_points.csv, with K)."""
    with job(rule_log(smk)):
        points = study_points(smk)
        points["k"] = points["path"].map(smk.params.sizes)
        points.to_csv(smk.output.points, index=False)
        table = k_table(points, list(smk.params.paths), smk.params.sizes,
                        smk.params.near_optimal_gap)  # fmt: skip
        header = k_header(
            smk.params.kind, list(smk.params.seeds), paper.ACCELERATION_RATIO[smk.params.kind]
        )
        write_table(table, shown_table(table), smk.output.csv, smk.output.md, header)


def optimum_k_figure_job(smk) -> None:
    """results/figures/optimum_k_<kind>.{pdf,png}."""
    with job(rule_log(smk)):
        points = pd.read_csv(smk.input.points)
        lowest = points.dropna(subset=["k"])
        lowest = lowest.loc[lowest.groupby(["path", "seed"])["objective"].idxmin()]
        table = pd.read_csv(smk.input.table)
        plot_optimum_k(lowest, table, smk.params.kind, [smk.output.pdf, smk.output.png])


def optimum_learning_law_table_job(smk) -> None:
    """results/tables/optimum_learning_law_<kind>.{csv,md}: SIM, Property 4.1 and the SIM–CR
    fit of the conventional and the lowest-J policy of each law path, over seeds."""
    with job(rule_log(smk)):
        rows = []
        for (path, seed, _), policies, fit, history in zip(
            smk.params.runs, smk.input.policies, smk.input.fit, smk.input.history, strict=True
        ):
            rows += law_rows(
                pd.read_csv(policies),
                json.loads(Path(fit).read_text()),
                read_pipeline_parquet(history, ["epoch", "objective"]).to_pandas(),
                path,
                seed,
            )
        rows = pd.DataFrame(rows)
        rows.to_csv(smk.output.rows, index=False)
        order = ["conventional"] + [f"{p}: lowest J" for p in smk.params.paths]
        table = law_table(rows, order)
        seeds = sorted(rows["seed"].unique())
        write_table(table, shown_law_table(table), smk.output.csv, smk.output.md,
                    law_header(smk.params.kind, seeds, list(smk.params.paths)))  # fmt: skip


def optimum_verdicts_job(smk) -> None:
    """results/tables/optimum_verdicts_<kind>.{csv,md}: Figures 4, 5 and 6–10 judged against
    the optimum (pipeline/analysis/optimum_verdicts.py)."""
    with job(rule_log(smk)):
        kind = smk.params.kind
        frontier, law = pd.read_csv(smk.input.frontier), pd.read_csv(smk.input.law)
        paper_ar = paper.ACCELERATION_RATIO[kind]
        findings = [
            convergence("Figure 4", frontier, smk.params.near_optimal_gap),
            acceleration_at("Figure 5 (lowest J)", frontier, "lowest J", paper_ar),
            acceleration_at(
                "Figure 5 (validation-selected)", frontier, "validation-selected", paper_ar
            ),
        ]
        runs = list(zip(smk.params.runs, smk.params.n_train, smk.input.policies,
                        smk.input.property42, smk.input.property43, strict=True))  # fmt: skip
        for path in smk.params.paths:
            findings += [sim_at_optimum(f"Figures 6–7 ({path})", law, path),
                         property41_at_optimum(f"Figure 8 ({path})", law, path)]  # fmt: skip
            mine = [run for run in runs if run[0][0] == path]
            findings.append(weakest(f"Figure 9 ({path})", [
                (seed, judges.property42("", pd.read_parquet(learned), pd.read_csv(policies)))
                for (_, seed, _), _, policies, learned, _ in mine
            ]))  # fmt: skip
            findings.append(weakest(f"Figure 10 ({path})", [
                (seed, judges.property43("", pd.read_parquet(sample), {"N": n}))
                for (_, seed, _), n, _, _, sample in mine
            ]))  # fmt: skip
        table = verdicts_table(findings)
        header = verdicts_header(kind, list(smk.params.seeds), list(smk.params.paths))
        write_table(table, table, smk.output.csv, smk.output.md, header)
        for finding in findings:
            log.info("%s: %s (%s)", finding.item, finding.verdict, finding.ours)
