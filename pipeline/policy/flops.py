"""FLOPs of finding and running each policy of a run, counted, not estimated.

torch's FlopCounterMode counts the matrix products (with `count_flops`, matrix-vector
products too: the Perceptron's) of a real call on the run's own shapes. Every step
of a run costs alike, so a run of T steps is counted at 1 and at 2 steps and extended:
F(T) = F(1) + (T − 1)·(F(2) − F(1)); the count of the whole run would take as long as the run.

- conventional: one evaluation run under γ_t = 1/N (no dumps: what every policy pays);
- online policy: its run (the JVP of CT_t each step on top), and one run per τ candidate of
  `online.tau_grid` on the split desired set (the held-out runs of `choose_tau`);
- near-optimal: one policy epoch (the adjoint pass of `epoch_gradient`) per epoch run; with
  checkpoints every k steps the backward pass recomputes (k − 1)/k of the training gradients,
  added from the count of one training gradient (`recomputed_fraction`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from pipeline.config import ONLINE_POLICIES, TAU_RULES, with_steps
from pipeline.policy.online import online_policy
from pipeline.policy.optimize import checkpoint_interval, conventional_policy, epoch_gradient
from pipeline.training.evaluate import evaluate_policy


def _matrix_vector_flops(matrix_shape, vector_shape, *args, out_shape=None, **kwargs) -> int:
    """2·m·n for an (m × n) matrix times an n-vector (FlopCounterMode does not count them)."""
    return 2 * math.prod(matrix_shape)


def _dot_flops(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * math.prod(a_shape)


def _addmv_flops(self_shape, matrix_shape, vector_shape, *args, out_shape=None, **kwargs) -> int:
    return _matrix_vector_flops(matrix_shape, vector_shape)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of `fn`, as torch's FlopCounterMode counts them (matrix products),
    with matrix-vector products and dot products added (the Perceptron's are nothing else)."""
    aten = torch.ops.aten
    vector_products = {aten.mv: _matrix_vector_flops, aten.addmv: _addmv_flops,
                       aten.dot: _dot_flops, aten.vdot: _dot_flops}  # fmt: skip
    with FlopCounterMode(display=False, custom_mapping=vector_products) as counter:
        fn()
    return counter.get_total_flops()


def recomputed_fraction(checkpoint_every: int) -> float:
    """The share of steps whose training gradient the backward pass computes again: (k−1)/k
    with checkpoints every k steps (inside each segment of k all but θ_start are recomputed)."""
    return (checkpoint_every - 1) / checkpoint_every


def shortened(run, steps: int):
    """The run with T = `steps` (same model, data and settings otherwise)."""
    return dataclasses.replace(run, settings=with_steps(run.settings, steps))


def extended_flops(count_at: Callable[[int], int], steps: int) -> int:
    """F(T) of a run whose steps all cost alike, from its counts at 1 and 2 steps."""
    one, two = count_at(1), count_at(2)
    return one + (steps - 1) * (two - one)


def evaluation_flops(run, theta0: Tensor, policy_at: Callable | None = None) -> int:
    """FLOPs of `evaluate_policy` over the run's T steps without dumps; `policy_at(run)` gives
    the policy of a shortened run (None: the conventional one)."""

    def count_at(steps: int) -> int:
        short = shortened(run, steps)
        policy = None if policy_at is None else policy_at(short)
        return count_flops(lambda: evaluate_policy(short, theta0, policy, []))

    return extended_flops(count_at, run.steps)


def epoch_flops(run, theta0: Tensor) -> int:
    """FLOPs of one policy epoch of the run (at the uniform policy: the cost does not depend on
    γ), with the run's checkpoint interval k."""

    def count_at(steps: int) -> int:
        short = shortened(run, steps)
        short.settings["policy"] = {**run.settings["policy"], "checkpoint_every": 1}
        return count_flops(lambda: epoch_gradient(short, theta0, conventional_policy(short)))

    weights = torch.full((run.train_shard.size,), 1.0 / run.n_train, dtype=run.dtype,
                         device=run.device)  # fmt: skip
    gradient = count_flops(lambda: run.model.weighted_grad(theta0, run.train, weights))
    recomputed = recomputed_fraction(checkpoint_interval(run)) * run.steps * gradient
    return extended_flops(count_at, run.steps) + round(recomputed)


def policy_flops(run, held_out, theta0: Tensor, tau_grid: dict[str, list[float]]) -> dict:
    """{conventional_run, policy_epoch, policies: {rule: {run, selection, total}}}: the FLOPs of
    a conventional run, of one near-optimal policy epoch, and of each online policy (its run and
    its τ candidates' held-out runs, at the first τ: the count does not depend on it)."""
    out: dict = {
        "conventional_run": evaluation_flops(run, theta0),
        "policy_epoch": epoch_flops(run, theta0),
        "policies": {},
    }
    for rule in ONLINE_POLICIES:
        grid = tau_grid.get(rule, []) if rule in TAU_RULES else []
        tau = float(grid[0]) if grid else None
        own = evaluation_flops(run, theta0, lambda short, r=rule, t=tau: online_policy(r, t, short))
        selection = 0
        if grid:
            one = evaluation_flops(
                held_out, theta0, lambda short, r=rule, t=tau: online_policy(r, t, short)
            )
            selection = len(grid) * one
        out["policies"][rule] = {"run": own, "selection": selection, "total": own + selection}
    return out
