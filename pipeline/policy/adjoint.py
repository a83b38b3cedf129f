"""∂J/∂γ for J(γ) = Σ_{t=1..T} L_dsr(θ_t) by the adjoint (reverse) recursion of docs/method.md §2.

With a_t = ∂J/∂θ_t:
    a_T = ∇L_dsr(θ_T)
    ∂J/∂γ_{t,n} = −η ∇l(x_n, θ_t) · a_{t+1}
    a_t = a_{t+1} − η H_t a_{t+1} + [t ≥ 1] ∇L_dsr(θ_t),   H_t = ∇²_θ Σ_n γ_{t,n} l(x_n, θ_t)

Each backward step is one vector-Jacobian product of the training-step gradient (see
`LossModel.weighted_grad_vjp`). The forward pass keeps θ_t only at every k-th step
(`checkpoint_every`); the backward pass recomputes one segment of k steps at a time, so memory is
O((T/k + k)·|θ|), O(√T·|θ|) for k ≈ √T, at the price of one extra training step per step.
k = 1 keeps every θ_t and recomputes nothing.

The backward pass walks the trajectory in stretches (a segment of k steps, or √T stored steps when
k = 1) and computes the desired losses and gradients and the test losses of a whole stretch at
once (`LossModel.mean_losses_and_grads`), which leaves one VJP per step in the sequential loop.

Data-parallel over examples (pipeline/distributed.py): each process holds its share of the
training examples, the matching columns of γ, and its share of the desired and test sets. The
training gradient and H a of every step, and the desired and test means, are all-reduced sums;
the per-example dot products (its columns of ∂J/∂γ) stay local. In one process every reduction
is the identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pipeline.distributed import all_reduce_mean, all_reduce_sum, is_main, mean_share
from pipeline.metrics import auc
from pipeline.models.base import Batch, LossModel, batch_size
from pipeline.progress import SILENT, Progress
from pipeline.training.descent import check_finite_steps


@dataclass
class PolicyGradient:
    """J(γ), ∂J/∂γ and the loss curves of the trajectory γ induces."""

    objective: float  # J = Σ_{t=1..T} L_dsr(θ_t)
    grad: Tensor  # (T, N)
    desired_losses: Tensor  # (T+1,), L_dsr(θ_t) for t = 0..T
    test_losses: Tensor | None  # (T+1,), L_tst(θ_t), if a test set was given
    validation_losses: Tensor | None = None  # (T+1,), on the held-out validation set, if given


def sqrt_checkpointing(steps: int) -> int:
    """k ≈ √T, the segment length that minimises stored plus recomputed parameter vectors."""
    return max(1, round(math.sqrt(steps)))


def policy_gradient(
    model: LossModel,
    theta0: Tensor,
    train: Batch,
    desired: Batch,
    policy: Tensor,
    eta: float,
    checkpoint_every: int = 1,
    test: Batch | None = None,
    progress: Progress = SILENT,
    validation: Batch | None = None,
) -> PolicyGradient:
    """J(γ) and ∂J/∂γ for the policy γ (T × N), by one forward and one adjoint pass; `progress`
    counts the steps of both (on the first process).

    With several processes, `train`, `desired`, `test`, `validation` and the columns of `policy`
    are this process's shares, and so are the columns of the returned gradient; J and the loss
    curves are the whole sets'.
    """
    steps = policy.shape[0]
    k = min(max(1, checkpoint_every), steps)
    desired_share = mean_share(batch_size(desired))
    progress = progress if is_main() else SILENT

    # Forward pass: stored[i] = θ_{min(i·k, T)}.
    stored = theta0.new_empty(math.ceil(steps / k) + 1, theta0.numel())
    stored[0] = theta0
    weighted = theta0.new_empty(steps)  # Σ_n γ_{t,n} l_n(θ_t), for the divergence check
    theta = theta0
    for t in progress.track("forward", range(steps)):
        g, losses = model.weighted_grad(theta, train, policy[t])
        all_reduce_sum(g)
        weighted[t] = policy[t] @ losses
        theta = torch.add(theta, g, alpha=-eta)
        if (t + 1) % k == 0 or t + 1 == steps:
            stored[math.ceil((t + 1) / k)] = theta
    check_finite_steps(all_reduce_sum(weighted))

    grad = torch.empty_like(policy)
    desired_losses = theta0.new_empty(steps + 1)
    monitored = {"test": test, "validation": validation}  # losses only, no gradient
    monitored = {key: batch for key, batch in monitored.items() if batch is not None}
    curves = {key: theta0.new_empty(steps + 1) for key in monitored}
    shares = {key: mean_share(batch_size(batch)) for key, batch in monitored.items()}
    adjoint = torch.zeros_like(theta0)
    stretch = k if k > 1 else sqrt_checkpointing(steps)
    segment = theta0.new_empty(k + 1, theta0.numel()) if k > 1 else None
    progress.start("adjoint", steps)
    for start in reversed(range(0, steps, stretch)):
        stop = min(start + stretch, steps)
        if segment is None:  # every θ_t is stored
            thetas = stored[start : stop + 1]
        else:  # θ_start is stored; recompute up to θ_stop, which is stored too
            thetas = segment[: stop - start + 1]
            thetas[0] = stored[start // k]
            for i in range(stop - start - 1):
                g, _ = model.weighted_grad(thetas[i], train, policy[start + i])
                all_reduce_sum(g)
                torch.add(thetas[i], g, alpha=-eta, out=thetas[i + 1])
            thetas[-1] = stored[math.ceil(stop / k)]
        losses, desired_grads = model.mean_losses_and_grads(thetas[1:], desired)
        desired_grads = all_reduce_mean(desired_grads, desired_share)
        desired_losses[start + 1 : stop + 1] = all_reduce_mean(losses, desired_share)
        for key, curve in curves.items():
            losses = model.mean_losses(thetas[1:], monitored[key])
            curve[start + 1 : stop + 1] = all_reduce_mean(losses, shares[key])
        for t in range(stop, start, -1):  # a_t, then the VJP at θ_{t-1}
            adjoint += desired_grads[t - start - 1]
            theta = thetas[t - 1 - start]
            hvp, dots = model.weighted_grad_vjp(theta, train, policy[t - 1], adjoint)
            all_reduce_sum(hvp)
            torch.mul(dots, -eta, out=grad[t - 1])
            adjoint.sub_(hvp, alpha=eta)
            progress.update()
    desired_losses[0] = all_reduce_mean(model.mean_loss(theta0, desired), desired_share)
    for key, curve in curves.items():
        curve[0] = all_reduce_mean(model.mean_loss(theta0, monitored[key]), shares[key])
    return PolicyGradient(
        objective=auc(desired_losses),
        grad=grad,
        desired_losses=desired_losses,
        test_losses=curves.get("test"),
        validation_losses=curves.get("validation"),
    )
