"""Online policies (beyond the paper): a policy row γ_t computed during one training run.

The near-optimal policy of Eq. 6 needs the whole T × N policy and an adjoint pass per epoch. Its
Learning Law says what the optimum looks like (examples with CT ≤ 0 get no weight, the others
contribute alike); an online policy applies such a rule step by step from the contributions of
the current θ_t alone, CT_{t,n} = ⟨∇L_dsr(θ_t), ∇l(x_n, θ_t)⟩, on the desired set:

- `online_greedy`:   γ_t = Π_Δ(1/N + τ·CT_t), one step from uniform along the immediate
  improvement (the horizon-1 version of Eq. 6), with the pipeline's exact simplex projection;
- `online_positive`: γ_t ∝ max(CT_t, 0) (uniform when every CT_{t,n} ≤ 0), Property 4.1;
- `online_softmax`:  γ_t = softmax(CT_t / τ).

CT_t costs one forward-mode JVP over the training set per step (`LossModel.contributions`), on
top of the desired-set gradient the evaluation computes anyway: no per-example gradient, and the
policy is never stored as T × N (the evaluation keeps the rows of its dump steps).

τ is chosen on the held-out part of the desired set (`policy.validation_fraction`, the split of
`policy.selection: validation`): for each candidate of `online.tau_grid.<rule>` one run whose CT
comes from the remaining desired examples, τ = argmin of the held-out AUC. The test set is not
loaded into those runs. Every rule is a pure function of this process's contributions; with
several processes the sums and maxima over the N examples are all-reduced.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import torch
from torch import Tensor

from pipeline.config import ONLINE_POLICIES
from pipeline.distributed import all_reduce_max, all_reduce_sum, total_count
from pipeline.policy.simplex import project_to_simplex
from pipeline.training.descent import TrainingDiverged
from pipeline.training.evaluate import PolicyFunction, evaluate_policy

log = logging.getLogger(__name__)


# --- the three rules: pure functions of the contributions CT_t --------------------------------


def greedy_row(contribution: Tensor, tau: float) -> Tensor:
    """γ_t = Π_Δ(1/N + τ·CT_t): the exact Euclidean projection onto the simplex."""
    n = total_count(contribution.shape[-1])
    return project_to_simplex((1.0 / n + tau * contribution).unsqueeze(0))[0]


def positive_row(contribution: Tensor) -> Tensor:
    """γ_t ∝ max(CT_t, 0); the conventional row 1/N when no example has CT_{t,n} > 0."""
    positive = contribution.clamp_min(0)
    total = all_reduce_sum(positive.sum())
    if float(total) <= 0:
        return torch.full_like(contribution, 1.0 / total_count(contribution.shape[-1]))
    return positive / total


def softmax_row(contribution: Tensor, tau: float) -> Tensor:
    """γ_t = softmax(CT_t / τ) over every process's examples (max-shifted: no overflow)."""
    z = contribution / tau
    e = torch.exp(z - all_reduce_max(z.max()))
    return e / all_reduce_sum(e.sum())


def online_row(rule: str, contribution: Tensor, tau: float | None) -> Tensor:
    """γ_t of online policy `rule` (one of `ONLINE_POLICIES`) from the contributions CT_t."""
    if rule not in ONLINE_POLICIES:
        raise ValueError(f"unknown online policy {rule!r}; known: {', '.join(ONLINE_POLICIES)}")
    if rule == "online_greedy":
        return greedy_row(contribution, float(tau))
    if rule == "online_positive":
        return positive_row(contribution)
    return softmax_row(contribution, float(tau))


def online_policy(rule: str, tau: float | None, run) -> PolicyFunction:
    """The per-step policy function of `rule` for `run`: CT_t of θ_t by one JVP over the run's
    training examples along the desired-set gradient the evaluation has just computed."""

    def row(t: int, theta: Tensor, desired_grad: Tensor) -> Tensor:
        _, contribution = run.model.contributions(theta, run.train, desired_grad)
        return online_row(rule, contribution, tau)

    return row


def online_policy_matrix(run, theta0: Tensor, rule: str, tau: float | None) -> Tensor:
    """The T × N policy (this process's columns) that `rule` at τ computes along its own run:
    the warm start of a policy optimisation (`policy.init`). CT comes from `run`'s desired set,
    so a run that holds part of it out (`policy.selection: validation`) never reads that part."""
    rows: list[Tensor] = []
    row = online_policy(rule, tau, run)

    def recorded(t: int, theta: Tensor, desired_grad: Tensor) -> Tensor:
        rows.append(row(t, theta, desired_grad))
        return rows[-1]

    evaluate_policy(run, theta0, recorded, [])
    return torch.stack(rows)


# --- τ on the held-out desired examples -------------------------------------------------------


def held_out_run(split_run):
    """The run τ is chosen with: the desired set without its held-out part, and the held-out
    part in place of the test set, so the evaluation's `test_loss` is the held-out loss and the
    test set is not read. `split_run` was loaded with `policy.selection: validation`."""
    if split_run.validation is None:
        raise ValueError(
            "choosing τ needs the held-out part of the desired set: load the run with "
            "`policy.selection: validation` (pipeline.policy.online.split_settings)"
        )
    return dataclasses.replace(split_run, test=split_run.validation, validation=None)


def split_settings(settings: dict) -> dict:
    """The run's settings with the desired set split (`policy.selection: validation`)."""
    policy = {**settings["policy"], "selection": "validation"}
    return {**settings, "policy": policy}


def held_out_auc(run, theta0: Tensor, rule: str, tau: float) -> float:
    """Σ_{t=1..T} of the held-out desired loss of training under `rule` at τ (∞ if training
    diverges: that τ is not chosen). `run` is `held_out_run(...)`."""
    try:
        steps, _ = evaluate_policy(run, theta0, online_policy(rule, tau, run), [])
    except TrainingDiverged as err:
        log.info("%s at τ = %g: %s; not chosen", rule, tau, err)
        return math.inf
    auc = float(steps["test_loss"].iloc[1:].sum())
    return auc if math.isfinite(auc) else math.inf


def choose_tau(run, theta0: Tensor, rule: str, grid: list[float]) -> dict:
    """{tau, grid, held_out_auc, seconds}: the τ of `grid` with the lowest held-out AUC (the
    first of equals), each candidate's AUC and the wall seconds of the candidates' runs."""
    if not grid:
        raise ValueError(f"`online.tau_grid.{rule}` is empty: give at least one τ > 0")
    start = time.perf_counter()
    aucs = [held_out_auc(run, theta0, rule, float(tau)) for tau in grid]
    seconds = time.perf_counter() - start
    if all(math.isinf(a) for a in aucs):
        raise RuntimeError(
            f"{rule}: training diverged at every τ of `online.tau_grid.{rule}` = {grid}; "
            "give smaller values"
        )
    best = min(range(len(grid)), key=lambda i: aucs[i])
    return {"tau": float(grid[best]), "grid": [float(g) for g in grid], "held_out_auc": aucs,
            "seconds": seconds}  # fmt: skip


# --- cost, for the job (and the bench's part `online`) --------------------------------------------


def timed_evaluation(run, theta0: Tensor, policy, dumped: list[int]):
    """(steps, examples, wall seconds) of `evaluate_policy` under `policy`."""
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    start = time.perf_counter()
    steps, examples = evaluate_policy(run, theta0, policy, dumped)
    if run.device.type == "cuda":
        torch.cuda.synchronize(run.device)
    return steps, examples, time.perf_counter() - start
