"""The policy gradient of the adjoint engine against autograd and finite differences."""

import pytest
import torch

from pipeline.models.perceptron import Perceptron
from pipeline.policy.adjoint import policy_gradient
from pipeline.policy.simplex import project_to_simplex
from pipeline.training.descent import DIVERGENCE_FACTOR, TrainingDiverged


def tiny_problem(seed: int = 0, n: int = 8, k: int = 5, dim: int = 4):
    g = torch.Generator().manual_seed(seed)

    def make(count, shift):
        x = torch.randn(count, dim, generator=g, dtype=torch.float64) + shift
        y = (x @ teacher > 0).to(torch.float64)
        return {"x": x, "y": y}

    teacher = torch.randn(dim, generator=g, dtype=torch.float64)
    train, desired = make(n, 0.0), make(k, 0.5)
    theta0 = 0.1 * torch.randn(dim, generator=g, dtype=torch.float64)
    policy = project_to_simplex(torch.rand(5, n, generator=g, dtype=torch.float64))
    return train, desired, theta0, policy


def unrolled_objective(model, theta0, train, desired, policy, eta):
    """J(γ) by plain autograd through the unrolled training loop."""
    theta, total = theta0, 0.0
    for t in range(policy.shape[0]):
        weighted = (policy[t] * model.losses(theta, train)).sum()
        (g,) = torch.autograd.grad(weighted, theta, create_graph=True)
        theta = theta - eta * g
        total = total + model.losses(theta, desired).mean()
    return total


@pytest.mark.parametrize("closed_form", [True, False])
@pytest.mark.parametrize("checkpoint_every", [1, 2, 3, 5, 7])  # 3: a short last segment; 7 > T
def test_gradient_equals_autograd_through_unrolled_loop(closed_form, checkpoint_every):
    train, desired, theta0, policy = tiny_problem()
    model = Perceptron(dim=4, closed_form=closed_form)
    eta = 0.7
    result = policy_gradient(model, theta0, train, desired, policy, eta, checkpoint_every)

    gamma = policy.clone().requires_grad_(True)
    theta = theta0.clone().requires_grad_(True)
    objective = unrolled_objective(model, theta, train, desired, gamma, eta)
    (expected,) = torch.autograd.grad(objective, gamma)

    assert result.objective == pytest.approx(float(objective.detach()), rel=1e-12)
    torch.testing.assert_close(result.grad, expected, rtol=1e-10, atol=1e-12)


def test_gradient_matches_finite_difference_on_the_simplex():
    train, desired, theta0, policy = tiny_problem(seed=3)
    model = Perceptron(dim=4, closed_form=False)
    eta = 0.7
    result = policy_gradient(model, theta0, train, desired, policy, eta)
    direction = torch.randn(
        policy.shape, generator=torch.Generator().manual_seed(1), dtype=policy.dtype
    )
    direction -= direction.mean(dim=1, keepdim=True)  # tangent to the simplex: rows sum to zero
    h = 1e-6

    def objective(p):
        return policy_gradient(model, theta0, train, desired, p, eta).objective

    finite_difference = (objective(policy + h * direction) - objective(policy - h * direction)) / (
        2 * h
    )
    analytic = float((result.grad * direction).sum())
    assert analytic == pytest.approx(finite_difference, rel=1e-6)
    assert abs(analytic) > 1e-4  # a direction along which J really changes


def test_divergence_names_the_first_bad_step():
    """The adjoint's forward pass checks every step at once, with the per-step rule of training."""
    train, desired, theta0, policy = tiny_problem()
    model, eta = Perceptron(dim=4), 1e6
    theta, weighted = theta0, []
    for t in range(policy.shape[0]):
        g, losses = model.weighted_grad(theta, train, policy[t])
        weighted.append(float(policy[t] @ losses))
        theta = theta - eta * g
    first_bad = next(t for t, w in enumerate(weighted) if w > DIVERGENCE_FACTOR * weighted[0])
    assert first_bad >= 1
    with pytest.raises(TrainingDiverged) as err:
        policy_gradient(model, theta0, train, desired, policy, eta)
    assert err.value.step == first_bad
