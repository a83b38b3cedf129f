"""∂J/∂γ for J(γ) = Σ_{t=1..T} L_dsr(θ_t) by the adjoint (reverse) recursion of SPEC §2.

With a_t = ∂J/∂θ_t:
    a_T = ∇L_dsr(θ_T)
    ∂J/∂γ_{t,n} = −η ∇l(x_n, θ_t) · a_{t+1}
    a_t = a_{t+1} − η H_t a_{t+1} + [t ≥ 1] ∇L_dsr(θ_t),   H_t = ∇²_θ Σ_n γ_{t,n} l(x_n, θ_t)

Each backward step is one vector-Jacobian product of the training-step gradient (see
`LossModel.weighted_grad_vjp`). The forward pass keeps θ_t only at every k-th step
(`checkpoint_every`); the backward pass recomputes one segment of k steps at a time, so memory is
O((T/k + k)·|θ|), O(√T·|θ|) for k ≈ √T, at the price of one extra training step per step.
k = 1 keeps every θ_t and recomputes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pipeline.models.base import Batch, LossModel
from pipeline.training.descent import check_finite_step, descent_step


@dataclass
class PolicyGradient:
    """J(γ), ∂J/∂γ and the loss curves of the trajectory γ induces."""

    objective: float  # J = Σ_{t=1..T} L_dsr(θ_t)
    grad: Tensor  # (T, N)
    desired_losses: Tensor  # (T+1,), L_dsr(θ_t) for t = 0..T
    test_losses: Tensor | None  # (T+1,), L_tst(θ_t), if a test set was given


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
    progress: bool = False,
) -> PolicyGradient:
    """J(γ) and ∂J/∂γ for the policy γ (T × N), by one forward and one adjoint pass."""
    steps = policy.shape[0]
    k = max(1, checkpoint_every)
    checkpoints: dict[int, Tensor] = {0: theta0}
    theta = theta0
    initial_loss = None
    for t in tqdm(range(steps), desc="forward", disable=not progress, leave=False):
        theta, losses = descent_step(model, theta, train, policy[t], eta)
        weighted = policy[t] @ losses
        initial_loss = float(weighted) if initial_loss is None else initial_loss
        check_finite_step(t, weighted, initial_loss)
        if (t + 1) % k == 0 or t + 1 == steps:
            checkpoints[t + 1] = theta

    grad = torch.empty_like(policy)
    desired_losses = torch.empty(steps + 1, dtype=theta0.dtype, device=theta0.device)
    test_losses = torch.empty_like(desired_losses) if test is not None else None
    adjoint = torch.zeros_like(theta0)
    bar = tqdm(total=steps, desc="adjoint", disable=not progress, leave=False)
    for start in reversed(range(0, steps, k)):
        stop = min(start + k, steps)
        segment = [checkpoints[start]]  # θ_start … θ_stop
        for t in range(start, stop - 1):
            segment.append(descent_step(model, segment[-1], train, policy[t], eta)[0])
        segment.append(checkpoints[stop])
        for t in range(stop, start, -1):  # a_t, then the VJP at θ_{t-1}
            theta_t = segment[t - start]
            loss, g_dsr = model.mean_loss_and_grad(theta_t, desired)
            desired_losses[t] = loss
            if test_losses is not None:
                test_losses[t] = model.mean_loss(theta_t, test)
            adjoint += g_dsr
            hvp, dots = model.weighted_grad_vjp(
                segment[t - 1 - start], train, policy[t - 1], adjoint
            )
            grad[t - 1] = dots.mul_(-eta)
            adjoint -= eta * hvp
            bar.update()
        del segment
    bar.close()
    desired_losses[0] = model.mean_loss(theta0, desired)
    if test_losses is not None:
        test_losses[0] = model.mean_loss(theta0, test)
    return PolicyGradient(
        objective=float(desired_losses[1:].sum()),
        grad=grad,
        desired_losses=desired_losses,
        test_losses=test_losses,
    )
