"""Exact Euclidean projection onto the probability simplex, row by row (Proj_Δ of Eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor


def project_to_simplex(v: Tensor) -> Tensor:
    """argmin_{p ∈ Δ} ‖p − v_t‖ for every row v_t of v, by the sort-based algorithm.

    Sort each row in decreasing order u, find ρ = max{j : u_j − (Σ_{i≤j} u_i − 1)/j > 0}
    (the condition holds exactly for a prefix), set τ = (Σ_{i≤ρ} u_i − 1)/ρ and return
    max(v − τ, 0). O(N log N) per row, vectorised over all rows; exact zeros outside the support.
    """
    u = torch.sort(v, dim=-1, descending=True).values
    excess = u.cumsum(dim=-1).sub_(1)
    ranks = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
    support = (u * ranks > excess).sum(dim=-1, keepdim=True)
    tau = excess.gather(-1, support - 1) / support
    return (v - tau).clamp_min_(0)
