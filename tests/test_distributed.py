"""Data-parallel runs (pipeline/distributed.py, pipeline/launch.py): 2 gloo processes on the CPU
give the one-process results; a failing process fails the job cleanly; a run resumes with
another number of processes.

Each launch starts 2 processes by torchrun (several seconds here, mostly importing torch): the
equality checks share one launch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.config import ConfigError, run_settings, saved_epochs, validate_config
from pipeline.distributed import Shard, shard_of
from pipeline.jobs import training as jobs
from pipeline.launch import launch
from pipeline.policy import optimize as optimize_module
from pipeline.policy.simplex import simplex_threshold, sort_projection
from tests.conftest import fake_snakemake, merged_config
from tests.distributed_entries import suite

ENTRIES = "tests.distributed_entries"
# Uneven shares: 255 = 128 + 127 training examples, 63 and 65 desired and test examples. The
# Perceptron chooses its policy on a held-out quarter of the desired set (16 of 63 examples,
# shared 8 + 8), which J leaves out (47: 24 + 23).
PERCEPTRON = {
    "data": {"n_train": 255, "n_desired": 63, "n_test": 65},
    "policy": {"epochs": 3, "selection": "validation"},
}
TRANSFORMER = {"data": {"n_train": 33, "n_desired": 15, "n_test": 17}, "train": {"steps": 12}}
# The Transformer's optimisation takes mirror descent on a time-independent policy: the other
# optimiser and form, whose row softmax, column sums and gap reduce over the processes too.
TRANSFORMER["policy"] = {"epochs": 3, "save_every": 1, "checkpoint_every": 0,
                         "optimizer": "mirror_descent", "form": "time_independent"}  # fmt: skip


def test_shards_are_contiguous_cover_the_set_and_differ_by_at_most_one():
    for total in (1, 2, 7, 255, 256):
        for processes in range(1, min(total, 5) + 1):
            shards = [shard_of(total, processes, r) for r in range(processes)]
            assert shards[0].start == 0 and shards[-1].stop == total
            assert all(a.stop == b.start for a, b in zip(shards, shards[1:], strict=False))
            assert max(s.size for s in shards) - min(s.size for s in shards) <= 1
    assert shard_of(255, 2, 1) == Shard(128, 255, 255)


def test_processes_setting_is_checked_at_start_up():
    validate_config(merged_config({"transformer": {"resources": {"gpus": 8}}}))  # 8 processes
    bad = merged_config({"transformer": {"resources": {"gpus": 2, "processes": 4}}})
    with pytest.raises(ConfigError, match=r"`transformer.resources.processes` = 4 with"):
        validate_config(bad)
    too_many = merged_config({"perceptron": {"resources": {"processes": 100}}})
    with pytest.raises(ConfigError, match=r"`perceptron.data.n_desired` = 64\); lower it"):
        validate_config(too_many)


# -- the data sets ----------------------------------------------------------------------------
def perceptron_data(out: Path, config: dict) -> None:
    paths = {s: str(out / f"{s}.parquet") for s in ("train", "desired", "test")}
    params = {"settings": config["perceptron"]["data"], "seed": 0}
    jobs.perceptron_data(fake_snakemake(config, {}, paths, params))


def transformer_data(out: Path, settings: dict) -> None:
    """Random token sequences of 4 to seq_len tokens (the model does not care what they say)."""
    data = settings["data"]
    generator = np.random.default_rng(0)
    for split in ("train", "desired", "test"):
        rows = [
            generator.integers(1, data["vocab_size"], generator.integers(4, data["seq_len"] + 1))
            for _ in range(data[f"n_{split}"])
        ]
        pq.write_table(pa.table({"tokens": [r.tolist() for r in rows]}), out / f"{split}.parquet")
    (out / "vocab.json").write_text(json.dumps({"pad_id": 0}))


def job_spec(settings: dict, data_dir: Path, dtype: str) -> dict:
    return {
        "settings": settings,
        "data_dir": str(data_dir),
        "device": "cpu",
        "dtype": dtype,
        "seed": 0,
    }


def cases(settings: dict, out: Path) -> list[dict]:
    """The policy gradient, a 3-epoch optimisation and the evaluation of its last policy."""
    out.mkdir(parents=True)
    epochs = settings["policy"]["epochs"]
    policies = {e: str(out / f"epoch{e:04d}.pt") for e in saved_epochs(epochs, 1)}
    return [
        {"entry": "gradient", "out": str(out / "gradient.pt")},
        {
            "entry": "optimize",
            "policies": policies,
            "history": str(out / "history.parquet"),
            "resume_dir": str(out / "resume"),
            "selected": str(out / "selected.pt")
            if settings["policy"].get("selection") == "validation"
            else None,
        },
        {
            "entry": "evaluate",
            "policy": policies[epochs],
            "steps": str(out / "steps.parquet"),
            "examples": str(out / "examples.parquet"),
        },
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every case in one process (here) and in two (one launch), for both models: float64, and
    the Perceptron's gradient in float32 too."""
    root = tmp_path_factory.mktemp("distributed")
    specs = {}
    for dtype in ("float64", "float32"):
        config = merged_config(
            {"dtype": dtype, "perceptron": PERCEPTRON, "transformer": TRANSFORMER}
        )
        for kind in ("perceptron", "transformer") if dtype == "float64" else ("perceptron",):
            data_dir = root / f"{kind}-{dtype}-data"
            data_dir.mkdir()
            settings = run_settings(config, kind)
            if kind == "perceptron":
                perceptron_data(data_dir, config)
            else:
                transformer_data(data_dir, settings)
            specs[kind, dtype] = job_spec(settings, data_dir, dtype)
    outputs = {}
    for processes in (1, 2):
        groups = []
        for (kind, dtype), spec in specs.items():
            out = root / f"{kind}-{dtype}-P{processes}"
            case_list = cases(spec["settings"], out)
            groups.append({**spec, "cases": case_list if dtype == "float64" else case_list[:1]})
            outputs[kind, dtype, processes] = out
        if processes == 1:
            for group in groups:
                suite(group)
        else:  # every group in the same two processes, one after another
            sequential = {**groups[0], "cases": [{**g, **c} for g in groups for c in g["cases"]]}
            launch(f"{ENTRIES}:suite", sequential, 2, 1, False, [str(root / "two")], None)
    return outputs


def assert_relative(actual, expected, rtol):
    """max |a − e| ≤ rtol · max |e|: relative to the size of the whole quantity."""
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    assert actual.shape == expected.shape
    scale = expected.abs().max()
    assert scale > 0
    assert float((actual - expected).abs().max()) <= rtol * float(scale)


@pytest.mark.parametrize(
    "kind, dtype, rtol",
    [
        ("perceptron", "float64", 1e-12),
        ("transformer", "float64", 1e-12),
        ("perceptron", "float32", 1e-5),
    ],
)
def test_policy_gradient_in_two_processes_equals_one(runs, kind, dtype, rtol):
    one = torch.load(runs[kind, dtype, 1] / "gradient.pt")
    two = torch.load(runs[kind, dtype, 2] / "gradient.pt")
    assert_relative(two["policy"], one["policy"], rtol)  # the distributed projection
    assert_relative(two["grad"], one["grad"], rtol)
    assert two["objective"] == pytest.approx(one["objective"], rel=rtol)
    assert_relative(two["desired_losses"], one["desired_losses"], rtol)
    assert_relative(two["test_losses"], one["test_losses"], rtol)
    # The projection was exact, and some rows took the sorting fallback (gathered whole rows).
    step = one["step"]
    assert_relative(two["policy"], sort_projection(step.double()), 1e-12 if rtol < 1e-9 else 1e-6)
    _, converged = simplex_threshold(step - step.amax(-1, keepdim=True), 3)
    assert 0 < int(converged.sum()) < step.shape[0]


@pytest.mark.parametrize("kind", ["perceptron", "transformer"])
def test_optimisation_and_evaluation_in_two_processes_equal_one(runs, kind):
    one, two = runs[kind, "float64", 1], runs[kind, "float64", 2]
    for epoch in range(4):
        assert_relative(
            torch.load(two / f"epoch{epoch:04d}.pt"),
            torch.load(one / f"epoch{epoch:04d}.pt"),
            1e-12,
        )
    history = [pd.read_parquet(d / "history.parquet").drop(columns="seconds") for d in (one, two)]
    pd.testing.assert_frame_equal(history[1], history[0], rtol=1e-12, atol=0)
    if kind == "perceptron":  # selection on the validation set, itself shared by the processes
        assert {"validation_auc", "selected"} <= set(history[0].columns)
        assert_relative(torch.load(two / "selected.pt"), torch.load(one / "selected.pt"), 1e-12)
    steps = [pd.read_parquet(d / "steps.parquet") for d in (one, two)]
    pd.testing.assert_frame_equal(steps[1], steps[0], rtol=1e-12, atol=0)
    examples = [pd.read_parquet(d / "examples.parquet") for d in (one, two)]
    # Same schema, rows and order; the per-example columns are stored as float32: one rounding.
    assert pq.read_schema(two / "examples.parquet") == pq.read_schema(one / "examples.parquet")
    pd.testing.assert_frame_equal(examples[1], examples[0], rtol=2.5e-7, atol=0)
    assert not list(two.glob(".launch-*")) and not (two / "resume" / "state.pt").exists()


def test_a_failing_process_fails_the_job_naming_it_and_leaves_no_output(tmp_path):
    output, log_path = tmp_path / "out" / "steps.parquet", tmp_path / "job.log"
    output.parent.mkdir()
    spec = {"device": "cpu", "output": str(output)}
    with pytest.raises(RuntimeError) as err:
        launch(f"{ENTRIES}:fail_on_second_process", spec, 2, 1, False, [str(output)], str(log_path))
    message = str(err.value)
    assert "process 1 of 2 failed: ValueError: bad example in the second process's share" in message
    assert not output.exists()  # the first process had written part of it
    assert "process 1 of 2 failed" in log_path.read_text()
    assert not list(output.parent.glob(".launch-*"))


def test_a_killed_process_is_named_with_its_signal(tmp_path):
    """Process 1 is killed by SIGKILL (as by the out-of-memory killer); process 0 then fails in
    a collective ("Connection closed by peer"). The error names process 1 and the signal, not
    the survivor's echo, which it used to call the failure."""
    output = tmp_path / "out" / "steps.parquet"
    output.parent.mkdir()
    with pytest.raises(RuntimeError) as err:
        launch(
            f"{ENTRIES}:kill_second_process", {"device": "cpu"}, 2, 1, False, [str(output)], None
        )
    message = str(err.value)
    assert message.startswith("process 1 of 2 died first: killed by signal 9 (SIGKILL)"), message
    # the survivor is named after it when it failed in its collective before torchrun stopped it
    # (under load torchrun may stop it first: then there is no second failure to name)
    assert "failed after it" not in message or "processes [0] failed after it" in message


def test_the_first_death_is_read_from_the_launchers_report():
    from pipeline.launch import first_death

    torchrun = """Failures:
[1]:
  rank      : 0 (local_rank: 0)
  exitcode  : 1 (pid: 20030)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 20031)  (SIGKILL)
"""
    assert first_death(torchrun.splitlines(True)) == (1, "killed by signal 9 (SIGKILL)")
    # under load torchrun may see the survivor's echo first: the killed process still died first
    echo_first = (
        torchrun.replace("rank      : 0 (", "rank      : X (")
        .replace("rank      : 1 (", "rank      : 0 (")
        .replace("rank      : X (", "rank      : 1 (")
    )
    echo_first = (
        echo_first.replace("exitcode  : 1 (", "exitcode  : Y (")
        .replace("exitcode  : -9 (", "exitcode  : 1 (")
        .replace("exitcode  : Y (", "exitcode  : -9 (")
    )
    assert "Root Cause (first observed failure):\n[0]:\n  rank      : 0" in echo_first
    assert first_death(echo_first.splitlines(True)) == (1, "killed by signal 9 (SIGKILL)")
    srun = ["srun: error: node1: task 1: Killed\n", "srun: error: node1: task 0: Exited\n"]
    assert first_death(srun) == (1, "Killed")
    assert first_death(["nothing useful\n"]) is None


def test_an_interrupted_run_resumes_in_another_number_of_processes(tmp_path, monkeypatch):
    config = merged_config({"dtype": "float64", "perceptron": PERCEPTRON})
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    perceptron_data(data_dir, config)
    settings = run_settings(config, "perceptron")
    epochs = saved_epochs(settings["policy"]["epochs"], settings["policy"]["save_every"])

    def job(name: str, processes: int):
        out = tmp_path / name
        block = {**settings, "resources": {**settings["resources"], "processes": processes}}
        smk = fake_snakemake(
            config,
            {"data": [str(data_dir / "train.parquet")]},
            {"policies": str(out / "policies"), "history": str(out / "history.parquet")},
            {
                "settings": block,
                "saved_epochs": epochs,
                "resume_dir": str(out / "resume"),
                "seed": 0,
            },
        )
        smk.threads = processes
        return smk, out

    reference, reference_dir = job("reference", 1)
    jobs.optimize_policy(reference)

    calls = []
    real_gradient = optimize_module.policy_gradient

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # during epoch 2, after saving epoch 1's policy and state
            raise KeyboardInterrupt
        return real_gradient(*args, **kwargs)

    smk, out = job("resumed", 1)
    monkeypatch.setattr(optimize_module, "policy_gradient", interrupted)
    with pytest.raises(KeyboardInterrupt):
        jobs.optimize_policy(smk)
    monkeypatch.undo()
    assert torch.load(out / "resume" / "state.pt", weights_only=False)["epoch"] == 2

    smk, _ = job("resumed", 2)
    jobs.optimize_policy(smk)
    history = [pd.read_parquet(d / "history.parquet") for d in (reference_dir, out)]
    pd.testing.assert_frame_equal(
        history[1].drop(columns="seconds"), history[0].drop(columns="seconds"), rtol=1e-12, atol=0
    )
    for epoch in epochs:
        name = f"policies/epoch{epoch:04d}.pt"
        assert_relative(torch.load(out / name), torch.load(reference_dir / name), 1e-12)
    assert not (out / "resume" / "state.pt").exists()
