"""Training jobs: divergence errors, resuming an interrupted optimisation, determinism."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from pipeline import jobs
from pipeline.config import run_settings, saved_epochs
from pipeline.experiment import initial_parameters, load_run
from pipeline.policy import optimize as optimize_module
from pipeline.policy.optimize import optimize_policy
from tests.conftest import fake_snakemake, merged_config


@pytest.fixture(scope="module")
def perceptron_data(tmp_path_factory):
    """The smoke preset's Perceptron data, written by the data job."""
    config = merged_config()
    out = tmp_path_factory.mktemp("data")
    paths = {split: str(out / f"{split}.parquet") for split in ("train", "desired", "test")}
    jobs.perceptron_data(
        fake_snakemake(config, {}, paths, {"settings": config["perceptron"]["data"], "seed": 0})
    )
    return config, paths


def evaluate_job(config, paths, out_dir, policy="conventional", policies_dir=None):
    inputs = {"data": [paths["train"]]}
    if policies_dir is not None:
        inputs["policies"] = str(policies_dir)
    smk = fake_snakemake(
        config,
        inputs,
        {"steps": str(out_dir / "steps.parquet"), "examples": str(out_dir / "examples.parquet")},
        {"settings": run_settings(config, "perceptron"), "policy": policy, "seed": 0},
        log=str(out_dir / "evaluate.log"),
    )
    jobs.evaluate_policy(smk)
    return pd.read_parquet(out_dir / "steps.parquet"), pd.read_parquet(out_dir / "examples.parquet")


def test_diverging_learning_rate_names_the_step_and_the_setting(perceptron_data, tmp_path):
    config, paths = perceptron_data
    config = merged_config({"perceptron": {"train": {"eta": 1.0e4}}})
    with pytest.raises(RuntimeError) as err:
        evaluate_job(config, paths, tmp_path)
    message = str(err.value)
    assert "training diverged at step" in message
    assert "perceptron.train.eta" in message
    assert not (tmp_path / "steps.parquet").exists()


def test_same_config_and_seed_give_the_same_numbers(perceptron_data, tmp_path):
    config, paths = perceptron_data
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    steps_a, examples_a = evaluate_job(config, paths, tmp_path / "a")
    steps_b, examples_b = evaluate_job(config, paths, tmp_path / "b")
    pd.testing.assert_frame_equal(steps_a, steps_b)
    pd.testing.assert_frame_equal(examples_a, examples_b)


def test_interrupted_optimisation_resumes_from_the_last_saved_epoch(
    perceptron_data, tmp_path, monkeypatch
):
    config, paths = perceptron_data
    settings = run_settings(config, "perceptron")
    settings["policy"].update(epochs=6, save_every=2)
    run = load_run(settings, _data_dir(paths), torch.device("cpu"), torch.float32)
    theta0 = initial_parameters(run, 0)
    epochs = saved_epochs(6, 2)

    def outputs(name):
        out = tmp_path / name
        out.mkdir()
        return {e: out / f"epoch{e:04d}.pt" for e in epochs}, out / "history.parquet"

    reference_paths, reference_history = outputs("reference")
    reference = optimize_policy(run, theta0, reference_paths, reference_history, tmp_path / "r0", 0)

    calls = []
    real_gradient = optimize_module.policy_gradient

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # during epoch 5, after the save at epoch 4
            raise KeyboardInterrupt
        return real_gradient(*args, **kwargs)

    paths_b, history_b = outputs("interrupted")
    monkeypatch.setattr(optimize_module, "policy_gradient", interrupted)
    with pytest.raises(KeyboardInterrupt):
        optimize_policy(run, theta0, paths_b, history_b, tmp_path / "r1", 0)
    assert not history_b.exists()

    calls.clear()
    resumed = optimize_policy(run, theta0, paths_b, history_b, tmp_path / "r1", 0)
    assert len(calls) == 2  # epochs 4 and 5 only; 0–3 were not redone
    pd.testing.assert_frame_equal(
        resumed.drop(columns="seconds"), reference.drop(columns="seconds")
    )
    for epoch in epochs:
        torch.testing.assert_close(torch.load(paths_b[epoch]), torch.load(reference_paths[epoch]))


def _data_dir(paths):
    from pathlib import Path

    return Path(paths["train"]).parent
