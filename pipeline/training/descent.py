"""Full-batch gradient descent under a learning policy (Eq. 1):

θ_{t+1} = θ_t − η ∇_θ Σ_n γ_{t,n} l(x_n, θ_t),  t = 0 … T−1.

With several processes (pipeline/distributed.py) the sum over n runs over every process's
examples: each computes its part, and the parts are all-reduced.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from pipeline.distributed import Shard, all_reduce_sum
from pipeline.models.base import Batch, LossModel

#: Training counts as diverged when its weighted loss exceeds this multiple of the loss at θ_0.
DIVERGENCE_FACTOR = 100.0


class TrainingDiverged(RuntimeError):
    """Gradient descent produced a non-finite or exploding loss at some step."""

    def __init__(self, step: int, loss: float, initial_loss: float) -> None:
        self.step, self.loss, self.initial_loss = step, loss, initial_loss
        super().__init__(
            f"training diverged at step {step}: weighted training loss {loss:.4g} "
            f"(initial {initial_loss:.4g}; the limit is {DIVERGENCE_FACTOR:g}× the initial loss "
            "or a non-finite value)"
        )


def conventional_weights(n: int, like: Tensor) -> Tensor:
    """γ_t of the conventional policy: 1/N for every example."""
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)


def divergence_limit(initial_loss: float) -> float:
    """The weighted training loss above which training counts as diverged (−∞ if θ_0's is not
    finite, so that every step fails)."""
    if not math.isfinite(initial_loss):
        return -math.inf
    return DIVERGENCE_FACTOR * max(initial_loss, 1e-12)


def check_finite_step(step: int, weighted_loss: Tensor, initial_loss: float) -> None:
    """Raise `TrainingDiverged` if the weighted training loss at `step` is non-finite or huge."""
    value = float(weighted_loss)
    if not math.isfinite(value) or value > divergence_limit(initial_loss):
        raise TrainingDiverged(step, value, initial_loss)


def check_finite_steps(weighted_losses: Tensor) -> None:
    """`check_finite_step` for every step of a run at once (one device sync instead of T).

    Raises for the first step whose weighted loss is non-finite or exceeds the limit; checking
    after the run rather than during it only lets the steps after a divergence run in vain.
    """
    initial = float(weighted_losses[0])
    bad = ~torch.isfinite(weighted_losses) | (weighted_losses > divergence_limit(initial))
    if bool(bad.any()):
        step = int(bad.nonzero()[0])
        raise TrainingDiverged(step, float(weighted_losses[step]), initial)


def descent_step(
    model: LossModel, theta: Tensor, train: Batch, weights: Tensor, eta: float
) -> tuple[Tensor, Tensor]:
    """(θ_{t+1}, l(θ_t)): one full-batch GD step under policy row γ_t = weights.

    With several processes `train` and `weights` are this process's examples and their weights,
    and `l(θ_t)` their losses; θ_{t+1} is the same on every process.
    """
    g, losses = model.weighted_grad(theta, train, weights)
    return theta - eta * all_reduce_sum(g), losses


def policy_row(policy: Tensor | None, t: int, shard: Shard, like: Tensor) -> Tensor:
    """γ_t: row t of the policy, or the conventional row 1/N when the policy is None (this
    process's examples `shard` of the N)."""
    if policy is None:
        return conventional_weights(shard.total, like)[shard.slice]
    return policy[t]
