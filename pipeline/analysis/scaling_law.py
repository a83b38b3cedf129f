"""Section 4.6: scaling-law fits of the test-loss curves, and the acceleration ratio they predict.

Eq. 8 of the paper: L_tst(θ_t) = L0 + (B/t)^β for t > t0. As in its footnote 5 the fit is ordinary
least squares on the straight line

    ln(L_t − L0) = −β ln t + β ln B,        t > t0,

with t0 and L0 searched for the highest r². The curves being compared (conventional and
near-optimal learning of one run) share one t0 and one L0 — L0 is the irreducible loss, which the
paper assumes the policy does not change — so the search maximises a single number:

    the mean over the compared curves of r²(t0, L0),

where r² is the squared correlation of (ln t, ln(L_t − L0)) over the steps t > t0 of that curve.
Only (t0, L0) where every curve decreases (β > 0) qualify. L0 candidates lie on a grid on
[0, L0_max_fraction · m], m the smallest loss of any compared curve, refined around the best one;
t0 candidates are fractions of T. Either can be fixed instead (settings `scaling_law.t0`, `L0`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import linregress

from pipeline import paper
from pipeline.analysis.tables import format_number
from pipeline.metrics import acceleration_ratio


class ScalingLawError(ValueError):
    """A curve cannot be fitted by Eq. 8 (too short, flat, increasing, or L0 above it)."""


@dataclass(frozen=True)
class ScalingLawFit:
    """L(t) = L0 + (B/t)^β fitted over the n_points steps t > t0, with the line's r²."""

    B: float
    beta: float
    r2: float
    t0: int
    L0: float
    n_points: int

    def predict(self, t: np.ndarray) -> np.ndarray:
        """The fitted loss at steps t (in nats)."""
        return self.L0 + np.exp(self.beta * (math.log(self.B) - np.log(t)))


@dataclass(frozen=True)
class SearchSettings:
    """The `scaling_law` block of the configuration: fixed t0 / L0 or the grids to search."""

    t0: int | None
    L0: float | None
    t0_fractions: tuple[float, ...]
    L0_grid: int
    L0_max_fraction: float
    L0_refinements: int
    min_points: int

    @classmethod
    def from_config(cls, block: dict) -> SearchSettings:
        return cls(
            t0=block["t0"],
            L0=block["L0"],
            t0_fractions=tuple(block["t0_fractions"]),
            L0_grid=block["L0_grid"],
            L0_max_fraction=block["L0_max_fraction"],
            L0_refinements=block["L0_refinements"],
            min_points=block["min_points"],
        )


@dataclass(frozen=True)
class Curve:
    """One test-loss curve: L_t at steps t (step 0, if present, is never fitted)."""

    name: str
    steps: np.ndarray
    loss: np.ndarray

    @classmethod
    def from_steps(cls, name: str, frame: pd.DataFrame) -> Curve:
        """The test-loss curve of a steps.parquet dump."""
        return cls(name, frame["step"].to_numpy(), frame["test_loss"].to_numpy(dtype=float))

    def after(self, t0: int) -> tuple[np.ndarray, np.ndarray]:
        keep = self.steps > t0
        return self.steps[keep].astype(float), self.loss[keep]


def _check_curve(curve: Curve) -> None:
    if not np.all(np.isfinite(curve.loss)):
        raise ScalingLawError(f"the {curve.name} test-loss curve has non-finite values")
    _, loss = curve.after(0)
    if loss.size < 2 or np.ptp(loss) <= 1e-12 * max(1.0, abs(loss.mean())):
        raise ScalingLawError(
            f"the {curve.name} test-loss curve is flat (or has fewer than 2 steps t ≥ 1): "
            "Eq. 8 needs a decreasing loss; train longer or with a larger learning rate"
        )


def fit_power_law(curve: Curve, t0: int, L0: float, min_points: int = 3) -> ScalingLawFit:
    """OLS of ln(L_t − L0) on ln t over t > t0; β = −slope, B = exp(intercept / β)."""
    _check_curve(curve)
    t, loss = curve.after(t0)
    if t.size < min_points:
        raise ScalingLawError(
            f"only {t.size} steps t > t0 = {t0} on the {curve.name} curve (T = "
            f"{int(curve.steps.max())}); the fit needs scaling_law.min_points = {min_points}: "
            "lower scaling_law.t0 (or the t0_fractions) or train longer"
        )
    if loss.min() <= L0:
        raise ScalingLawError(
            f"scaling_law.L0 = {L0:g} is not below the smallest {curve.name} test loss "
            f"{loss.min():.4g} after t0 = {t0}: set it lower, or null to search it"
        )
    line = linregress(np.log(t), np.log(loss - L0))
    beta = -float(line.slope)
    if beta <= 0:
        raise ScalingLawError(
            f"the {curve.name} test loss does not decrease after t0 = {t0} (fitted β = "
            f"{beta:.3g} ≤ 0), so Eq. 8 does not describe it"
        )
    return ScalingLawFit(
        B=math.exp(float(line.intercept) / beta),
        beta=beta,
        r2=float(line.rvalue) ** 2,
        t0=int(t0),
        L0=float(L0),
        n_points=int(t.size),
    )


def _r2_and_slope(t: np.ndarray, loss: np.ndarray, L0s: np.ndarray) -> tuple[np.ndarray, ...]:
    """r² and slope of ln(L − L0) on ln t for every candidate L0 at once (rows of the grid)."""
    x = np.log(t) - np.log(t).mean()
    y = np.log(loss[None, :] - L0s[:, None])
    y = y - y.mean(axis=1, keepdims=True)
    sxy, sxx, syy = y @ x, x @ x, (y * y).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(syy > 0, sxy**2 / (sxx * syy), 0.0)
    return r2, sxy / sxx


def t0_candidates(steps: int, settings: SearchSettings) -> list[int]:
    """The fixed t0, or ⌊f·T⌋ for each fraction f, without duplicates, ascending."""
    if settings.t0 is not None:
        return [int(settings.t0)]
    return sorted({int(f * steps) for f in settings.t0_fractions})


def shared_objective(curves: Sequence[Curve], t0: int, L0s: np.ndarray) -> np.ndarray:
    """Mean r² over the curves for each L0 (−inf where some curve does not decrease)."""
    total = np.zeros(L0s.size)
    for curve in curves:
        r2, slope = _r2_and_slope(*curve.after(t0), L0s)
        total += np.where(slope < 0, r2, -np.inf)
    return total / len(curves)


def search_shared(curves: Sequence[Curve], settings: SearchSettings) -> tuple[int, float, float]:
    """(t0, L0, mean r²) maximising the mean r² of the curves with one shared t0 and L0."""
    for curve in curves:
        _check_curve(curve)
    steps = int(max(c.steps.max() for c in curves))
    usable = [
        t0
        for t0 in t0_candidates(steps, settings)
        if all(c.after(t0)[0].size >= settings.min_points for c in curves)
    ]
    if not usable:
        shortest = min(int((c.steps > 0).sum()) for c in curves)
        raise ScalingLawError(
            f"too few points: curves of T = {steps} ({shortest} steps t ≥ 1) leave fewer than "
            f"scaling_law.min_points = {settings.min_points} steps after every t0 candidate "
            f"{t0_candidates(steps, settings)}; lower min_points or t0, or train longer"
        )
    best = (usable[0], math.nan, -math.inf)
    for t0 in usable:
        floor = min(float(c.after(t0)[1].min()) for c in curves)
        if settings.L0 is not None:
            if floor <= settings.L0:
                raise ScalingLawError(
                    f"scaling_law.L0 = {settings.L0:g} is not below the smallest test loss "
                    f"{floor:.4g} of the curves after t0 = {t0}: set it lower, or null to search"
                )
            grid = np.array([float(settings.L0)])
        else:
            lowest = min(float(c.loss.min()) for c in curves)
            grid = np.linspace(0.0, settings.L0_max_fraction * lowest, settings.L0_grid)
        for round_ in range(settings.L0_refinements + 1):
            score = shared_objective(curves, t0, grid)
            i = int(np.argmax(score))
            if score[i] > best[2]:
                best = (t0, float(grid[i]), float(score[i]))
            if grid.size == 1 or round_ == settings.L0_refinements:
                break
            grid = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)], grid.size)
    if not math.isfinite(best[2]):
        names = " and ".join(c.name for c in curves)
        raise ScalingLawError(
            f"no (t0, L0) candidate makes the {names} test loss decrease as a power law "
            "(β > 0 for every curve): Eq. 8 does not describe these curves"
        )
    return best


def fit_shared(curves: Sequence[Curve], settings: SearchSettings) -> list[ScalingLawFit]:
    """Fits of Eq. 8 to every curve with the (t0, L0) of `search_shared`."""
    t0, L0, _ = search_shared(curves, settings)
    return [fit_power_law(c, t0, L0, settings.min_points) for c in curves]


def acceleration_ratio_eq9(slow: ScalingLawFit, fast: ScalingLawFit, steps: int) -> float:
    """Eq. 9: AR = B1^{β1/β2} / B2 · T^{1−β1/β2}, (B1, β1) of `slow`, (B2, β2) of `fast`.

    It is T over the step where the fast curve's power law reaches the slow one's at T;
    computed in logarithms because B can be astronomically large.
    """
    ratio = slow.beta / fast.beta
    return math.exp(ratio * math.log(slow.B) - math.log(fast.B) + (1 - ratio) * math.log(steps))


def relative_change(before: float, after: float) -> float:
    """Δx / x = (after − before) / before; Tables 1 and 2 report its magnitude |Δx / x|."""
    return (after - before) / before


@dataclass(frozen=True)
class Comparison:
    """Conventional vs near-optimal learning of one run, by their scaling-law fits."""

    steps: int
    ar_measured: float
    conventional: ScalingLawFit | None
    near_optimal: ScalingLawFit | None
    note: str = ""

    @property
    def fitted(self) -> bool:
        return self.conventional is not None and self.near_optimal is not None

    @property
    def B_change(self) -> float:
        """ΔB/B of near-optimal over conventional learning, signed (the paper's: < 0)."""
        if not self.fitted:
            return math.nan
        return relative_change(self.conventional.B, self.near_optimal.B)

    @property
    def beta_change(self) -> float:
        """Δβ/β of near-optimal over conventional learning, signed (the paper's: > 0)."""
        if not self.fitted:
            return math.nan
        return relative_change(self.conventional.beta, self.near_optimal.beta)

    @property
    def dB_over_B(self) -> float:
        return abs(self.B_change)

    @property
    def dbeta_over_beta(self) -> float:
        return abs(self.beta_change)

    @property
    def ar_eq9(self) -> float:
        if not self.fitted:
            return math.nan
        return acceleration_ratio_eq9(self.conventional, self.near_optimal, self.steps)


def compare_policies(
    conventional: pd.DataFrame, near_optimal: pd.DataFrame, settings: SearchSettings
) -> Comparison:
    """Fit both test-loss curves (steps.parquet frames) with a shared (t0, L0); measured AR.

    A curve Eq. 8 cannot describe (too short at smoke scale, flat, increasing) gives a
    comparison without fits whose `note` says why, rather than an error.
    """
    curves = [
        Curve.from_steps("conventional", conventional),
        Curve.from_steps("near-optimal", near_optimal),
    ]
    steps = int(conventional["step"].max())
    measured = acceleration_ratio(curves[0].loss, curves[1].loss)
    try:
        conv_fit, opt_fit = fit_shared(curves, settings)
    except ScalingLawError as err:
        return Comparison(steps, measured, None, None, note=f"no fit: {err}")
    return Comparison(steps, measured, conv_fit, opt_fit)


# -- Tables 1 and 2: ours beside the paper's (pipeline/paper.py) -------------------------------

PAPER_MAIN_STEPS = 4000  # Appendix D: T of the run behind Table 1 and Figure 11


def _table1_rows(comparison: Comparison) -> list[tuple[str, object, object, str, str]]:
    """(quantity, ours, paper's, paper's source, format) of every row of Table 1."""
    nan = math.nan
    paper_main = next(row for row in paper.TABLE2 if row["steps"] == PAPER_MAIN_STEPS)
    rows: list[tuple[str, object, object, str, str]] = [
        ("T (training steps)", comparison.steps, PAPER_MAIN_STEPS, "Appendix D", "d")
    ]
    fits = {"conventional": comparison.conventional, "near-optimal": comparison.near_optimal}
    for (label, fit), key in zip(fits.items(), ["conventional", "near_optimal"], strict=True):
        reference = paper.SCALING_LAW[key]
        rows += [
            (f"B, {label}", fit.B if fit else nan, reference["B"], "Table 1", ".3g"),
            (f"β, {label}", fit.beta if fit else nan, reference["beta"], "Table 1", ".3f"),
            (f"r², {label}", fit.r2 if fit else nan, nan, "", ".4f"),
            (f"steps fitted (t > t0), {label}", fit.n_points if fit else nan, nan, "", "d"),
        ]
    fit = comparison.conventional
    paper_signed = {  # the paper's improvements with the direction of its Table 1
        key: math.copysign(
            paper.SCALING_LAW_IMPROVEMENT[f"d{key}_over_{key}"],
            paper.SCALING_LAW["near_optimal"][key] - paper.SCALING_LAW["conventional"][key],
        )
        for key in ["B", "beta"]
    }
    rows += [
        (
            "t0 (steps, shared)",
            fit.t0 if fit else nan,
            paper.SCALING_LAW_FIT["t0"],
            "Sec. 4.6",
            "d",
        ),
        (
            "L0 (nats, shared)",
            fit.L0 if fit else nan,
            paper.SCALING_LAW_FIT["L0"],
            "Sec. 4.6",
            ".4g",
        ),
        (
            "|ΔB/B|",
            comparison.dB_over_B,
            paper.SCALING_LAW_IMPROVEMENT["dB_over_B"],
            "Figure 11",
            ".1%",
        ),
        (
            "|Δβ/β|",
            comparison.dbeta_over_beta,
            paper.SCALING_LAW_IMPROVEMENT["dbeta_over_beta"],
            "Figure 11",
            ".1%",
        ),
        ("ΔB/B, signed", comparison.B_change, paper_signed["B"], "Table 1, Figure 11", "+.1%"),
        (
            "Δβ/β, signed",
            comparison.beta_change,
            paper_signed["beta"],
            "Table 1, Figure 11",
            "+.1%",
        ),
        (
            "AR, measured",
            comparison.ar_measured,
            paper.ACCELERATION_RATIO["transformer"],
            "Figure 5",
            ".2f",
        ),
        ("AR, Eq. 9", comparison.ar_eq9, paper_main["AR"], "Table 2, T = 4K", ".2f"),
    ]
    return rows


def table1(comparison: Comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 with Figure 11's improvements and both ARs: (numbers, formatted for Markdown)."""
    rows = _table1_rows(comparison)
    numbers = pd.DataFrame(
        {
            "quantity": [r[0] for r in rows],
            "ours": [float(r[1]) for r in rows],
            "paper": [float(r[2]) for r in rows],
            "paper_source": [r[3] for r in rows],
            "note": comparison.note,
        }
    )
    shown = pd.DataFrame(
        {
            "quantity": [r[0] for r in rows],
            "ours": [format_number(r[1], r[4]) for r in rows],
            "paper": [format_number(r[2], r[4]) for r in rows],
            "paper's source": [r[3] or "–" for r in rows],
        }
    )
    return numbers, shown


def _with_direction(change: float) -> str:
    """|Δx/x| with an arrow: ↓ when the near-optimal x is lower, ↑ when higher."""
    if math.isnan(change):
        return format_number(change)
    return f"{abs(change):.1%} {'↓' if change < 0 else '↑'}"


def table2(
    comparisons: Sequence[Comparison], entries: Sequence[dict], runs: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 2: per (T, N, V) setting of the sweep, ours and the paper's setting paired with it
    by `paper.table2_pairing` (NaN where there is none): (numbers, formatted for Markdown)."""
    records = []
    pairing = paper.table2_pairing(list(runs))
    for i, (comparison, entry, run) in enumerate(zip(comparisons, entries, runs, strict=True)):
        conv, opt = comparison.conventional, comparison.near_optimal
        ref = pairing[i] or {}
        records.append(
            {
                "setting": i + 1,
                "run": run,
                "T": entry["steps"],
                "N": entry["n_train"],
                "V": entry["vocab_size"],
                "t0": conv.t0 if conv else math.nan,
                "L0": conv.L0 if conv else math.nan,
                "B_conventional": conv.B if conv else math.nan,
                "beta_conventional": conv.beta if conv else math.nan,
                "r2_conventional": conv.r2 if conv else math.nan,
                "B_near_optimal": opt.B if opt else math.nan,
                "beta_near_optimal": opt.beta if opt else math.nan,
                "r2_near_optimal": opt.r2 if opt else math.nan,
                "dB_over_B": comparison.dB_over_B,
                "dbeta_over_beta": comparison.dbeta_over_beta,
                "B_change": comparison.B_change,
                "beta_change": comparison.beta_change,
                "AR_eq9": comparison.ar_eq9,
                "AR_measured": comparison.ar_measured,
                "paper_T": ref.get("steps", math.nan),
                "paper_N": ref.get("n_train", math.nan),
                "paper_V": ref.get("vocab_size", math.nan),
                "paper_dB_over_B": ref.get("dB_over_B", math.nan),
                "paper_dbeta_over_beta": ref.get("dbeta_over_beta", math.nan),
                "paper_AR_eq9": ref.get("AR", math.nan),
                "note": comparison.note,
            }
        )
    numbers = pd.DataFrame(records)

    def paper_setting(r: dict) -> str:
        if math.isnan(r["paper_T"]):  # the paper's sweep has four settings
            return "–"
        return f"T={r['paper_T']:g}, N=2^{int(math.log2(r['paper_N']))}, V={r['paper_V']:g}"

    shown = pd.DataFrame(
        {
            "T": [r["T"] for r in records],
            "N": [r["N"] for r in records],
            "V": [r["V"] for r in records],
            "|ΔB/B| ours": [_with_direction(r["B_change"]) for r in records],
            "|Δβ/β| ours": [_with_direction(r["beta_change"]) for r in records],
            "AR Eq. 9 ours": [format_number(r["AR_eq9"], ".2f") for r in records],
            "AR measured ours": [format_number(r["AR_measured"], ".2f") for r in records],
            "r² conv. / near-opt.": [
                f"{format_number(r['r2_conventional'], '.3f')} / "
                f"{format_number(r['r2_near_optimal'], '.3f')}"
                for r in records
            ],
            "paper's setting": [paper_setting(r) for r in records],
            "|ΔB/B| paper": [format_number(r["paper_dB_over_B"], ".1%") for r in records],
            "|Δβ/β| paper": [format_number(r["paper_dbeta_over_beta"], ".1%") for r in records],
            "AR Eq. 9 paper": [format_number(r["paper_AR_eq9"], ".2f") for r in records],
            "note": [r["note"] or "–" for r in records],
        }
    )
    return numbers, shown
