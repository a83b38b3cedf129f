"""Model operations: closed forms against torch.func, contributions against explicit gradients."""

import pytest
import torch
from torch import Tensor
from torch.func import grad

from pipeline.models.perceptron import Perceptron
from pipeline.models.transformer import (
    AUTO_CHUNK_LOGITS,
    Transformer,
    TransformerShape,
    auto_chunk_size,
)


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


def assert_engine_operations_equal(first, second, theta, batch, weights, vector, atol):
    """weighted_grad, weighted_grad_vjp and contributions of two models agree to `atol`."""
    for name, args in [
        ("weighted_grad", (theta, batch, weights)),
        ("weighted_grad_vjp", (theta, batch, weights, vector)),
        ("contributions", (theta, batch, vector)),
    ]:
        for a, b in zip(getattr(first, name)(*args), getattr(second, name)(*args), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=atol)


def test_perceptron_closed_forms_equal_the_generic_engine():
    model, batch, theta, weights, vector = perceptron_case()
    generic = Perceptron(model.dim, closed_form=False)
    assert_engine_operations_equal(model, generic, theta, batch, weights, vector, atol=1e-12)


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


def plain_autograd_reference(model, tokens, theta, weights):
    """Σ_n w_n l_n(θ) and its gradient the textbook way: θ copied into the parameters of an
    nn.Module, `F.cross_entropy` with `ignore_index` for the padding, `.backward()`."""
    import copy

    module = copy.deepcopy(model.module).double()
    torch.nn.utils.vector_to_parameters(theta.detach().clone(), module.parameters())
    logits = module(tokens[:, :-1])
    targets = tokens[:, 1:]
    per_token = torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), targets, ignore_index=model.shape.pad_id, reduction="none"
    )
    losses = per_token.sum(1) / (targets != model.shape.pad_id).sum(1)
    (weights * losses).sum().backward()
    grad = torch.nn.utils.parameters_to_vector(p.grad for p in module.parameters())
    return losses.detach(), grad


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_transformer_losses_and_gradients_equal_plain_autograd(chunk_size):
    """The flat-θ Transformer (functional_call, its own cross-entropy, chunks) against an
    independent computation: per-example losses, the weighted gradient, and the mean loss and
    gradient of the desired set, also over a stretch of θ_t."""
    model, batch, theta, weights, vector = transformer_case(chunk_size=chunk_size)
    expected_losses, expected_grad = plain_autograd_reference(
        model, batch["tokens"], theta, weights
    )
    torch.testing.assert_close(model.losses(theta, batch), expected_losses, rtol=1e-12, atol=0)
    grad, losses = model.weighted_grad(theta, batch, weights)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(losses, expected_losses, rtol=1e-12, atol=0)

    thetas = torch.stack([theta + s * vector for s in (0.0, 0.5, -1.0)])
    mean = torch.full_like(weights, 1 / len(weights))
    stretch_losses, stretch_grads = model.mean_losses_and_grads(thetas, batch)
    stretch_means = model.mean_losses(thetas, batch)
    for i, th in enumerate(thetas):
        losses_i, grad_i = plain_autograd_reference(model, batch["tokens"], th, mean)
        torch.testing.assert_close(stretch_losses[i], losses_i.mean(), rtol=1e-12, atol=0)
        torch.testing.assert_close(stretch_grads[i], grad_i, rtol=1e-10, atol=1e-14)
        torch.testing.assert_close(stretch_means[i], losses_i.mean(), rtol=1e-12, atol=0)


def test_stretch_batched_desired_losses_equal_per_step_ones():
    """The Perceptron's closed-form mean_losses_and_grads / mean_losses over a stretch of θ_t
    (one matrix product) = its per-θ_t closed forms."""
    model, batch, theta, _, vector = perceptron_case()
    thetas = torch.stack([theta + s * vector for s in (0.0, 0.5, -1.0)])
    losses, grads = model.mean_losses_and_grads(thetas, batch)
    for i, th in enumerate(thetas):
        loss, g = model.mean_loss_and_grad(th, batch)
        torch.testing.assert_close(losses[i], loss, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(grads[i], g, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(model.mean_losses(thetas, batch)[i], model.mean_loss(th, batch))


def test_perceptron_layout_changes_no_value():
    """`prepare` stores Z column-major: the same numbers through every closed form."""
    model, batch, theta, weights, vector = perceptron_case()
    prepared = model.prepare(batch)
    assert not prepared["x"].is_contiguous() and torch.equal(prepared["x"], batch["x"])
    for name, args in [
        ("weighted_grad", (theta, weights)),
        ("weighted_grad_vjp", (theta, weights, vector)),
        ("contributions", (theta, vector)),
    ]:
        a, b = (getattr(model, name)(args[0], data, *args[1:]) for data in (prepared, batch))
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", [perceptron_case, transformer_case])
def test_eager_autograd_chunks_equal_torch_func(case, dtype):
    """The eager chunk gradient and VJP (torch.autograd.grad) against their torch.func forms,
    also under no_grad (as in `loss_curves`): the Transformer's bit for bit, so the faster path
    moves no number; the generic Perceptron's to rounding (torch.func decomposes its
    binary_cross_entropy_with_logits; its runs use the closed forms, which neither touches)."""
    model, batch, theta, weights, vector = case()
    exact = isinstance(model, Transformer)
    if not exact:
        model = Perceptron(model.dim, closed_form=False)
    model.chunk_size = 4  # two chunks, the second short
    theta, weights, vector = theta.to(dtype), weights.to(dtype), vector.to(dtype)
    batch = {k: v.to(dtype) if v.is_floating_point() else v for k, v in batch.items()}

    def operations() -> list[Tensor]:
        with torch.no_grad():
            quiet = model.weighted_grad(theta, batch, weights)
        return [
            *model.weighted_grad(theta, batch, weights),
            *model.weighted_grad_vjp(theta, batch, weights, vector),
            *quiet,
        ]

    eager = operations()
    model._chunk_grad, model._chunk_vjp = model._func_chunk_grad, model._func_chunk_vjp
    for a, b in zip(eager, operations(), strict=True):
        assert a.dtype == dtype
        if exact:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b)  # the dtype's default tolerance


def test_automatic_chunks_fit_the_cache_on_cpu_only():
    shape = TransformerShape(vocab_size=1024, seq_len=32)
    assert auto_chunk_size(shape, "cpu") == AUTO_CHUNK_LOGITS // (32 * 1024) == 64
    assert auto_chunk_size(shape, "cuda") is None
    assert Transformer(shape).chunk_size == 64
    assert Transformer(shape, chunk_size=10).chunk_size == 10


@pytest.mark.slow  # compiles three graphs: about a minute, or seconds from PyTorch's disk cache
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_transformer_equals_eager():
    """Two equal chunks of 3: one compilation per operation (each chunk shape compiles anew)."""
    model, batch, theta, weights, vector = transformer_case(chunk_size=3)
    compiled = Transformer(model.shape, chunk_size=3, compile=True)
    assert_engine_operations_equal(compiled, model, theta, batch, weights, vector, atol=1e-14)
