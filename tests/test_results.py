"""Reading the pipeline's intermediate Parquet files: a damaged one is named with the rule that
writes it and the command that rebuilds it, by every job that reads it."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.analysis.learning_law import read_examples
from pipeline.analysis.summary import summarize_run
from pipeline.experiment import load_run
from pipeline.results import PipelineFileError, read_pipeline_parquet
from tests.conftest import SMOKE, merged_config, snakemake


def write(path, **columns):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def test_a_missing_column_names_file_rule_and_command(tmp_path):
    path = write(tmp_path / "results/perceptron/dumps/epoch0004/steps.parquet", step=[0, 1])
    with pytest.raises(PipelineFileError) as err:
        read_pipeline_parquet(path, ["step", "test_loss"])
    message = str(err.value)
    assert f"{path} has no column `test_loss` (it has step)" in message
    assert "written by rule `evaluate_policy`" in message
    assert f"`snakemake --cores all --forcerun {path}`" in message
    assert read_pipeline_parquet(path, ["step"]).column("step").to_pylist() == [0, 1]


@pytest.mark.parametrize("content", [b"", b"not parquet at all", None])
def test_an_unreadable_file_names_file_rule_and_command(tmp_path, content):
    path = write(tmp_path / "results/perceptron/policy_history.parquet", objective=[1.0] * 50)
    path.write_bytes(path.read_bytes()[:40] if content is None else content)
    with pytest.raises(PipelineFileError) as err:
        read_pipeline_parquet(path, ["objective"])
    message = str(err.value)
    assert "cannot be read as Parquet" in message and "rule `optimize_policy`" in message
    assert f"--forcerun {path}`" in message


def test_a_missing_file_says_so(tmp_path):
    path = tmp_path / "results/data/tinystories/train.parquet"
    with pytest.raises(PipelineFileError, match="train.parquet is missing; .*tinystories_data"):
        read_pipeline_parquet(path)


def test_every_reader_of_intermediate_files_uses_it(tmp_path):
    """The Perceptron data without `y`, a steps dump without `test_loss`, examples without
    `contribution`: each reader says which file, not KeyError / ArrowInvalid."""
    data = tmp_path / "results/data/perceptron"
    for split in ("train", "desired", "test"):
        write(data / f"{split}.parquet", x=[[0.0, 1.0]], y=[1])
    write(data / "test.parquet", x=[[0.0, 1.0]])
    settings = merged_config()["perceptron"] | {"kind": "perceptron", "name": "perceptron"}
    with pytest.raises(PipelineFileError, match=r"test.parquet has no column `y`"):
        load_run(settings, data, torch.device("cpu"), torch.float32)

    dumps = tmp_path / "results/perceptron/dumps"
    conventional = write(dumps / "conventional/steps.parquet", step=[0], desired_loss=[1.0])
    with pytest.raises(PipelineFileError, match=r"steps.parquet has no column `test_loss`"):
        summarize_run(
            settings,
            {"conventional": str(conventional)},
            "unused",
            {},
            0.69,
            {"value": 5.5, "source": "Figure 5a"},
        )

    examples = write(dumps / "conventional/examples.parquet", step=[0], example=[0], weight=[1.0])
    with pytest.raises(PipelineFileError, match="no column `loss`, `contribution`"):
        read_examples(examples)


def test_damaged_dump_stops_the_run_and_forcerun_rebuilds_it(smoke_run, tmp_path):
    """On a copy of the smoke run: drop `test_loss` from a dump; the summary job fails naming
    the file and the command; that command rebuilds the dump and the summary."""
    workdir = tmp_path / "run"
    shutil.copytree(smoke_run, workdir, symlinks=True, ignore=shutil.ignore_patterns("figures"))
    dump = "results/perceptron/dumps/epoch0004/steps.parquet"
    steps = pd.read_parquet(workdir / dump)
    steps.drop(columns="test_loss").to_parquet(workdir / dump, index=False)
    target = "results/perceptron/summary.json"
    configs = ["--configfile", SMOKE, str(workdir / "stories.yaml")]

    failed = snakemake(workdir, target, *configs, check=False)
    assert failed.returncode != 0
    log = (workdir / "results/logs/perceptron/summarize.log").read_text()
    assert f"{dump} has no column `test_loss`" in log
    assert f"snakemake --cores all --forcerun {dump}" in log

    snakemake(workdir, target, "--forcerun", dump, *configs)
    pd.testing.assert_frame_equal(pd.read_parquet(workdir / dump), steps)
