"""Minibatch AdamW (beyond the paper): training the way language models are trained.

The paper and the rest of the pipeline use full-batch gradient descent (descent.py). Here each
step t draws a batch from the training set (a seeded generator, without replacement within an
epoch), a *weighting* gives the batch's examples and their weights w (on the simplex), and
`torch.optim.AdamW` takes the step on the weighted mean loss Σ_n w_n l(x_n, θ_t), with a learning
rate warmed up linearly and then decayed along a cosine to a floor (`learning_rate`).

A weighting is a function (θ_t, candidate indices) → (chosen indices, weights): the conventional
one keeps the batch with w = 1/b (`uniform_weighting`); the online ones
(pipeline/policy/minibatch.py) weigh or select by the contributions CT of the batch examples.
Test and desired losses are evaluated every `eval_every` steps and at the end; every step records
its learning rate, weighted loss, the weight share of the perturbed examples and its wall time.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from pipeline.experiment import Run
from pipeline.models.base import Batch
from pipeline.training.descent import check_finite_step

#: (θ_t, candidate indices into the training set) → (chosen indices, their weights, summing to 1).
Weighting = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclasses.dataclass(frozen=True)
class AdamWSchedule:
    """The optimiser's settings (`minibatch_online`): T steps, peak learning rate, linear
    warm-up steps, the cosine's floor as a fraction of the peak, weight decay and betas."""

    steps: int
    lr: float
    warmup: int
    min_lr_fraction: float
    weight_decay: float
    betas: tuple[float, float]

    @classmethod
    def from_settings(cls, block: dict) -> AdamWSchedule:
        """The schedule of a `minibatch_online` block."""
        return cls(int(block["steps"]), float(block["lr"]), int(block["warmup"]),
                   float(block["min_lr_fraction"]), float(block["weight_decay"]),
                   (float(block["beta1"]), float(block["beta2"])))  # fmt: skip


def learning_rate(step: int, schedule: AdamWSchedule) -> float:
    """The learning rate of step t (0-based): lr·(t+1)/warmup during the warm-up, then a cosine
    from lr down to lr·min_lr_fraction at the last step (nanoGPT's schedule)."""
    peak, floor = schedule.lr, schedule.lr * schedule.min_lr_fraction
    if step < schedule.warmup:
        return peak * (step + 1) / schedule.warmup
    decay_steps = schedule.steps - schedule.warmup
    if decay_steps <= 1:
        return peak
    progress = (step - schedule.warmup) / (decay_steps - 1)
    return floor + 0.5 * (1.0 + math.cos(math.pi * progress)) * (peak - floor)


def sample_batches(pool: Tensor, size: int, steps: int, seed: int) -> Tensor:
    """(steps × size) indices of `pool` (the training examples to draw from), from a generator
    seeded with `seed`: consecutive epochs, each a random permutation of the pool cut into
    batches of `size`, its remainder dropped (a batch never holds an example twice)."""
    if size > pool.numel():
        raise ValueError(
            f"a batch of {size} examples is larger than the {pool.numel()} training examples it "
            "is drawn from: lower `minibatch_online.batch_size` (or `candidate_batch`)"
        )
    generator = torch.Generator().manual_seed(seed)
    per_epoch = pool.numel() // size
    epochs = -(-steps // per_epoch)
    batches = [pool[torch.randperm(pool.numel(), generator=generator)][: per_epoch * size]
               for _ in range(epochs)]  # fmt: skip
    return torch.cat(batches).view(-1, size)[:steps]


def examples(batch: Batch, indices: Tensor) -> Batch:
    """The examples `indices` of a batch (a copy)."""
    return {k: v[indices.to(v.device)] for k, v in batch.items()}


def uniform_weighting() -> Weighting:
    """The conventional weighting: the whole batch, each example 1/b."""

    def weigh(theta: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        b = candidates.numel()
        return candidates, torch.full((b,), 1.0 / b, dtype=theta.dtype, device=theta.device)

    return weigh


def make_optimizer(theta0: Tensor, schedule: AdamWSchedule) -> tuple[Tensor, torch.optim.AdamW]:
    """(θ, its AdamW): θ a leaf copy of θ_0 that the optimiser updates in place."""
    theta = theta0.detach().clone().requires_grad_()
    optimizer = torch.optim.AdamW([theta], lr=schedule.lr, betas=schedule.betas,
                                  weight_decay=schedule.weight_decay)  # fmt: skip
    return theta, optimizer


def adamw_step(run: Run, theta: Tensor, optimizer: torch.optim.AdamW, indices: Tensor,
               weights: Tensor, lr: float) -> Tensor:  # fmt: skip
    """One AdamW step on Σ_n w_n l(x_n, θ) over the training examples `indices`; returns the
    losses l(x_n, θ_t) of those examples (before the step)."""
    grad, losses = run.model.weighted_grad(theta.detach(), examples(run.train, indices), weights)
    theta.grad = grad
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.step()
    return losses


def train_minibatch(
    run: Run,
    theta0: Tensor,
    weighting: Weighting,
    schedule: AdamWSchedule,
    batches: Tensor,
    eval_every: int,
    perturbed: Tensor,
) -> tuple[pd.DataFrame, Tensor]:
    """(curve, θ_T). The curve has per step t = 0..T: lr, weighted batch loss, perturbed weight
    share, the step's wall seconds, and at t ≡ 0 mod `eval_every` and t = T the test and
    desired losses (NaN elsewhere). `batches` (T × B) are the candidate indices of each step,
    `perturbed` a bool per training example. Raises `TrainingDiverged` on a non-finite or
    exploding loss."""
    model = run.model
    steps = schedule.steps
    if batches.shape[0] < steps:
        raise ValueError(f"{batches.shape[0]} batches for {steps} steps")
    rows = {k: np.full(steps + 1, np.nan) for k in
            ("lr", "batch_loss", "perturbed_share", "step_seconds", "test_loss",
             "desired_loss")}  # fmt: skip
    theta, optimizer = make_optimizer(theta0, schedule)
    perturbed = perturbed.to(run.device)
    initial = None
    for t in range(steps + 1):
        if t % eval_every == 0 or t == steps:
            with torch.no_grad():
                rows["test_loss"][t] = float(model.mean_loss(theta.detach(), run.test))
                rows["desired_loss"][t] = float(model.mean_loss(theta.detach(), run.desired))
        if t == steps:
            break
        start = time.perf_counter()
        lr = learning_rate(t, schedule)
        indices, weights = weighting(theta.detach(), batches[t])
        losses = adamw_step(run, theta, optimizer, indices, weights, lr)
        weighted = weights @ losses
        initial = float(weighted) if initial is None else initial
        check_finite_step(t, weighted, initial)
        rows["step_seconds"][t] = time.perf_counter() - start
        rows["lr"][t] = lr
        rows["batch_loss"][t] = float(weighted)
        rows["perturbed_share"][t] = float(weights[perturbed[indices.to(run.device)]].sum())
    curve = pd.DataFrame({"step": np.arange(steps + 1, dtype=np.int32), **rows})
    return curve, theta.detach()


def evaluated(curve: pd.DataFrame) -> pd.DataFrame:
    """The evaluated steps of a curve (t ≡ 0 mod eval_every and t = T)."""
    return curve[curve["test_loss"].notna()].reset_index(drop=True)
