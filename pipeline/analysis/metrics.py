"""The paper's scalar metrics of a loss curve (SPEC §3), torch-free so analysis jobs start fast."""

from __future__ import annotations

import numpy as np


def compression_ratio(auc: float, steps: int, log_vocab: float) -> float:
    """CR = T · log|V| / Σ_{t=1..T} L(θ_t) (losses and log|V| in nats)."""
    return steps * log_vocab / auc


def acceleration_ratio(conventional: np.ndarray, optimized: np.ndarray) -> float:
    """AR = T / min{t : L^opt(θ_t) ≤ L^conv(θ_T)} over test-loss curves indexed t = 0..T.

    If the optimised curve never reaches the conventional final loss, the policy is slower and
    the ratio is reported below 1 the other way round: min{t : L^conv(θ_t) ≤ L^opt(θ_T)} / T.
    """
    steps = len(conventional) - 1
    reached = np.flatnonzero(optimized <= conventional[-1])
    if reached.size:
        return steps / max(int(reached[0]), 1)
    behind = np.flatnonzero(conventional <= optimized[-1])
    return int(behind[0]) / steps
