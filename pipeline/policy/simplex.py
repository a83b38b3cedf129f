"""Exact Euclidean projection onto the probability simplex, row by row (Proj_Δ of Eq. 6).

The projection of a row v is max(v − τ, 0), where τ is the unique threshold with
Σ_i max(v_i − τ, 0) = 1, and the support S = {i : v_i > τ} satisfies τ = (Σ_{i∈S} v_i − 1)/|S|.
Finding S is the whole problem. Sorting finds it in O(N log N) (`sort_projection`); Michelot's
iteration τ ← (Σ_{v_i > τ} v_i − 1)/|{v_i > τ}|, started from a lower bound of τ, raises τ
monotonically and reaches S exactly in a few passes (2–6 on the policies of this pipeline), each
a cheap vectorised pass. A row is accepted only at a fixed point — S unchanged by the update, which
is exactly the optimality condition above — so the result is the exact projection, not an
approximation; rows that have not reached it after `max_iterations` are sorted instead.

With several processes (pipeline/distributed.py) each holds a share of the columns of every row.
Michelot's iteration needs only per-row sums, counts and maxima, which are all-reduced, so no
process holds a whole row; only the rare rows that fall back to sorting are gathered whole.

Beside the projection, the two other pieces of geometry on a product of simplices that the policy
optimisation uses: the mirror-descent (exponentiated-gradient) step, which stays on the simplex
without a projection, and the Frank–Wolfe gap, which is zero exactly at a stationary point.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pipeline.distributed import (
    all_gather_columns,
    all_reduce_max,
    all_reduce_min,
    all_reduce_sum,
    local_shard,
    total_count,
    world_size,
)

#: Elements per block of rows: a block and its temporaries stay in the CPU cache.
BLOCK_ELEMENTS = 1 << 18


def sort_projection(v: Tensor) -> Tensor:
    """The projection of every row by the sort-based algorithm (O(N log N) per row).

    Sort each row in decreasing order u, find ρ = max{j : u_j − (Σ_{i≤j} u_i − 1)/j > 0}
    (the condition holds exactly for a prefix), set τ = (Σ_{i≤ρ} u_i − 1)/ρ and return
    max(v − τ, 0).
    """
    v = shifted_to_max_zero(v)
    u = torch.sort(v, dim=-1, descending=True).values
    excess = u.cumsum(dim=-1).sub_(1)
    ranks = torch.arange(1, v.shape[-1] + 1, dtype=v.dtype, device=v.device)
    support = (u * ranks > excess).sum(dim=-1, keepdim=True).clamp_(min=1)  # u_1 always is in S
    tau = excess.gather(-1, support - 1) / support
    return (v - tau).clamp_min_(0)


def shifted_to_max_zero(v: Tensor, columns_shared: bool = False) -> Tensor:
    """v − max_i v_i per row: the projection is unchanged by adding a constant to a row, and with
    the largest entry at 0 the threshold lies in [−1, 0), so rows with huge entries (an exploding
    policy gradient) keep full precision where it matters instead of losing the 1 to rounding.
    `columns_shared`: v holds this process's columns; the maximum is over every process's."""
    row_max = v.amax(dim=-1, keepdim=True)
    return v - (all_reduce_max(row_max) if columns_shared else row_max)


def simplex_threshold(
    v: Tensor, max_iterations: int, n: int | None = None
) -> tuple[Tensor, Tensor]:
    """(τ, converged): Michelot's threshold for every row of v (..., N), shapes (..., 1).

    τ starts at max((Σv − 1)/N, max v − 1), a lower bound of the exact threshold, and every update
    keeps it one; `converged` marks the rows that reached the fixed point, where τ is exact.
    With several processes v holds this process's columns of rows of length `n`; the per-row
    sums, counts and maxima are all-reduced, so every process finds the same τ.
    """
    n = n or v.shape[-1]
    totals = all_reduce_sum(v.sum(-1, keepdim=True))
    tau = torch.maximum((totals - 1) / n, all_reduce_max(v.amax(-1, keepdim=True)) - 1)
    size = torch.full_like(tau, n + 1)  # |S| of the previous iteration (none yet)
    converged = torch.zeros_like(tau, dtype=torch.bool)
    for _ in range(max_iterations):
        excess = (v - tau).clamp_(min=0)  # (v_i − τ) on S, 0 elsewhere
        # |S| (a float sum of 0/1 is exact) and Σ_S (v_i − τ), summed over processes at once
        sums = torch.cat([excess.sign().sum(-1, keepdim=True), excess.sum(-1, keepdim=True)], -1)
        all_reduce_sum(sums)
        new_size, excess_sum = sums[..., :1], sums[..., 1:]
        converged = (new_size == size) & (new_size > 0)
        if converged.all():
            break
        tau = torch.maximum(tau, tau + (excess_sum - 1) / new_size)
        size = new_size
    return tau, converged


def project_to_simplex(v: Tensor, max_iterations: int = 50) -> Tensor:
    """argmin_{p ∈ Δ} ‖p − v_t‖ for every row v_t of v (T × N); exact zeros outside the support.

    Rows are processed in cache-sized blocks (no full-size temporaries); each block by Michelot's
    iteration, and its rows that have not converged by sorting. With several processes v holds
    this process's columns (`local_shard(N)`), and so does the result.
    """
    out = torch.empty_like(v)
    n = total_count(v.shape[-1])
    own = local_shard(n)
    # The same blocks on every process (its collectives must match): sized by the widest share.
    rows = max(1, BLOCK_ELEMENTS // max(1, -(-n // world_size())))
    for start in range(0, v.shape[0], rows):
        block = shifted_to_max_zero(v[start : start + rows], columns_shared=True)
        target = out[start : start + rows]
        tau, converged = simplex_threshold(block, max_iterations, n)
        torch.sub(block, tau, out=target).clamp_(min=0)
        if not converged.all():
            slow = (~converged).squeeze(-1).nonzero().squeeze(-1)
            whole = all_gather_columns(block[slow], n)  # only these rows, whole
            target[slow] = sort_projection(whole)[:, own.slice]
    return out


def exponentiated_step(policy: Tensor, grad: Tensor, step: float) -> Tensor:
    """Mirror descent with the entropy mirror map on every row: γ_t ∝ γ_t · exp(−step · g_t).

    Computed in the log domain (max-shifted, no overflow). An exact zero cannot grow under a
    multiplicative update, so zeros are lifted to the dtype's smallest normal number first: an
    example the gradient keeps favouring comes back, slowly (`policy.init_mix` starts it nearer).
    """
    logits = policy.clamp_min(torch.finfo(policy.dtype).tiny).log_().sub_(grad, alpha=step)
    logits.sub_(all_reduce_max(logits.amax(-1, keepdim=True)))
    weights = logits.exp_()
    return weights.div_(all_reduce_sum(weights.sum(-1, keepdim=True)))


def frank_wolfe_gap(policy: Tensor, grad: Tensor) -> float:
    """Σ_t (⟨g_t, γ_t⟩ − min_n g_{t,n}) for rows γ_t on the simplex and g = ∂J/∂γ.

    max_{p ∈ Δ^T} ⟨g, γ − p⟩: the decrease of J that the linear model promises by moving to the
    best vertex of each row. It is ≥ 0, and 0 exactly where γ is a stationary point of J on the
    product of simplices (every row puts weight only on examples whose g_{t,n} is that row's
    minimum). With several processes each holds some columns; sums and minima are all-reduced.
    """
    inner = all_reduce_sum((policy * grad).sum(-1))
    lowest = all_reduce_min(grad.amin(-1))
    return float((inner - lowest).sum())
