"""pipeline/paths.py against Snakemake's own DAG: for every file of a smoke-preset dry run of
every target, `writing_rule` names the rule Snakemake plans to write it with."""

from __future__ import annotations

import csv
import io

from pipeline.paths import PAPER_FIGURES, WRITERS, writing_rule
from pipeline.results import rebuild_hint
from tests.conftest import SMOKE, snakemake

#: Every target of the workflow: `all` and those outside it.
TARGETS = (
    "all", "perceptron_ablation", "transformer_ablation", "perceptron_seeds", "transformer_scale",
    "policy_frontier", "optimum_k", "benchmark", "device_check", "minibatch_online",
)  # fmt: skip


def planned_writers(workdir) -> dict[str, str]:
    """{output file: rule} of every job of a dry run, from `--detailed-summary`."""
    result = snakemake(workdir, *TARGETS, "--detailed-summary", "--configfile", SMOKE)
    rows = csv.DictReader(io.StringIO(result.stdout), delimiter="\t")
    return {row["output_file"]: row["rule"] for row in rows}


def test_writing_rule_names_the_rule_the_dag_plans_for_every_output(tmp_path):
    planned = planned_writers(tmp_path)
    assert len(planned) > 200 and "evaluate_online" in planned.values()
    wrong = {path: (writing_rule(path), rule) for path, rule in planned.items()
             if writing_rule(path) != rule}  # fmt: skip
    assert not wrong, f"(writing_rule, Snakemake's rule) differ: {wrong}"
    # inside a working directory too, as the jobs name their files
    for path, rule in list(planned.items())[:20]:
        assert writing_rule(tmp_path / path) == rule
    # the bug this replaced: the online dumps named evaluate_policy
    online = next(p for p, rule in planned.items() if "/dumps/online_" in p)
    assert "rule `evaluate_online`" in rebuild_hint(online)
    # every pattern of the table is used by the DAG (no stale entry), the paper's figures too
    used = set(planned.values())
    stale = [rule for _, rule in WRITERS if "{" not in rule and rule not in used]
    assert not stale, stale
    assert set(PAPER_FIGURES) <= used


def test_files_outside_the_pipeline_have_no_writing_rule():
    for path in ("elsewhere/file.parquet", "results/logs/perceptron/optimize_policy.log",
                 "results/tables/unknown.csv", "results/figures/figure99.png"):  # fmt: skip
        assert writing_rule(path) is None, path
