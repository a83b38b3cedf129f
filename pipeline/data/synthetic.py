"""Synthetic inputs of the right shape where the values do not matter to what is measured:
random token sequences for the Transformer (its time does not depend on the text) and a policy
after a gradient step, the input of the simplex projection. Used by the bench and the tests."""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.data.tokenizer import PAD_ID

SPLITS = ("train", "desired", "test")


def random_token_splits(data: dict, seed: int) -> dict[str, dict[str, Tensor]]:
    """`data["n_<split>"]` random sequences of `data["seq_len"]` tokens of `data["vocab_size"]`
    per split, right-padded to a random 50–100 % of the length (as real stories are)."""
    generator = torch.Generator().manual_seed(seed)
    seq_len = data["seq_len"]

    def tokens(n: int) -> dict[str, Tensor]:
        seq = torch.randint(1, data["vocab_size"], (n, seq_len), generator=generator)
        lengths = torch.randint(seq_len // 2, seq_len + 1, (n, 1), generator=generator)
        seq[torch.arange(seq_len) >= lengths] = PAD_ID
        return {"tokens": seq}

    return {split: tokens(data[f"n_{split}"]) for split in SPLITS}


def policy_after_step(rows: int, n: int, seed: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """A realistic input of the projection: a policy on the simplex plus a gradient step.

    Row t of the previous policy has a growing fraction of exact zeros (0 → 90 % along t), as
    optimised policies have; the step moves every entry by about half a typical weight (1/N).
    """
    generator = torch.Generator().manual_seed(seed)
    policy = torch.rand(rows, n, generator=generator, dtype=dtype).clamp_min_(1e-12).log_().neg_()
    zero_fraction = torch.linspace(0.0, 0.9, rows).unsqueeze(1)
    policy[torch.rand(rows, n, generator=generator) < zero_fraction] = 0
    policy /= policy.sum(dim=1, keepdim=True)
    return policy + torch.randn(rows, n, generator=generator, dtype=dtype) * (0.5 / n)
