"""The small decoder-only Transformer of Appendix D, as a per-example loss of a flat θ.

Pre-norm RMSNorm blocks, causal self-attention, ReLU FFN of 4× width, learned positions, untied
LM head. Three details the paper leaves open are settings (`transformer.model`), each with our
first reading and the authors' (microsoft/LMOps, `learning_law/src/modeling.py`):

- `init`: θ_0 drawn `small` (GPT-2 style, N(0, 0.02) for every matrix) or as `pytorch`'s module
  defaults (embeddings N(0, 1), linear maps U(±1/√fan_in)), the authors' (their `init_weights`
  is never called);
- `attention_scale`: attention logits q·k divided by √`head_dim` (the usual) or by √`hidden`, the
  model width (the authors');
- `norm`: `rmsnorm`, x / √(mean x² + 1e-6) · w, or `rmsnorm_bias`, x / (√(mean x²) + 1e-8) · w + b
  (the authors': eps outside the root, and a bias). Norm weights start at 1, biases at 0.

The attention is written with matmul + masked softmax rather than `scaled_dot_product_attention`,
because the fused CPU kernels of the latter have no double backward, which the policy gradient
needs (H a through every step). The module holds the architecture;
the engine's parameters are a flat vector θ mapped onto it by `functional_call`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from pipeline.models.base import Batch, LossModel

ATTENTION_SCALES = ("head_dim", "hidden")
NORMS = ("rmsnorm", "rmsnorm_bias")
INITS = ("small", "pytorch")


@dataclass(frozen=True)
class TransformerShape:
    """Sizes of the Transformer (the paper: 2 layers, width 128, 8 heads, context 64, V 5K)."""

    vocab_size: int
    seq_len: int
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 8
    ffn_mult: int = 4
    pad_id: int = 0
    attention_scale: str = "head_dim"  # head_dim | hidden: logits q·k / √(this)
    norm: str = "rmsnorm"  # rmsnorm | rmsnorm_bias

    def __post_init__(self) -> None:
        if self.attention_scale not in ATTENTION_SCALES:
            raise ValueError(
                f"transformer.model.attention_scale = {self.attention_scale!r}: use one of "
                f"{', '.join(ATTENTION_SCALES)}"
            )
        if self.norm not in NORMS:
            raise ValueError(
                f"transformer.model.norm = {self.norm!r}: use one of {', '.join(NORMS)}"
            )
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_head = {self.n_head} does not divide n_embd = {self.n_embd}: each attention "
                "head needs n_embd / n_head dimensions (transformer.model.n_head / n_embd)"
            )


class RMSNorm(nn.Module):
    """x / √(mean x² + eps) · w: eps inside the root, no bias (`norm: rmsnorm`)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class RMSNormBias(nn.Module):
    """x / (√(mean x²) + eps) · w + b: eps outside the root, and a bias (`norm: rmsnorm_bias`,
    the authors')."""

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        rms = x.pow(2).mean(-1, keepdim=True).sqrt()
        return x / (rms + self.eps) * self.weight + self.bias


def make_norm(shape: TransformerShape) -> nn.Module:
    """The norm layer `shape.norm` names."""
    return RMSNormBias(shape.n_embd) if shape.norm == "rmsnorm_bias" else RMSNorm(shape.n_embd)


class CausalSelfAttention(nn.Module):
    def __init__(self, shape: TransformerShape) -> None:
        super().__init__()
        self.n_head = shape.n_head
        scaled_by = (
            shape.n_embd // shape.n_head if shape.attention_scale == "head_dim" else shape.n_embd
        )
        self.scale = 1.0 / math.sqrt(scaled_by)
        self.qkv = nn.Linear(shape.n_embd, 3 * shape.n_embd, bias=False)
        self.proj = nn.Linear(shape.n_embd, shape.n_embd, bias=False)
        mask = torch.ones(shape.seq_len, shape.seq_len, dtype=torch.bool).tril()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.n_head, d // self.n_head).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * self.scale
        scores = scores.masked_fill(~self.mask[:s, :s], float("-inf"))
        y = scores.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, s, d))


class Block(nn.Module):
    def __init__(self, shape: TransformerShape) -> None:
        super().__init__()
        self.norm1 = make_norm(shape)
        self.attn = CausalSelfAttention(shape)
        self.norm2 = make_norm(shape)
        hidden = shape.ffn_mult * shape.n_embd
        self.ffn = nn.Sequential(
            nn.Linear(shape.n_embd, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, shape.n_embd, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class GPT(nn.Module):
    """Token + position embeddings, `n_layer` pre-norm blocks, final norm, untied LM head."""

    def __init__(self, shape: TransformerShape) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(shape.vocab_size, shape.n_embd)
        self.pos_emb = nn.Embedding(shape.seq_len, shape.n_embd)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layer))
        self.norm = make_norm(shape)
        self.head = nn.Linear(shape.n_embd, shape.vocab_size, bias=False)

    def forward(self, tokens: Tensor) -> Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.tok_emb(tokens) + self.pos_emb(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


#: Logits per autograd graph when the chunk size is left automatic on a CPU (8 MB in float32):
#: the logits and the loss's temporaries then stay in the cache, which makes the double backward of
#: the policy gradient about 1.3× faster, and the training step a little, than one graph over the
#: whole set. On a GPU the automatic chunk is the whole set.
AUTO_CHUNK_LOGITS = 1 << 21


def auto_chunk_size(shape: TransformerShape, device: torch.device | str) -> int | None:
    """Examples per autograd graph when none is configured: see `AUTO_CHUNK_LOGITS`."""
    if torch.device(device).type != "cpu":
        return None
    return max(1, AUTO_CHUNK_LOGITS // (shape.seq_len * shape.vocab_size))


class Transformer(LossModel):
    """Per-sequence next-token cross-entropy, averaged over the non-padding target positions."""

    def __init__(
        self,
        shape: TransformerShape,
        chunk_size: int | None = None,
        device: torch.device | str = "cpu",
        compile: bool = False,
        init: str = "small",
    ) -> None:
        super().__init__(chunk_size=chunk_size or auto_chunk_size(shape, device), compile=compile)
        if init not in INITS:
            raise ValueError(f"transformer.model.init = {init!r}: use one of {', '.join(INITS)}")
        self.shape = shape
        self.init = init
        self.module = GPT(shape).to(device)  # holds the architecture and the causal mask
        self.names = [name for name, _ in self.module.named_parameters()]
        self.shapes = [p.shape for _, p in self.module.named_parameters()]
        self.sizes = [p.numel() for _, p in self.module.named_parameters()]

    @property
    def num_params(self) -> int:
        return sum(self.sizes)

    def init_params(self, generator: torch.Generator) -> Tensor:
        """θ_0 under `init`: norm weights 1 and biases 0; every matrix N(0, 0.02) (`small`), or
        PyTorch's defaults (`pytorch`): embeddings N(0, 1), linear weights U(±1/√fan_in)."""
        pieces = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            if "norm" in name:
                fill = 1.0 if name.endswith("weight") else 0.0
                piece = torch.full(shape, fill)
            elif self.init == "small":
                piece = 0.02 * torch.randn(shape, generator=generator)
            elif "emb" in name:
                piece = torch.randn(shape, generator=generator)
            else:  # nn.Linear's weight (out, in): U(±1/√in)
                bound = 1.0 / math.sqrt(shape[1])
                piece = (2 * torch.rand(shape, generator=generator) - 1) * bound
            pieces.append(piece.flatten())
        return torch.cat(pieces)

    def unflatten(self, theta: Tensor) -> dict[str, Tensor]:
        """Views of the flat θ shaped as the module's parameters."""
        chunks = theta.split(self.sizes)
        return {n: c.view(s) for n, c, s in zip(self.names, chunks, self.shapes, strict=True)}

    def losses(self, theta: Tensor, batch: Batch) -> Tensor:
        tokens = batch["tokens"]
        logits = functional_call(self.module, self.unflatten(theta), (tokens[:, :-1],))
        targets = tokens[:, 1:]
        mask = (targets != self.shape.pad_id).to(logits.dtype)
        per_token = token_cross_entropy(logits, targets)
        return (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)


def token_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """−log softmax(logits)[target] per position, as log-sum-exp minus the target logit.

    Written out rather than `F.cross_entropy` because its double backward (through
    log_softmax_backward) costs about twice as much on CPU; the shift by the detached maximum
    keeps it stable and leaves every derivative unchanged.
    """
    shift = logits.detach().amax(dim=-1, keepdim=True)
    log_normaliser = (logits - shift).exp().sum(dim=-1).log() + shift.squeeze(-1)
    return log_normaliser - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
