"""The acceleration ratio in every case, and the compression ratio (docs/method.md §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.metrics import (
    acceleration_ratio,
    auc,
    compression_ratio,
    first_reached,
    log_vocab,
)


def falling(steps: int, rate: float, start: float = 2.0) -> np.ndarray:
    """A loss curve that falls at every step: start · exp(−rate · t), t = 0..T."""
    return start * np.exp(-rate * np.arange(steps + 1))


def test_identical_curves_give_one():
    for curve in [np.full(11, 2.0), falling(10, 0.3), np.array([3.0, 1.0, 2.0, 0.5, 1.5])]:
        assert acceleration_ratio(curve, curve.copy()) == 1.0


def test_the_papers_definition_for_a_falling_conventional_curve():
    conventional, optimized = falling(100, 0.01), falling(100, 0.04)
    reached = first_reached(optimized, conventional[-1])
    assert reached == 25  # 0.04 t ≥ 0.01 · 100
    assert acceleration_ratio(conventional, optimized) == 100 / 25


def test_a_curve_that_never_reaches_the_conventional_loss_gives_the_inverse():
    conventional, optimized = falling(100, 0.04), falling(100, 0.01)
    # the conventional curve reaches the optimised final loss at t = 25 of T = 100
    assert acceleration_ratio(conventional, optimized) == 25 / 100
    assert acceleration_ratio(conventional, optimized) < 1


def test_reaching_the_target_at_t0():
    """The crossing at t = 0 used to be clamped to t = 1: AR = T for two flat curves."""
    flat = np.full(51, 1.0)
    assert acceleration_ratio(flat, flat) == 1.0
    # curves from different starts: the optimised one is below the target from t = 0 on
    conventional, optimized = falling(50, 0.02), np.full(51, 0.5)
    assert acceleration_ratio(conventional, optimized) == math.inf
    assert acceleration_ratio(optimized, conventional) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_swapping_the_curves_inverts_the_ratio(seed):
    """For monotone curves from a common start AR(a, b) · AR(b, a) = 1."""
    rng = np.random.default_rng(seed)
    a = np.concatenate([[3.0], 3.0 - np.cumsum(rng.uniform(0, 0.02, 200))])
    b = np.concatenate([[3.0], 3.0 - np.cumsum(rng.uniform(0, 0.02, 200))])
    assert acceleration_ratio(a, b) * acceleration_ratio(b, a) == pytest.approx(1.0)
    assert (acceleration_ratio(a, b) > 1) == (b[-1] < a[-1])


def test_non_finite_final_losses_give_nan():
    curve = falling(10, 0.1)
    diverged = curve.copy()
    diverged[-1] = math.nan
    assert math.isnan(acceleration_ratio(curve, diverged))
    assert math.isnan(acceleration_ratio(diverged, curve))


def test_compression_ratio_of_a_uniform_guess_is_one():
    steps, log_vocab = 20, math.log(128)
    assert compression_ratio(steps * log_vocab, steps, log_vocab) == pytest.approx(1.0)


def test_auc_leaves_out_the_loss_at_t0_whatever_holds_the_curve():
    import pandas as pd
    import torch

    curve = [9.0, 1.0, 2.0, 3.5]  # L_0 = 9 is θ_0's loss, not a step of the policy: AUC 6.5
    for held in (np.array(curve), pd.Series(curve, index=[5, 6, 7, 8]), torch.tensor(curve)):
        assert auc(held) == 6.5
    assert compression_ratio(auc(np.array(curve)), 3, log_vocab({"kind": "perceptron"})) == (
        pytest.approx(3 * math.log(2) / 6.5)
    )
    assert log_vocab({"kind": "transformer", "data": {"vocab_size": 1024}}) == 10 * math.log(2)
