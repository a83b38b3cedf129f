"""Model operations: closed forms against torch.func, contributions against explicit gradients."""

import pytest
import torch
from torch.func import grad

from pipeline.models.perceptron import Perceptron
from pipeline.models.transformer import Transformer, TransformerShape


def perceptron_case(seed=0, n=12, dim=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64) * 2
    batch = {"x": x, "y": (torch.rand(n, generator=g, dtype=torch.float64) > 0.5).double()}
    theta = torch.randn(dim, generator=g, dtype=torch.float64)
    weights = torch.rand(n, generator=g, dtype=torch.float64)
    vector = torch.randn(dim, generator=g, dtype=torch.float64)
    return Perceptron(dim), batch, theta, weights, vector


def transformer_case(seed=0, n=6, chunk_size=None):
    shape = TransformerShape(vocab_size=40, seq_len=10, n_layer=1, n_embd=16, n_head=2)
    model = Transformer(shape, chunk_size=chunk_size)
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(3, 40, (n, 10), generator=g)
    tokens[1, 6:] = 0  # padding
    tokens[4, 3:] = 0
    theta = model.init_params(g).double()
    weights = torch.rand(n, generator=g, dtype=torch.float64)
    vector = torch.randn(theta.shape, generator=g, dtype=torch.float64) * 0.1
    return model, {"tokens": tokens}, theta, weights, vector


def explicit_gradients(model, batch, theta):
    """Per-example gradients, one autograd call each (the slow reference)."""
    n = next(iter(batch.values())).shape[0]
    rows = []
    for i in range(n):
        part = {k: v[i : i + 1] for k, v in batch.items()}
        rows.append(grad(lambda th, part=part: model.losses(th, part)[0])(theta))
    return torch.stack(rows)


def test_perceptron_closed_forms_equal_the_generic_engine():
    model, batch, theta, weights, vector = perceptron_case()
    generic = Perceptron(model.dim, closed_form=False)
    for name, args in [
        ("weighted_grad", (theta, batch, weights)),
        ("weighted_grad_vjp", (theta, batch, weights, vector)),
        ("contributions", (theta, batch, vector)),
    ]:
        for fast, slow in zip(
            getattr(model, name)(*args), getattr(generic, name)(*args), strict=True
        ):
            torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", [perceptron_case, transformer_case])
def test_contributions_equal_explicit_gradient_dot_products(case):
    model, batch, theta, _, direction = case()
    losses, contributions = model.contributions(theta, batch, direction)
    expected = explicit_gradients(model, batch, theta) @ direction
    torch.testing.assert_close(contributions, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(losses, model.losses(theta, batch))


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_transformer_vjp_equals_explicit_hessian_and_gradients(chunk_size):
    """The double backward through the attention: H a and ∇l_n · a against explicit autograd."""
    model, batch, theta, weights, vector = transformer_case(chunk_size=chunk_size)
    hvp, dots = model.weighted_grad_vjp(theta, batch, weights, vector)
    expected_dots = explicit_gradients(model, batch, theta) @ vector

    def weighted_grad(th):
        return grad(lambda t: (weights * model.losses(t, batch)).sum())(th)

    _, expected_hvp = torch.func.jvp(weighted_grad, (theta,), (vector,))
    torch.testing.assert_close(dots, expected_dots, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(hvp, expected_hvp, rtol=1e-8, atol=1e-10)


def test_transformer_loss_ignores_padding():
    model, batch, theta, _, _ = transformer_case()
    tokens = batch["tokens"]
    losses = model.losses(theta, batch)
    # Row 1 has 6 real tokens: its loss is that of the unpadded 6-token sequence.
    short = Transformer(TransformerShape(vocab_size=40, seq_len=6, n_layer=1, n_embd=16, n_head=2))
    params = model.unflatten(theta)
    params["pos_emb.weight"] = params["pos_emb.weight"][:6]
    short_theta = torch.cat([params[n].flatten() for n in short.names])
    alone = short.losses(short_theta, {"tokens": tokens[1:2, :6]})
    torch.testing.assert_close(losses[1], alone[0])
