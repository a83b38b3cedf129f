"""The Snakemake workflow end to end on the smoke preset, and its behaviour on bad input."""

from __future__ import annotations

import json

import pandas as pd

from tests.conftest import SMOKE, snakemake


def test_smoke_dag_produces_every_figure_and_summary(smoke_run):
    for figure in ["figure2", "figure4a", "figure4b", "figure5a", "figure5b"]:
        for ext in ["pdf", "png"]:
            assert (smoke_run / "results" / "figures" / f"{figure}.{ext}").stat().st_size > 1000
    summary = json.loads((smoke_run / "results" / "perceptron" / "summary.json").read_text())
    assert summary["T"] == 100 and summary["near_optimal_policy"] == "epoch0004"
    assert set(summary["policies"]) == {"conventional", "epoch0002", "epoch0004"}
    assert summary["acceleration_ratio"] > 0
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
    assert (
        smoke_run / "results" / "logs" / "perceptron" / "optimize_policy.log"
    ).stat().st_size > 0


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
    log = (tmp_path / "results" / "logs" / "data" / "tinystories.log").read_text()
    assert "transformer.data.local_files" in log


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
