"""Online weighting and selection inside each minibatch of AdamW (beyond the paper).

The online rules of online.py, applied to a batch instead of the whole training set: at step t
the desired-set gradient ∇L_dsr(θ_t) and, by one forward-mode JVP over the batch
(`LossModel.contributions`), each batch example's CT_{t,n} = ⟨∇L_dsr(θ_t), ∇l(x_n, θ_t)⟩, with
∇L_dsr over the whole desired set (the paper's CT) or over `desired_batch` desired examples drawn
anew each step (the cheaper estimate practice uses); then

- `online_greedy`, `online_positive`, `online_softmax`: the batch's weights are the rule's row
  (`online.online_row`) over the b batch examples;
- `online_select`: out of a candidate batch of B > b examples the b with the highest CT, each
  weighted 1/b (gradient-alignment selection, the form data-selection methods use);
- `clean_only` (a reference that knows the perturbation): conventional batches drawn from the
  clean training examples alone;
- `offline_selection` (an opt-in reference): conventional batches drawn from the examples a
  time-independent policy, optimised once at full batch, weighs most (`offline_pool`): selection
  by the scores of an optimised policy, as PMP-based data selection does.

τ (and B for `online_select`) is chosen on the held-out part of the desired set, as for the
full-batch online policies: one run per candidate on `online.held_out_run` (the held-out
examples in place of the test set, CT from the others), the lowest mean held-out loss wins.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from pipeline.config import TAU_RULES
from pipeline.experiment import Run
from pipeline.models.base import Batch, batch_size
from pipeline.policy.flops import count_flops
from pipeline.policy.online import online_row
from pipeline.training.descent import TrainingDiverged
from pipeline.training.minibatch import (
    AdamWSchedule,
    Weighting,
    adamw_step,
    evaluated,
    examples,
    make_optimizer,
    sample_batches,
    train_minibatch,
    uniform_weighting,
)

log = logging.getLogger(__name__)


def batch_weights(rule: str, contribution: Tensor, tau: float | None) -> Tensor:
    """The weights of a batch's examples under online rule `rule` from their contributions."""
    return online_row(rule, contribution, tau)


def top_b(contribution: Tensor, b: int) -> Tensor:
    """Positions of the b highest contributions, highest first (the earlier of equals first)."""
    if not 0 < b <= contribution.numel():
        raise ValueError(
            f"cannot select {b} of {contribution.numel()} candidates: `minibatch_online."
            "batch_size` must lie between 1 and every `candidate_batch`"
        )
    return torch.argsort(contribution, descending=True, stable=True)[:b]


#: () → the desired examples whose mean gradient gives this step's CT.
DesiredSampler = Callable[[], Batch]


def desired_sampler(run: Run, desired_batch: int | None, seed: int) -> DesiredSampler:
    """The desired examples of each step: the whole desired set (`desired_batch` None, the
    paper's CT), or `desired_batch` of them drawn anew at every step without replacement, from
    a generator seeded with seed + 1 (the batches' is seeded with seed)."""
    if desired_batch is None:
        return lambda: run.desired
    k = batch_size(run.desired)
    if not 0 < desired_batch <= k:
        raise ValueError(
            f"`minibatch_online.desired_batch` = {desired_batch} exceeds the {k} desired examples "
            "CT is computed from (the held-out choice keeps the others back): lower it"
        )
    generator = torch.Generator().manual_seed(seed + 1)
    return lambda: examples(run.desired, torch.randperm(k, generator=generator)[:desired_batch])


def desired_contributions(run: Run, theta: Tensor, indices: Tensor, desired: Batch) -> Tensor:
    """CT of the training examples `indices` at θ: the mean gradient of the desired examples
    `desired`, then one JVP."""
    _, desired_grad = run.model.mean_loss_and_grad(theta, desired)
    _, contribution = run.model.contributions(theta, examples(run.train, indices), desired_grad)
    return contribution


def online_weighting(run: Run, rule: str, tau: float | None, desired: DesiredSampler) -> Weighting:
    """The batch weighted by online rule `rule` at τ, CT from the desired examples of each
    step."""

    def weigh(theta: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        contribution = desired_contributions(run, theta, candidates, desired())
        return candidates, batch_weights(rule, contribution, tau)

    return weigh


def select_weighting(run: Run, b: int, desired: DesiredSampler) -> Weighting:
    """The b candidates with the highest CT, each weighted 1/b."""

    def weigh(theta: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        contribution = desired_contributions(run, theta, candidates, desired())
        chosen = candidates[top_b(contribution, b).cpu()]
        return chosen, torch.full((b,), 1.0 / b, dtype=theta.dtype, device=theta.device)

    return weigh


def weighting(run: Run, policy: str, value: float | None, block: dict, seed: int) -> Weighting:
    """The weighting of `policy` at its chosen value (τ, or B for `online_select`); CT from
    `desired_batch` desired examples per step (all of them if None)."""
    if policy in ("conventional", "clean_only", "offline_selection"):
        return uniform_weighting()
    desired = desired_sampler(run, block["desired_batch"], seed)
    if policy == "online_select":
        return select_weighting(run, int(block["batch_size"]), desired)
    return online_weighting(run, policy, value, desired)


def draw_size(policy: str, value: float | None, b: int) -> int:
    """How many candidates a step draws: B for `online_select`, else the batch size b."""
    return int(value) if policy == "online_select" else b


def training_pool(policy: str, perturbed: Tensor) -> Tensor:
    """The training examples batches are drawn from: the clean ones for `clean_only`."""
    if policy == "clean_only":
        pool = torch.nonzero(~perturbed).flatten()
        if pool.numel() == 0:
            raise ValueError("`clean_only` needs clean training examples; the data has none "
                             "(`transformer.data.perturbed_fraction` is 1)")  # fmt: skip
        return pool
    return torch.arange(perturbed.numel())


def offline_pool(scores: Tensor, fraction: float) -> Tensor:
    """The training examples `offline_selection` keeps: the round(fraction · N) of the highest
    score (weight under the time-independent policy; the earlier of equals first), in index
    order."""
    keep = max(1, int(round(fraction * scores.numel())))
    return top_b(scores, keep).sort().values


def run_policy(
    run: Run,
    theta0: Tensor,
    policy: str,
    value: float | None,
    block: dict,
    seed: int,
    perturbed: Tensor,
    pool: Tensor | None = None,
) -> pd.DataFrame:
    """The curve (`train_minibatch`) of `policy` at `value` on `run`, batches drawn with `seed`
    from `pool` (default: `training_pool`; `offline_selection`'s is `offline_pool`)."""
    size = draw_size(policy, value, int(block["batch_size"]))
    pool = training_pool(policy, perturbed) if pool is None else pool
    batches = sample_batches(pool, size, int(block["steps"]), seed)
    curve, _ = train_minibatch(run, theta0, weighting(run, policy, value, block, seed),
                               AdamWSchedule.from_settings(block), batches,
                               int(block["eval_every"]), perturbed)  # fmt: skip
    return curve


def candidates(policy: str, block: dict) -> list[float]:
    """The values a policy's choice ranges over: `tau_grid.<rule>`, or `candidate_batch`."""
    if policy in TAU_RULES:
        return [float(v) for v in block["tau_grid"][policy]]
    if policy == "online_select":
        return [int(v) for v in block["candidate_batch"]]
    return []


def held_out_score(curve: pd.DataFrame) -> float:
    """Mean held-out desired loss over the evaluations after t = 0 (the run's `test_loss`
    column on `online.held_out_run`); ∞ if not finite."""
    score = float(evaluated(curve)["test_loss"].iloc[1:].mean())
    return score if math.isfinite(score) else math.inf


def choose_value(held_out: Run, theta0: Tensor, policy: str, block: dict, seed: int,
                 perturbed: Tensor) -> dict:  # fmt: skip
    """{value, grid, held_out_loss, seconds}: the candidate with the lowest mean held-out loss
    (the first of equals; a diverged run is never chosen), or value None for a policy without
    a choice. `held_out` is `online.held_out_run(...)`: the test set is not read."""
    grid = candidates(policy, block)
    if not grid:
        return {"value": None, "grid": [], "held_out_loss": [], "seconds": 0.0}
    start, scores = time.perf_counter(), []
    for value in grid:
        try:
            curve = run_policy(held_out, theta0, policy, value, block, seed, perturbed)
            scores.append(held_out_score(curve))
        except TrainingDiverged as err:
            log.info("%s at %g: %s; not chosen", policy, value, err)
            scores.append(math.inf)
    if all(math.isinf(s) for s in scores):
        raise RuntimeError(f"{policy}: training diverged at every candidate {grid}; lower "
                           "`minibatch_online.lr` or give other candidates")  # fmt: skip
    best = int(np.argmin(scores))
    return {"value": grid[best], "grid": grid, "held_out_loss": scores,
            "seconds": time.perf_counter() - start}  # fmt: skip


def step_flops(run: Run, theta0: Tensor, policy: str, value: float | None, block: dict,
               perturbed: Tensor) -> int:  # fmt: skip
    """FLOPs of one training step of `policy` (its weighting and the AdamW step), counted by
    the pipeline's counter on the run's shapes: every step costs alike (the evaluation, the
    same for every policy, is not counted)."""
    b = int(block["batch_size"])
    batch = sample_batches(training_pool(policy, perturbed), draw_size(policy, value, b), 1, 0)[0]
    weigh = weighting(run, policy, value, block, 0)
    theta, optimizer = make_optimizer(theta0, AdamWSchedule.from_settings(block))

    def step() -> None:
        indices, weights = weigh(theta.detach(), batch)
        adamw_step(run, theta, optimizer, indices, weights, float(block["lr"]))

    return count_flops(step)
