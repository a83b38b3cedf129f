"""Training jobs: hand-written GD and determinism, divergence errors, resuming an optimisation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.config import run_settings, saved_epochs
from pipeline.experiment import initial_parameters, load_run
from pipeline.jobs import training as jobs
from pipeline.policy import optimize as optimize_module
from pipeline.policy.optimize import optimize_policy
from tests.conftest import fake_snakemake, merged_config


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


def test_the_conventional_run_is_hand_written_gradient_descent_and_repeats_exactly(
    perceptron_data, tmp_path
):
    """The evaluation job's test and desired losses at every step are those of full-batch GD
    with γ_t = 1/N written out here (numpy, float64: θ ← θ − η/N Σ_n (σ(z_n·θ) − y_n) z_n), and
    the same config and seed give the same numbers again."""
    config, paths = perceptron_data
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    steps_a, examples_a = evaluate_job(config, paths, tmp_path / "a")
    steps_b, examples_b = evaluate_job(config, paths, tmp_path / "b")
    pd.testing.assert_frame_equal(steps_a, steps_b)
    pd.testing.assert_frame_equal(examples_a, examples_b)

    settings = run_settings(config, "perceptron")
    run = load_run(settings, Path(paths["train"]).parent, torch.device("cpu"), torch.float64)
    theta = initial_parameters(run, 0).numpy()
    z, y, eta = run.train["x"].numpy(), run.train["y"].numpy(), settings["train"]["eta"]

    def mean_loss(split: str, theta) -> float:
        batch = getattr(run, split)
        margin = batch["x"].numpy() @ theta
        return float(np.mean(np.logaddexp(0.0, margin) - batch["y"].numpy() * margin))

    expected = {"test_loss": [], "desired_loss": []}
    for _ in range(settings["train"]["steps"] + 1):
        expected["test_loss"].append(mean_loss("test", theta))
        expected["desired_loss"].append(mean_loss("desired", theta))
        theta = theta - eta * ((1 / (1 + np.exp(-(z @ theta))) - y) @ z) / len(y)
    ordered = steps_a.sort_values("step")
    assert list(ordered["step"]) == list(range(settings["train"]["steps"] + 1))
    for column, values in expected.items():
        np.testing.assert_allclose(ordered[column], values, rtol=1e-4)
    assert expected["test_loss"][-1] < 0.9 * expected["test_loss"][0]  # it learns something


@pytest.mark.parametrize(
    ("resume_every_seconds", "redone"),
    [(1e9, 3), (0.0, 2)],  # fast epochs: the saved epoch 4; a state after every epoch: epoch 5
)
def test_interrupted_optimisation_resumes_from_the_last_saved_epoch(
    perceptron_data, tmp_path, monkeypatch, resume_every_seconds, redone
):
    """Interrupted during epoch 5 of 6, the optimisation resumes from its last resume state, the
    saved epoch 4 (policies saved every 2 epochs) or, once RESUME_EVERY_SECONDS have passed
    after an epoch, that epoch's end; either way it ends with the uninterrupted numbers."""
    monkeypatch.setattr(optimize_module, "RESUME_EVERY_SECONDS", resume_every_seconds)
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
    assert len(calls) == redone  # from epoch 4 or 5 to 6 (the last: its gap) only
    pd.testing.assert_frame_equal(
        resumed.drop(columns="seconds"), reference.drop(columns="seconds")
    )
    for epoch in epochs:
        torch.testing.assert_close(torch.load(paths_b[epoch]), torch.load(reference_paths[epoch]))


def _data_dir(paths):
    from pathlib import Path

    return Path(paths["train"]).parent


class Killed(BaseException):
    """The process dies here (BaseException: no `except Exception` of the code may catch it)."""


def test_interrupted_finish_restarts_from_every_point(perceptron_data, tmp_path, monkeypatch):
    """Kill optimize_policy at every file-system operation of a run; each time re-run it as
    Snakemake does (the incomplete outputs deleted first): the outputs equal an uninterrupted
    run's, and a run killed while publishing its outputs does not redo the optimisation."""
    import os
    import shutil

    config, paths = perceptron_data
    settings = run_settings(config, "perceptron")
    settings["policy"].update(epochs=4, save_every=2)
    run = load_run(settings, _data_dir(paths), torch.device("cpu"), torch.float32)
    theta0 = initial_parameters(run, 0)
    epochs = saved_epochs(4, 2)

    def outputs(name):
        out = tmp_path / name / "policies"
        out.mkdir(parents=True)
        return {e: out / f"epoch{e:04d}.pt" for e in epochs}, tmp_path / name / "history.parquet"

    reference_paths, reference_history = outputs("reference")
    reference = optimize_policy(run, theta0, reference_paths, reference_history, tmp_path / "r", 0)

    gradient_calls, operations, kill_at = [], [], [None]
    real_gradient = optimize_module.policy_gradient

    def counted_gradient(*args, **kwargs):
        gradient_calls.append(1)
        return real_gradient(*args, **kwargs)

    def killable(name, real):
        def operation(*args, **kwargs):
            operations.append(name)
            if len(operations) == kill_at[0]:
                raise Killed(name)
            return real(*args, **kwargs)

        return operation

    monkeypatch.setattr(optimize_module, "policy_gradient", counted_gradient)
    for name in ("replace", "rename", "link", "unlink", "rmdir"):
        monkeypatch.setattr(os, name, killable(name, getattr(os, name)))

    kill_at[0] = 0  # count the operations of one uninterrupted run
    optimize_policy(run, theta0, *outputs("count"), tmp_path / "count-resume", 0)
    total = len(operations)
    assert total >= 6

    resumed_without_gradient = 0
    for k in range(1, total + 1):
        policy_paths, history_path = outputs(f"killed{k}")
        resume_dir = tmp_path / f"killed{k}-resume"
        operations.clear()
        kill_at[0] = k
        with pytest.raises(Killed):
            optimize_policy(run, theta0, policy_paths, history_path, resume_dir, 0)
        kill_at[0] = 0
        state = resume_dir / "state.pt"
        finishing = state.exists() and torch.load(state, weights_only=False)["epoch"] == 4 + 1
        # Snakemake's re-run of an incomplete job: its outputs are deleted first
        shutil.rmtree(policy_paths[0].parent)
        history_path.unlink(missing_ok=True)
        policy_paths[0].parent.mkdir()
        gradient_calls.clear()
        frame = optimize_policy(run, theta0, policy_paths, history_path, resume_dir, 0)
        pd.testing.assert_frame_equal(
            frame.drop(columns="seconds"), reference.drop(columns="seconds")
        )
        pd.testing.assert_frame_equal(pd.read_parquet(history_path), frame)
        for epoch in epochs:
            assert torch.equal(torch.load(policy_paths[epoch]), torch.load(reference_paths[epoch]))
        assert not resume_dir.exists()
        if finishing:
            assert gradient_calls == []  # only the final publishing was redone
            resumed_without_gradient += 1
    assert resumed_without_gradient >= 5  # the finish was interrupted at several points


def test_divergence_during_policy_optimisation_names_the_epoch(
    perceptron_data, tmp_path, monkeypatch
):
    """Training under the policy of epoch 2 diverges (the Perceptron's bounded loss does not,
    so the divergence check is handed a loss curve that explodes at step 7): the error names
    the policy epoch and the step-size setting, not the learning rate that trained epoch 0."""
    from pipeline.training.descent import check_finite_steps

    config, paths = perceptron_data
    real_gradient = optimize_module.policy_gradient
    calls = []

    def diverging_at_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            check_finite_steps(torch.tensor([0.7] * 7 + [math.inf] * 3))
        return real_gradient(*args, **kwargs)

    monkeypatch.setattr(optimize_module, "policy_gradient", diverging_at_epoch_2)
    settings = run_settings(config, "perceptron")
    settings["policy"].update(epochs=4, save_every=2)

    def job():
        return fake_snakemake(
            config,
            {"data": [paths["train"]]},
            {"policies": str(tmp_path / "policies"), "history": str(tmp_path / "h.parquet")},
            {
                "settings": settings,
                "saved_epochs": saved_epochs(4, 2),
                "resume_dir": str(tmp_path / "resume"),
                "seed": 0,
            },
        )

    with pytest.raises(RuntimeError) as err:
        jobs.optimize_policy(job())
    message = str(err.value)
    assert message.startswith("policy epoch 2 of 4: training diverged at step 7"), message
    assert "`perceptron.policy.step_size` = 0.01" in message
    assert "perceptron.train.eta" not in message

    # the conventional policy itself diverges: then the learning rate is to blame
    monkeypatch.setattr(
        optimize_module,
        "policy_gradient",
        lambda *args, **kwargs: check_finite_steps(torch.tensor([0.7, math.nan])),
    )
    settings["policy"]["step_size"] = 2e-4  # other settings: the saved state is not used
    with pytest.raises(RuntimeError) as err:
        jobs.optimize_policy(job())
    message = str(err.value)
    assert message.startswith("policy epoch 0 of 4: training diverged at step 1"), message
    assert "`perceptron.train.eta` = 0.1 is too large" in message


def test_damaged_policy_file_names_the_rebuild_command(perceptron_data, tmp_path):
    from pipeline.results import PipelineFileError

    config, paths = perceptron_data
    policies = tmp_path / "results" / "perceptron" / "policies"
    policies.mkdir(parents=True)
    (policies / "epoch0002.pt").write_bytes(b"cut short")
    with pytest.raises(PipelineFileError) as err:
        evaluate_job(config, paths, tmp_path, policy="epoch0002", policies_dir=policies)
    message = str(err.value)
    assert "epoch0002.pt cannot be read as a saved policy" in message
    assert "rule `optimize_policy`" in message and f"--forcerun {policies}`" in message


def _optimisation(perceptron_data, epochs=4, save_every=2):
    """(run, θ_0, saved epochs) of a small Perceptron policy optimisation."""
    config, paths = perceptron_data
    settings = run_settings(config, "perceptron")
    settings["policy"].update(epochs=epochs, save_every=save_every)
    run = load_run(settings, _data_dir(paths), torch.device("cpu"), torch.float32)
    return run, initial_parameters(run, 0), saved_epochs(epochs, save_every)


def _outputs(root, epochs):
    root.mkdir(parents=True)
    return {e: root / f"epoch{e:04d}.pt" for e in epochs}, root / "history.parquet"


def _interrupted_at_epoch_3(run, theta0, epochs, tmp_path, monkeypatch):
    """The resume directory of a run stopped during epoch 3 (after the save at epoch 2), and
    a gradient counter for the re-run."""
    calls, armed, real_gradient = [], [True], optimize_module.policy_gradient

    def gradient(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4 and armed[0]:
            raise KeyboardInterrupt
        return real_gradient(*args, **kwargs)

    monkeypatch.setattr(optimize_module, "policy_gradient", gradient)
    paths, history = _outputs(tmp_path / "out", epochs)
    resume = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        optimize_policy(run, theta0, paths, history, resume, 0)
    assert {p.name for p in resume.iterdir()} >= {"state.pt", "epoch0000.pt", "epoch0002.pt"}
    calls.clear()
    armed[0] = False
    return paths, history, resume, calls


@pytest.mark.parametrize(
    ("damage", "resumed_at"),
    [
        ({"state.pt": "truncate"}, 2),  # the state cut short: epoch 2 from its policy file
        ({"state.pt": "random"}, 2),  # random bytes: the same
        ({"state.pt": "random", "epoch0002.pt": "truncate"}, 0),  # nothing to resume from
        ({"epoch0000.pt": "truncate"}, 0),  # the state loads, an earlier policy does not
    ],
)
def test_a_damaged_resume_file_is_set_aside_and_the_run_resumes(
    perceptron_data, tmp_path, monkeypatch, caplog, damage, resumed_at
):
    """A resume file that cannot be read is named in the log and renamed beside itself (not
    deleted), and the optimisation resumes from the newest saved epoch that loads, or from
    epoch 0; the outputs equal an uninterrupted run's. Before, torch.load's raw OSError or
    UnpicklingError stopped every re-run."""
    import numpy as np

    run, theta0, epochs = _optimisation(perceptron_data)
    reference_paths, reference_history = _outputs(tmp_path / "reference", epochs)
    reference = optimize_policy(run, theta0, reference_paths, reference_history, tmp_path / "r", 0)
    paths, history, resume, calls = _interrupted_at_epoch_3(
        run, theta0, epochs, tmp_path, monkeypatch
    )
    for name, how in damage.items():
        content = (resume / name).read_bytes()
        broken = content[: len(content) // 2] if how == "truncate" else None
        broken = broken or np.random.default_rng(0).bytes(len(content))
        (resume / name).write_bytes(broken)

    caplog.set_level("INFO")
    frame = optimize_policy(run, theta0, paths, history, resume, 0)
    assert len(calls) == 4 + 1 - resumed_at  # the epochs redone, the last (4) with its gap
    pd.testing.assert_frame_equal(frame.drop(columns="seconds"), reference.drop(columns="seconds"))
    for epoch in epochs:
        assert torch.equal(torch.load(paths[epoch]), torch.load(reference_paths[epoch]))
    for name in damage:
        assert f"{resume / name} cannot be read" in caplog.text
        assert f"set aside as {resume / name}.damaged" in caplog.text
    assert sorted(p.name for p in resume.iterdir()) == sorted(f"{n}.damaged" for n in damage)
    if resumed_at:
        assert f"resuming from the newest saved epoch whose files load, {resumed_at}" in caplog.text
    else:
        assert "starting from epoch 0" in caplog.text


def test_every_epoch_has_its_acceleration_ratio_also_after_resuming_an_older_state(
    perceptron_data, tmp_path, monkeypatch
):
    """The history gives each epoch's test and desired AR against epoch 0 (the conventional
    policy) as acceleration_ratio computes it from the epoch's own curves; a run resumed from
    a state written before the conventional curves were kept (no `conventional` key) recomputes
    them and gives the same history."""
    import json

    from pipeline.metrics import acceleration_ratio

    run, theta0, epochs = _optimisation(perceptron_data)
    reference_paths, reference_history = _outputs(tmp_path / "reference", epochs)
    reference = optimize_policy(run, theta0, reference_paths, reference_history, tmp_path / "r", 0)
    assert reference.loc[0, "test_acceleration_ratio"] == 1.0
    uniform = optimize_module.conventional_policy(run)
    conventional = optimize_module.loss_curves(run, theta0, uniform)
    last = optimize_module.loss_curves(run, theta0, torch.load(reference_paths[max(epochs)]))
    for name in ("test", "desired"):
        expected = acceleration_ratio(conventional[name].numpy(), last[name].numpy())
        assert reference[f"{name}_acceleration_ratio"].iloc[-1] == expected
    assert reference["test_acceleration_ratio"].iloc[-1] != 1.0  # the policy moved the curve

    paths, history, resume, _ = _interrupted_at_epoch_3(run, theta0, epochs, tmp_path, monkeypatch)
    state = torch.load(resume / "state.pt")
    del state["conventional"]
    torch.save(state, resume / "state.pt")
    for record in resume.glob("epoch*.json"):
        record.write_text(json.dumps({k: v for k, v in json.loads(record.read_text()).items()
                                      if k != "conventional"}))  # fmt: skip
    frame = optimize_policy(run, theta0, paths, history, resume, 0)
    pd.testing.assert_frame_equal(frame.drop(columns="seconds"), reference.drop(columns="seconds"))


def test_a_full_disk_names_the_file_its_free_space_and_the_setting(
    perceptron_data, tmp_path, monkeypatch
):
    """torch.save fails half-way through a policy file (ENOSPC): the error names the file, the
    free space and `policy.save_every`, no truncated file is left, and the re-run (space freed)
    resumes from the last saved epoch with the outputs of an uninterrupted run."""
    import errno

    from pipeline.results import PipelineWriteError

    run, theta0, epochs = _optimisation(perceptron_data)
    reference_paths, reference_history = _outputs(tmp_path / "reference", epochs)
    reference = optimize_policy(run, theta0, reference_paths, reference_history, tmp_path / "r", 0)
    real_save, saves = torch.save, []

    def disk_full_at_epoch_2(obj, path, *args, **kwargs):
        saves.append(str(path))
        if "epoch0002.pt" in str(path):
            with open(path, "wb") as handle:  # half the file, then no space left
                handle.write(b"\0" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_at_epoch_2)
    paths, history = _outputs(tmp_path / "out", epochs)
    resume = tmp_path / "resume"
    with pytest.raises(PipelineWriteError) as caught:
        optimize_policy(run, theta0, paths, history, resume, 0)
    message = str(caught.value)
    assert f"writing {resume / 'epoch0002.pt'} failed (OSError" in message
    assert "No space left on device" in message and " free." in message
    assert "`perceptron.policy.save_every` = 2" in message
    assert not (resume / "epoch0002.pt").exists()
    assert not list(resume.glob(".*")), "a temporary file was left"

    monkeypatch.setattr(torch, "save", real_save)
    calls, real_gradient = [], optimize_module.policy_gradient
    monkeypatch.setattr(
        optimize_module,
        "policy_gradient",
        lambda *a, **k: calls.append(1) or real_gradient(*a, **k),
    )
    frame = optimize_policy(run, theta0, paths, history, resume, 0)
    assert len(calls) == 3  # epochs 2, 3 and 4 (the last: its gap): the state at 2 was whole
    pd.testing.assert_frame_equal(frame.drop(columns="seconds"), reference.drop(columns="seconds"))
    for epoch in epochs:
        assert torch.equal(torch.load(paths[epoch]), torch.load(reference_paths[epoch]))


def test_a_full_disk_while_dumping_names_dump_every(tmp_path, monkeypatch):
    import errno

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.results import PipelineWriteError
    from pipeline.training.evaluate import write_dumps

    real_write = pq.write_table

    def no_space(table, path, **kwargs):
        if "e.parquet" not in str(path):  # the steps dump (pandas writes through here too)
            return real_write(table, path, **kwargs)
        Path(path).write_bytes(b"PAR1")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", no_space)
    settings = {"kind": "transformer", "evaluate": {"dump_every": 5, "dump_dense_until": 0}}
    steps, examples = pd.DataFrame({"step": [0, 1]}), pa.table({"step": [0, 0]})
    with pytest.raises(PipelineWriteError) as caught:
        write_dumps(steps, examples, tmp_path / "s.parquet", tmp_path / "e.parquet", settings)
    assert f"writing {tmp_path / 'e.parquet'} failed" in str(caught.value)
    assert "`transformer.evaluate.dump_every` = 5" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"]  # no partial e.parquet
