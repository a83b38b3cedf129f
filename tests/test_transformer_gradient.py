"""The policy gradient through the Transformer (double backward through attention) at smoke size."""

import pytest
import torch

from pipeline.models.transformer import Transformer, TransformerShape
from pipeline.policy.adjoint import policy_gradient
from pipeline.policy.simplex import project_to_simplex
from pipeline.stability import READINGS
from tests.test_adjoint import unrolled_objective
from tests.test_models import transformer_case


def transformer_problem(
    seed: int = 0, n: int = 5, k: int = 3, steps: int = 4, reading: str = "ours"
):
    model_settings = READINGS[reading]
    shape = TransformerShape(
        vocab_size=30,
        seq_len=8,
        n_layer=2,
        n_embd=16,
        n_head=2,
        attention_scale=model_settings["attention_scale"],
        norm=model_settings["norm"],
    )
    model = Transformer(shape, init=model_settings["init"])
    g = torch.Generator().manual_seed(seed)
    train = {"tokens": torch.randint(3, 30, (n, 8), generator=g)}
    train["tokens"][1, 5:] = 0  # padded sequences, as in the data
    desired = {"tokens": torch.randint(3, 30, (k, 8), generator=g)}
    theta0 = model.init_params(g).double()
    policy = project_to_simplex(torch.rand(steps, n, generator=g, dtype=torch.float64) * 0.5)
    return model, train, desired, theta0, policy


@pytest.mark.parametrize("reading", list(READINGS))
@pytest.mark.parametrize("checkpoint_every", [1, 3])
def test_transformer_policy_gradient_equals_autograd_through_unrolled_loop(
    checkpoint_every, reading
):
    model, train, desired, theta0, policy = transformer_problem(reading=reading)
    eta = 0.5
    result = policy_gradient(model, theta0, train, desired, policy, eta, checkpoint_every)
    gamma = policy.clone().requires_grad_(True)
    objective = unrolled_objective(
        model, theta0.clone().requires_grad_(True), train, desired, gamma, eta
    )
    (expected,) = torch.autograd.grad(objective, gamma)
    assert result.objective == pytest.approx(float(objective.detach()), rel=1e-12)
    torch.testing.assert_close(result.grad, expected, rtol=1e-9, atol=1e-12)
    assert expected.abs().max() > 1e-6  # the test compares something that is not zero


def test_checkpointed_adjoint_equals_storing_every_step_in_float32():
    model, train, desired, theta0, policy = transformer_problem(seed=1, steps=9)
    theta0, policy = theta0.float(), policy.float()
    stored = policy_gradient(model, theta0, train, desired, policy, 0.5, checkpoint_every=1)
    checkpointed = policy_gradient(model, theta0, train, desired, policy, 0.5, checkpoint_every=3)
    # The same operations in the same order: equal to the last bit, not just close.
    assert torch.equal(stored.grad, checkpointed.grad)
    assert torch.equal(stored.desired_losses, checkpointed.desired_losses)


@pytest.mark.slow  # the graphs of test_models' compiled test: seconds from PyTorch's disk cache
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_policy_gradient_equals_autograd_through_unrolled_loop():
    """The default policy epoch of the Transformer (`train.compile: policy`) is the compiled
    one: its adjoint gradient against autograd through the eager unrolled loop. The model and
    chunk shape are test_models' compiled case, so the suite compiles them once."""
    model, batch, theta0, _, _ = transformer_case(chunk_size=3)
    compiled = Transformer(model.shape, chunk_size=3, compile=True)
    g = torch.Generator().manual_seed(1)
    desired = {"tokens": torch.randint(3, 40, (3, 10), generator=g)}
    policy = project_to_simplex(torch.rand(4, 6, generator=g, dtype=torch.float64) * 0.5)
    eta = 0.5
    result = policy_gradient(compiled, theta0, batch, desired, policy, eta, checkpoint_every=3)
    gamma = policy.clone().requires_grad_(True)
    objective = unrolled_objective(
        model, theta0.clone().requires_grad_(True), batch, desired, gamma, eta
    )
    (expected,) = torch.autograd.grad(objective, gamma)
    assert compiled.compiled
    assert result.objective == pytest.approx(float(objective.detach()), rel=1e-12)
    torch.testing.assert_close(result.grad, expected, rtol=1e-9, atol=1e-12)
    assert expected.abs().max() > 1e-6
