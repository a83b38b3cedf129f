"""The Snakemake workflow end to end on the smoke preset, and its behaviour on bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from pipeline.config import run_settings
from tests.conftest import ROOT, SMOKE, assert_drawn, merged_config, snakemake


def test_smoke_dag_produces_every_figure_and_summary(smoke_run):
    for figure in ["figure2", "figure4a", "figure4b", "figure5a", "figure5b"]:
        for ext in ["pdf", "png"]:
            assert_drawn(smoke_run / "results" / "figures" / f"{figure}.{ext}")
    summary = json.loads((smoke_run / "results" / "perceptron" / "summary.json").read_text())
    assert summary["T"] == 100 and summary["near_optimal_policy"] == "epoch0004"
    assert set(summary["policies"]) == {"conventional", "epoch0002", "epoch0004"}
    dumps = smoke_run / "results" / "perceptron" / "dumps"
    ratios = {"acceleration_ratio": "test_loss", "acceleration_ratio_desired": "desired_loss"}
    for key, column in ratios.items():
        conv = pd.read_parquet(dumps / "conventional" / "steps.parquet")[column].tolist()
        opt = pd.read_parquet(dumps / "epoch0004" / "steps.parquet")[column].tolist()
        # AR = (first t with L^conv_t ≤ L^conv_T) / (first t with L^opt_t ≤ L^conv_T)
        t_conv = next(t for t, loss in enumerate(conv) if loss <= conv[-1])
        t_opt = next((t for t, loss in enumerate(opt) if loss <= conv[-1]), None)
        assert t_opt is not None and 0 < t_opt < t_conv  # the smoke policy is faster
        assert summary[key] == pytest.approx(t_conv / t_opt, rel=1e-12)
    steps = pd.read_parquet(
        smoke_run / "results" / "perceptron" / "dumps" / "epoch0004" / "steps.parquet"
    )
    assert list(steps["step"]) == list(range(101))
    examples = pd.read_parquet(
        smoke_run / "results" / "perceptron" / "dumps" / "epoch0004" / "examples.parquet"
    )
    assert sorted(examples["step"].unique()) == [
        0,
        1,
        2,
        3,
        4,
        5,
        10,
        20,
        30,
        40,
        50,
        60,
        70,
        80,
        90,
    ]
    assert set(examples.columns) == {"step", "example", "weight", "loss", "contribution"}
    assert (examples.groupby("step")["weight"].sum() - 1).abs().max() < 1e-4
    # the optimisation's log reports every epoch that takes a step, with the history's numbers
    log = (smoke_run / "results" / "logs" / "perceptron" / "optimize_policy.log").read_text()
    history = pd.read_parquet(smoke_run / "results" / "perceptron" / "policy_history.parquet")
    for row in history.iloc[:-1].itertuples():  # the last epoch's policy takes no step
        line = f"epoch {row.epoch}: J {row.objective:.5g}, test AUC {row.test_auc:.5g}, "
        assert line + f"test CR {row.test_compression_ratio:.4f}" in log, (line, log[-2000:])


def test_second_run_does_nothing(smoke_run):
    overlay = smoke_run / "stories.yaml"
    result = snakemake(smoke_run, "--configfile", SMOKE, str(overlay), "--dry-run")
    assert "Nothing to be done" in result.stdout + result.stderr


def test_misspelled_config_key_names_the_key(tmp_path):
    overlay = tmp_path / "typo.yaml"
    overlay.write_text("perceptron:\n  policy:\n    epochz: 3\n")
    result = snakemake(tmp_path, "--configfile", SMOKE, str(overlay), "--dry-run", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "unknown setting `perceptron.policy.epochz`" in output
    assert "Did you mean `perceptron.policy.epochs`?" in output


def test_missing_story_file_fails_naming_the_setting(tmp_path):
    overlay = tmp_path / "missing.yaml"
    overlay.write_text(
        "experiments: [transformer]\n"
        "transformer:\n  data:\n    source: local\n    local_files: [no/such/stories.parquet]\n"
    )
    result = snakemake(tmp_path, "figure5b", "--configfile", SMOKE, str(overlay), check=False)
    assert result.returncode != 0
    config = merged_config(yaml.safe_load(overlay.read_text()))
    name = run_settings(config, "transformer")["data_name"]
    log = (tmp_path / "results" / "logs" / "data" / f"{name}.log").read_text()
    assert "transformer.data.local_files" in log


def test_kill_9_leaves_jobs_and_a_lock_and_unlock_recovers(tmp_path):
    """What docs/troubleshooting.md says of `kill -9`: the killed Snakemake's jobs
    keep running, the next run is refused by the lock, and once they are ended `--unlock` and a
    plain re-run resume the policy optimisation from its last saved epoch."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    overlay = tmp_path / "long.yaml"
    # ≈ 0.1 s an epoch: the job, killed after the refused run below (≈ 3 s), outlives it by
    # about 10 s; the resumed run then trains the rest
    overlay.write_text(
        "perceptron:\n  train: {steps: 1000}\n  policy: {epochs: 150, save_every: 20}\n"
    )
    target = ["results/perceptron/policy_history.parquet", "--configfile", SMOKE, str(overlay)]
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "--directory", str(tmp_path), "--cores", "2", *target]  # fmt: skip
    run = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    state = tmp_path / "results" / "perceptron" / "resume" / "state.pt"
    deadline = time.monotonic() + 300
    while not state.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert state.exists(), "no policy epoch was saved"
    os.kill(run.pid, signal.SIGKILL)  # Snakemake alone, as `kill -9 <pid>`
    run.wait()
    try:
        os.killpg(run.pid, 0)  # its job, optimize_policy, is still running
        refused = snakemake(tmp_path, *target, check=False)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # end the orphaned job
    assert refused.returncode != 0
    assert "--unlock" in refused.stdout + refused.stderr
    assert "LockException" in refused.stdout + refused.stderr

    snakemake(tmp_path, *target, "--unlock")
    snakemake(tmp_path, *target)
    log = (tmp_path / "results" / "logs" / "perceptron" / "optimize_policy.log").read_text()
    assert "resuming policy optimisation at epoch" in log
    history = pd.read_parquet(tmp_path / "results" / "perceptron" / "policy_history.parquet")
    assert list(history["epoch"]) == list(range(151))


def test_two_processes_give_the_same_parquet_outputs_as_one(smoke_run, tmp_path):
    """The Perceptron's policy optimisation and one evaluation in 2 gloo processes (torchrun),
    against the one-process smoke run: the same files, equal up to float32 round-off."""
    overlay = smoke_run / "stories.yaml"
    outputs = ["results/perceptron/policy_history.parquet",
               "results/perceptron/dumps/epoch0004/steps.parquet",
               "results/perceptron/dumps/epoch0004/examples.parquet"]  # fmt: skip
    result = snakemake(
        tmp_path, *outputs, "--configfile", SMOKE, str(overlay),
        "--config", "perceptron={resources: {processes: 2}}",
    )  # fmt: skip
    log = (tmp_path / "results" / "logs" / "perceptron" / "optimize_policy.log").read_text()
    assert "2 processes started by torchrun, gloo backend" in log, result.stderr[-3000:]
    for path in outputs:
        one, two = (pd.read_parquet(d / path).drop(columns="seconds", errors="ignore")
                    for d in (smoke_run, tmp_path))  # fmt: skip
        assert list(two.columns) == list(one.columns) and len(two) == len(one), path
        for column in one.columns:
            scale = max(float(one[column].abs().max()), 1e-30)
            assert float((two[column] - one[column]).abs().max()) <= 1e-5 * scale, (path, column)


def test_a_replaced_story_file_reruns_the_data_job(tmp_path):
    """A story file rewritten with fewer rows (newer than the data built from it) makes a dry
    run list the data job, where before it said "Nothing to be done" and the old data stayed:
    the data set's name holds a hash of the file's content (tests/test_registry.py: the same
    for a replacement with an older modification time)."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    stories = tmp_path / "stories.parquet"
    pq.write_table(pa.table({"text": [f"Story {i}." for i in range(200)]}), stories)
    overlay = tmp_path / "stories.yaml"
    overlay.write_text(f"transformer:\n  data:\n    local_files: [{stories}]\n")
    config = merged_config({"transformer": {"data": {"local_files": [str(stories)]}}})
    data = tmp_path / "results" / "data" / run_settings(config, "transformer")["data_name"]
    data.mkdir(parents=True)
    for name in ("train.parquet", "desired.parquet", "test.parquet", "vocab.json", "preview.md"):
        (data / name).write_text("built from the first file")
    built = stories.stat().st_mtime + 10
    for path in data.iterdir():
        os.utime(path, (built, built))
    target = ["results/transformer/policy_history.parquet", "--configfile", SMOKE, str(overlay)]
    pq.write_table(pa.table({"text": [f"Story {i}." for i in range(100)]}), stories)
    os.utime(stories, (built + 10, built + 10))  # replaced after the data was built
    result = snakemake(tmp_path, *target, "-n")
    assert "rule tinystories_data:" in result.stdout, result.stdout[-2000:]
    assert f"results/data/{data.name}/" not in result.stdout  # new data, under a new name


def test_errors_snakemake_words_itself_are_explained_in_troubleshooting(tmp_path):
    """A missing --configfile fails in Snakemake's command-line parsing, before the workflow
    (and so the pipeline) is read. The table of docs/troubleshooting.md quotes the message, and
    Snakemake's for --report before a run, and says what to do."""
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    table = "\n".join(line for line in page.splitlines() if line.startswith("|"))
    missing = snakemake(tmp_path, "-n", "--configfile", "no/such/preset.yaml", check=False)
    lines = (missing.stdout + missing.stderr).splitlines()
    assert missing.returncode != 0 and "Traceback (most recent call last):" in lines
    error = "FileNotFoundError: [Errno 2] No such file or directory: 'no/such/preset.yaml'"
    assert error in lines and not any("Building DAG" in line for line in lines)
    assert "a `--configfile` path that does not exist" in table
    assert "ending `FileNotFoundError: [Errno 2] No such file or directory: '<path>'`" in table
    # Snakemake 9's words for --report before a run (not run here: it builds the whole DAG)
    assert "`WorkflowError: File results/…/summary.json marked for report but does not exist.`" in (
        table
    )
    for row in ("a damaged resume file", "a full disk", "story file in `transformer.data.local"):
        assert row in table
