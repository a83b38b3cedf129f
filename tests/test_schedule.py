"""pipeline/bench/schedule.py: a Snakemake log's jobs, their times, the per-rule breakdown, the
files and the command line's errors, on a hand-written excerpt in Snakemake 9's format."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.bench import schedule
from tests.conftest import assert_drawn

# Five jobs on 2 cores: a local rule (3), a rule (7), a job that fails (8), a rule with a
# `message:` (9, named only by its `Finished` line) and one cut off by an interruption (12).
LOG = """\
Assuming unrestricted shared filesystem usage.
Building DAG of jobs...
Using shell: /usr/bin/bash
Provided cores: 2
Job stats:
job                 count
----------------  -------
tinystories_data        1
total                   5

Select jobs to execute...
Execute 2 jobs...
[Mon Dec  7 10:00:00 2026]
localrule tinystories_data:
    output: results/data/tiny/train.parquet, results/data/tiny/desired.parquet
    log: results/logs/data/tiny.log
    jobid: 3
    reason: Missing output files: results/data/tiny/train.parquet
    wildcards: dataset=tiny
    resources: tmpdir=/tmp, runtime=30, mem_mb=4000, mem=4 GB, mem_mib=3815
[Mon Dec  7 10:00:00 2026]
rule optimize_policy:
    input: results/data/tiny/train.parquet
    output: results/a/policies, results/a/policy_history.parquet
    log: results/logs/a/optimize_policy.log
    jobid: 7
    benchmark: results/benchmarks/a/optimize_policy.tsv
    reason: Missing output files: results/a/policy_history.parquet
    wildcards: run=a
    resources: tmpdir=/tmp, runtime=120
[Mon Dec  7 10:00:04 2026]
Finished jobid: 3 (Rule: tinystories_data)
1 of 5 steps (20%) done
Select jobs to execute...
Execute 1 jobs...
[Mon Dec  7 10:00:04 2026]
localrule optimize_policy:
    output: results/b/policies, results/b/policy_history.parquet
    jobid: 8
    wildcards: run=b
Command 'set -euo pipefail;  python optimize_policy.py' returned non-zero exit status 1.
[Mon Dec  7 10:01:04 2026]
Error in rule optimize_policy:
    message: None
    jobid: 8
    output: results/b/policies, results/b/policy_history.parquet
    log: results/logs/b/optimize_policy.log (check log file(s) for error details)
Removing output files of failed job optimize_policy since they might be corrupted:
results/b/policies
[Mon Dec  7 10:02:30 2026]
Finished jobid: 7 (Rule: optimize_policy)
2 of 5 steps (40%) done
Select jobs to execute...
[Mon Dec  7 10:02:30 2026]
Job 9: Evaluating the conventional policy of run a
Reason: Missing output files: results/a/dumps/conventional/steps.parquet
[Mon Dec  7 10:02:30 2026]
localrule learning_law:
    output: results/a/learning_law/stats.parquet
    jobid: 12
    wildcards: run=a
[Mon Dec  7 10:03:00 2026]
Finished jobid: 9 (Rule: evaluate_policy)
3 of 5 steps (60%) done
Terminating processes on user request, this might take some time.
"""


@pytest.fixture
def jobs() -> pd.DataFrame:
    return schedule.parse_log(LOG)


def test_parse_log_reads_each_jobs_rule_times_and_status(jobs):
    assert list(jobs["jobid"]) == [3, 7, 8, 9, 12]  # in order of start, ties by jobid
    by_id = jobs.set_index("jobid")
    assert list(by_id["rule"]) == [
        "tinystories_data",
        "optimize_policy",
        "optimize_policy",
        "evaluate_policy",
        "learning_law",
    ]
    assert list(by_id["local"]) == [True, False, True, False, True]
    assert list(by_id["status"]) == ["done", "done", "failed", "done", "unfinished"]
    assert by_id.at[3, "wildcards"] == "dataset=tiny"
    assert by_id.at[3, "output"] == "results/data/tiny/train.parquet"
    assert by_id.at[7, "start"] == pd.Timestamp("2026-12-07 10:00:00")
    assert by_id.at[7, "end"] == pd.Timestamp("2026-12-07 10:02:30")
    assert by_id["wall_s"].iloc[:4].tolist() == [4.0, 150.0, 60.0, 30.0]
    assert pd.isna(by_id.at[12, "end"]) and math.isnan(by_id.at[12, "wall_s"])


def test_the_run_and_the_per_rule_breakdown(jobs):
    run = schedule.summary(jobs)
    assert run["wall_s"] == 180.0  # 10:00:00 to the last end, 10:03:00
    assert run["jobs_wall_s"] == 4 + 150 + 60 + 30
    assert run["busy_cores"] == pytest.approx(244 / 180)
    assert (run["done"], run["failed"], run["unfinished"]) == (3, 1, 1)

    rules = schedule.per_rule(jobs).set_index("rule")
    assert list(rules.index) == [
        "optimize_policy",
        "evaluate_policy",
        "tinystories_data",
        "learning_law",
    ]  # most time first
    optimize = rules.loc["optimize_policy"]
    assert (optimize["jobs"], optimize["wall_s"], optimize["longest_s"]) == (2, 210.0, 150.0)
    assert optimize["longest_job"] == "run=a"
    assert optimize["share_of_run"] == pytest.approx(210 / 180)
    assert rules["share_of_jobs"].sum() == pytest.approx(1.0)
    assert rules["share_of_run"].sum() == pytest.approx(run["busy_cores"])
    law = rules.loc["learning_law"]
    assert (law["jobs"], law["unfinished"], law["wall_s"]) == (1, 1, 0.0)


def test_write_makes_the_table_the_page_and_the_gantt_chart(tmp_path):
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    out = tmp_path / "schedule"
    schedule.write(log, out)
    table = pd.read_csv(out / "schedule.csv")
    assert list(table.columns) == schedule.COLUMNS
    assert table["jobid"].tolist() == [3, 7, 8, 9, 12]
    page = (out / "schedule.md").read_text()
    assert "wall time (first start to last end): 3 min 00 s" in page
    assert "| optimize_policy | 2 | 3 min 30 s | 2 min 30 s | run=a |" in page
    assert "## Unfinished jobs" in page and "| 12 | learning_law | run=a |" in page
    for suffix in ("png", "pdf"):
        assert_drawn(out / f"schedule.{suffix}")


def test_the_command_line_reads_the_newest_log_that_ran_a_job(tmp_path, monkeypatch):
    folder = tmp_path / ".snakemake" / "log"
    folder.mkdir(parents=True)
    (folder / "2026-12-07T100000.000000.snakemake.log").write_text(LOG)
    unlock = folder / "2026-12-07T110000.000000.snakemake.log"
    unlock.write_text("Unlocked working directory.\n")
    assert schedule.newest_log(tmp_path) == folder / "2026-12-07T100000.000000.snakemake.log"
    monkeypatch.chdir(tmp_path)
    schedule.main(["--out", "out"])
    assert (tmp_path / "out" / "schedule.md").is_file()


def test_the_command_line_names_the_log_and_the_fix_when_there_is_no_job(tmp_path, capsys):
    empty = tmp_path / "empty.snakemake.log"
    empty.write_text("Building DAG of jobs...\nNothing to be done (all requested files exist).\n")
    with pytest.raises(SystemExit) as raised:
        schedule.main([str(empty), "--out", str(tmp_path / "out")])
    assert raised.value.code == 2
    message = capsys.readouterr().err
    assert str(empty) in message and "holds no job" in message and "LOG" in message
    assert not (tmp_path / "out").exists()

    with pytest.raises(SystemExit):
        schedule.main(["--workdir", str(tmp_path), "--out", str(tmp_path / "out")])
    message = capsys.readouterr().err
    assert "no Snakemake log in" in message and str(tmp_path / ".snakemake" / "log") in message
