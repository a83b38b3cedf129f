"""Bench part `online`: a run under each online policy against a conventional run of the same T.

An online policy (pipeline/policy/online.py) computes per step, beyond the conventional run, one
JVP over the training set (and a projection or a normalisation); the goal is an online run of at
most 3 conventional runs. Both are timed as the online job times them
(`pipeline.policy.online.timed_evaluation`).
"""

from __future__ import annotations

import statistics

import torch
from torch import Tensor

from pipeline.config import ONLINE_POLICIES
from pipeline.policy.online import online_policy, timed_evaluation
from pipeline.training.evaluate import dump_steps


def measure_online_cost(run, theta0: Tensor, dumped: list[int], repeats: int = 1) -> dict:
    """Wall seconds of one evaluation run per online policy (τ = 1 for the rules with one: the
    cost does not depend on it) and of the conventional run, measured the same way, and their
    ratios; the median of `repeats`. The online run computes per step, beyond the conventional
    run, one JVP over the training set (and a projection or a normalisation)."""

    def median_seconds(policy) -> float:
        return statistics.median(
            timed_evaluation(run, theta0, policy, dumped)[2] for _ in range(repeats)
        )

    median_seconds(None)  # warm-up: the first run in a process pays one-off costs
    out = {"conventional_s": median_seconds(None)}
    for rule in ONLINE_POLICIES:
        out[f"{rule}_s"] = median_seconds(online_policy(rule, 1.0, run))
        out[f"{rule}_per_conventional"] = out[f"{rule}_s"] / out["conventional_s"]
    return out


def bench_online(run, seed: int, repeats: int) -> dict:
    """The bench's part `online` for one run (pipeline/bench/__init__.py): `measure_online_cost`
    with the run's dump steps and θ_0 of `seed`, and the goal (an online run ≤ 3 conventional
    runs)."""
    theta0 = run.model.init_params(torch.Generator().manual_seed(seed)).to(run.dtype)
    evaluate = run.settings["evaluate"]
    dumped = dump_steps(run.steps, evaluate["dump_every"], evaluate["dump_dense_until"])
    result = measure_online_cost(run, theta0, dumped, repeats)
    return {"steps": run.steps, "n_train": run.n_train, **result, "goal_per_conventional": 3.0}
