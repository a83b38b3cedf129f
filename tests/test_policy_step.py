"""The policy optimiser's step size (the objective's scale and the linear decay) and the
optimiser itself lowering J on a toy Perceptron problem."""

from __future__ import annotations

import pytest
import torch

from pipeline.experiment import Run
from pipeline.models.perceptron import Perceptron
from pipeline.policy.optimize import optimize_policy, policy_step_size


def policy(**settings) -> dict:
    return {"step_size": 0.3, "objective_scale": "mean", "schedule": "linear", "epochs": 8,
            **settings}  # fmt: skip


@pytest.mark.parametrize("schedule", ["linear", "constant"])
@pytest.mark.parametrize("steps", [1, 7, 200])
def test_the_mean_objective_divides_the_step_by_t(schedule, steps):
    """J/T has 1/T of J's gradient: its step is the sum objective's over T, at every epoch."""
    for epoch in range(9):
        mean = policy_step_size(policy(schedule=schedule), epoch, steps)
        total = policy_step_size(policy(schedule=schedule, objective_scale="sum"), epoch, steps)
        assert mean == pytest.approx(total / steps, rel=1e-12)


@pytest.mark.parametrize("epochs", [1, 5, 8])
def test_the_linear_schedule_decays_the_step_to_zero_at_the_last_epoch(epochs):
    """ε_e = ε (1 − e/E): the full step after epoch 0, equal decrements, none after epoch E;
    the constant schedule keeps ε."""
    settings = policy(epochs=epochs, objective_scale="sum")
    steps = [policy_step_size(settings, e, 50) for e in range(epochs + 1)]
    assert steps[0] == settings["step_size"] and steps[-1] == 0.0
    decrements = [a - b for a, b in zip(steps, steps[1:], strict=False)]
    assert decrements == pytest.approx([settings["step_size"] / epochs] * epochs, rel=1e-12)
    constant = {**settings, "schedule": "constant"}
    assert {policy_step_size(constant, e, 50) for e in range(epochs + 1)} == {0.3}


def toy_run(epochs: int) -> Run:
    """A Perceptron of dimension 4 trained for 30 steps on 24 examples; the desired examples
    come from a shifted distribution, so that weighting the training examples helps."""
    g = torch.Generator().manual_seed(3)
    teacher = torch.randn(4, generator=g, dtype=torch.float64)

    def split(count: int, shift: float) -> dict:
        x = torch.randn(count, 4, generator=g, dtype=torch.float64) + shift
        return {"x": x, "y": (x @ teacher > 0).to(torch.float64)}

    settings = {
        "name": "toy", "kind": "perceptron", "train": {"eta": 0.5, "steps": 30},
        "data": {}, "model": {},
        "policy": {"epochs": epochs, "step_size": 0.5, "objective_scale": "mean",
                   "schedule": "linear", "save_every": 1, "checkpoint_every": 1,
                   "selection": "last", "validation_fraction": 0.25,
                   "optimizer": "projected_gradient", "init": "conventional", "init_mix": 0.01,
                   "form": "per_step"},
    }  # fmt: skip
    return Run(settings, Perceptron(4), split(24, 0.0), split(10, 0.7), split(10, 0.7),
               torch.device("cpu"), torch.float64)  # fmt: skip


def test_optimize_policy_lowers_j_on_a_toy_problem(tmp_path):
    """Four epochs of projected gradient with the default settings' step (mean objective,
    linear decay): J falls below the conventional policy's, no epoch raises it above J_0,
    and every saved policy is a distribution over the examples at each step."""
    epochs = 4
    run = toy_run(epochs)
    theta0 = torch.zeros(4, dtype=torch.float64)
    paths = {e: tmp_path / f"epoch{e}.pt" for e in range(epochs + 1)}
    history = optimize_policy(run, theta0, paths, tmp_path / "h.parquet", tmp_path / "r", 0)
    objective = history["objective"].tolist()
    assert len(objective) == epochs + 1
    assert objective[-1] < objective[0] and max(objective[1:]) <= objective[0]
    for path in paths.values():
        gamma = torch.load(path)
        assert gamma.shape == (30, 24) and (gamma >= 0).all()
        torch.testing.assert_close(gamma.sum(dim=1), torch.ones(30, dtype=gamma.dtype))
    conventional = torch.load(paths[0])
    torch.testing.assert_close(conventional, torch.full((30, 24), 1 / 24, dtype=torch.float64))
