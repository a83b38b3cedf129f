"""The Transformer's two readings (ours and the authors', `transformer.model`) against their
definitions: θ_0's distribution, the attention scale and the norm on hand-made inputs."""

import math

import pytest
import torch
from scipy import stats

from pipeline.models.transformer import (
    CausalSelfAttention,
    RMSNorm,
    RMSNormBias,
    Transformer,
    TransformerShape,
)


def initial_parameters(init: str, norm: str = "rmsnorm") -> dict[str, torch.Tensor]:
    shape = TransformerShape(vocab_size=200, seq_len=16, n_layer=1, n_embd=32, n_head=4, norm=norm)
    model = Transformer(shape, init=init)
    return model.unflatten(model.init_params(torch.Generator().manual_seed(0)))


def ks_pvalue(values: torch.Tensor, distribution) -> float:
    return stats.kstest(values.flatten().double().numpy(), distribution.cdf).pvalue


def test_pytorch_init_follows_pytorchs_module_defaults():
    params = initial_parameters("pytorch", norm="rmsnorm_bias")
    standard_normal = stats.norm(0, 1)
    for name in ("tok_emb.weight", "pos_emb.weight"):
        assert ks_pvalue(params[name], standard_normal) > 0.01, name
    for name in ("blocks.0.attn.qkv.weight", "blocks.0.ffn.0.weight", "blocks.0.ffn.2.weight",
                 "head.weight"):  # fmt: skip
        fan_in = params[name].shape[1]
        bound = 1 / math.sqrt(fan_in)
        assert ks_pvalue(params[name], stats.uniform(-bound, 2 * bound)) > 0.01, name
        # and not the other reading's distribution: the test can tell them apart
        assert ks_pvalue(params[name], stats.norm(0, 0.02)) < 1e-6, name
    assert torch.equal(params["norm.weight"], torch.ones(32))
    assert torch.equal(params["norm.bias"], torch.zeros(32))


def test_small_init_draws_every_matrix_from_normal_002():
    params = initial_parameters("small")
    for name in ("tok_emb.weight", "blocks.0.attn.qkv.weight", "blocks.0.ffn.2.weight",
                 "head.weight"):  # fmt: skip
        assert ks_pvalue(params[name], stats.norm(0, 0.02)) > 0.01, name
        assert ks_pvalue(params[name], stats.norm(0, 1)) < 1e-6, name
    assert "norm.bias" not in params  # rmsnorm has no bias
    assert torch.equal(params["blocks.0.norm1.weight"], torch.ones(32))


@pytest.mark.parametrize("scale, divisor", [("head_dim", 2), ("hidden", 4)])
def test_attention_divides_the_logits_by_the_configured_width(scale, divisor):
    """Width 4, 2 heads of 2 dimensions; q = k = v = x and the output map the identity, so the
    attention of position 1 is computed by hand."""
    shape = TransformerShape(vocab_size=8, seq_len=2, n_embd=4, n_head=2, attention_scale=scale)
    attention = CausalSelfAttention(shape).double()
    with torch.no_grad():
        attention.qkv.weight.copy_(torch.eye(4).repeat(3, 1))
        attention.proj.weight.copy_(torch.eye(4))
    x0, x1 = [1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 1.0, 1.0]
    out = attention(torch.tensor([[x0, x1]], dtype=torch.float64))[0]
    # Position 0 attends to itself only. Position 1, head 0: logits x1·x0 = 0 and x1·x1 = 1,
    # divided by √divisor; head 1: logits 2 and 2, equal weights.
    w = math.exp(1 / math.sqrt(divisor)) / (1 + math.exp(1 / math.sqrt(divisor)))
    expected = torch.tensor([x0, [1 - w, w, 1.5, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_norms_place_eps_as_defined():
    """On x = (1e-4, −1e-4), rms 1e-4, eps matters: inside the root (1e-6) it shrinks the output
    to 0.0995; outside (1e-8) hardly (0.9999); the bias is added after the weight."""
    x = torch.tensor([1e-4, -1e-4], dtype=torch.float64)
    ours = RMSNorm(2).double()
    torch.testing.assert_close(ours(x), x / math.sqrt(1e-8 + 1e-6), rtol=1e-12, atol=0)
    assert float(ours(x)[0].detach()) == pytest.approx(0.0995037, rel=1e-6)
    authors = RMSNormBias(2).double()
    with torch.no_grad():
        authors.weight.copy_(torch.tensor([2.0, 3.0]))
        authors.bias.copy_(torch.tensor([0.5, -0.5]))
    expected = torch.tensor([2 * 0.99990001 + 0.5, -3 * 0.99990001 - 0.5], dtype=torch.float64)
    torch.testing.assert_close(authors(x), expected, rtol=1e-8, atol=0)


def test_unknown_reading_names_the_setting():
    with pytest.raises(ValueError, match="transformer.model.attention_scale"):
        TransformerShape(vocab_size=8, seq_len=4, n_embd=4, n_head=2, attention_scale="width")
    with pytest.raises(ValueError, match="transformer.model.init"):
        Transformer(TransformerShape(vocab_size=8, seq_len=4, n_embd=4, n_head=2), init="xavier")


def test_rising_steps_are_the_steps_whose_loss_exceeds_the_previous_one():
    from pipeline.stability import rising_steps

    assert rising_steps([3.0, 2.0, 2.5, 1.0, 1.2, 1.2]) == [2, 4]
    assert rising_steps([3.0, 2.0, 2.05], tolerance=0.1) == []
