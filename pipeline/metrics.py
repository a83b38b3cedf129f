"""The paper's scalar metrics of a loss curve (docs/method.md §3), torch-free so analysis jobs
start fast."""

from __future__ import annotations

import math

import numpy as np


def auc(losses) -> float:
    """AUC = Σ_{t=1..T} L(θ_t) of a loss curve t = 0..T (numpy, pandas or torch, in step order):
    the objective J on the desired set, and the denominator of CR on the test set
    (docs/method.md §3)."""
    values = losses.to_numpy() if hasattr(losses, "to_numpy") else losses
    return float(values[1:].sum())


def log_vocab(settings: dict) -> float:
    """ln |V| of a run's settings: the loss of a uniform guess, in nats (|V| = 2 for the
    Perceptron's two classes)."""
    if settings["kind"] == "perceptron":
        return math.log(2)
    return math.log(settings["data"]["vocab_size"])


def compression_ratio(auc: float, steps: int, log_vocab: float) -> float:
    """CR = T · log|V| / Σ_{t=1..T} L(θ_t) (losses and log|V| in nats)."""
    return steps * log_vocab / auc


def first_reached(curve: np.ndarray, level: float) -> int | None:
    """min{t : curve_t ≤ level}, or None if the curve never gets there."""
    reached = np.flatnonzero(np.asarray(curve) <= level)
    return int(reached[0]) if reached.size else None


def _speed_up(reference: np.ndarray, other: np.ndarray) -> float | None:
    """Steps `reference` needs to first reach its own final loss over the steps `other` needs
    to reach it; None if `other` never does. 0/0 (both there at t = 0) is 1, x/0 is ∞."""
    other_steps = first_reached(other, reference[-1])
    if other_steps is None:
        return None
    reference_steps = first_reached(reference, reference[-1])  # at most T: it ends there
    if other_steps == 0:
        return 1.0 if reference_steps == 0 else math.inf
    return reference_steps / other_steps


def acceleration_ratio(conventional: np.ndarray, optimized: np.ndarray) -> float:
    """AR of the optimised test-loss curve over the conventional one (curves t = 0..T):

        AR = min{t : L^conv_t ≤ L^conv_T} / min{t : L^opt_t ≤ L^conv_T}.

    For a conventional curve still falling at its end the numerator is T, and this is the
    paper's AR = T / min{t : L^opt_t ≤ L^conv_T}; the numerator counts the step where the
    conventional curve first got to its final loss, so two identical curves give 1 (flat ones,
    reached at t = 0 by both, included). If the optimised curve never reaches the conventional
    final loss, the policy is slower and the ratio is the inverse the other way round, below 1:
    AR = 1 / acceleration_ratio(optimized, conventional), which for an optimised curve still
    falling at its end is min{t : L^conv_t ≤ L^opt_T} / T. A non-finite final loss gives NaN.
    """
    conventional, optimized = np.asarray(conventional), np.asarray(optimized)
    if not (math.isfinite(conventional[-1]) and math.isfinite(optimized[-1])):
        return math.nan
    ratio = _speed_up(conventional, optimized)
    if ratio is not None:
        return ratio
    inverse = _speed_up(optimized, conventional)  # never None: L^conv reaches L^opt_T > L^conv_T
    return 1.0 / inverse if inverse else math.inf
