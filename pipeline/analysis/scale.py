"""Toward the paper's scale: the Transformer's AR against the scale of the run, fitted and
extrapolated to the paper's (T, N).

The form: AR = a + b·ln(T·N), ordinary least squares over every run (each seed a point). Why
this form: the sweep grows T and N together (both double from one setting to the next, as in the
paper's Table 2), so one variable, the log of the problem's size, orders the settings; the
paper's own Table 2 AR rises by a roughly constant amount per doubling (2.16, 2.31, 2.41, 2.48),
i.e. about linearly in ln(T·N); and a straight line has the fewest parameters three or four
settings can pin down. V is left out: it grows much more slowly and the [UNK] share it sets is
small. The prediction interval at the paper's scale is the 95 % interval of a new run's AR
there, from the t distribution with n − 2 degrees of freedom; it assumes the line holds that far,
which nothing here can check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pipeline import paper
from pipeline.metrics import acceleration_ratio
from pipeline.results import read_pipeline_parquet


@dataclass(frozen=True)
class LinearFit:
    """AR = intercept + slope·x by OLS, with what the intervals need."""

    intercept: float
    slope: float
    slope_stderr: float
    residual_sd: float  # s, with n − 2 degrees of freedom
    n: int
    x_mean: float
    sxx: float  # Σ (x − x̄)²

    def predict(self, x: np.ndarray | float) -> np.ndarray:
        return self.intercept + self.slope * np.asarray(x, dtype=float)

    def half_width(self, x: np.ndarray | float, level: float = 0.95, new_run: bool = False):
        """Half the width of the confidence band of the line at x (or, `new_run`, of the
        prediction interval of one new observation)."""
        t = stats.t.ppf(0.5 + level / 2, self.n - 2)
        leverage = 1 / self.n + (np.asarray(x, dtype=float) - self.x_mean) ** 2 / self.sxx
        return t * self.residual_sd * np.sqrt(leverage + (1.0 if new_run else 0.0))

    def slope_interval(self, level: float = 0.95) -> tuple[float, float]:
        t = stats.t.ppf(0.5 + level / 2, self.n - 2)
        return self.slope - t * self.slope_stderr, self.slope + t * self.slope_stderr


def fit_line(x: np.ndarray, y: np.ndarray) -> LinearFit:
    """OLS of y on x (at least 3 points and 2 distinct x)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or len(np.unique(x)) < 2:
        raise ValueError(
            f"the scale fit needs at least 3 runs at 2 or more scales, got {len(x)} runs at "
            f"{len(np.unique(x))}: add points or seeds to `transformer_scale`"
        )
    result = stats.linregress(x, y)
    residuals = y - (result.intercept + result.slope * x)
    return LinearFit(
        intercept=float(result.intercept),
        slope=float(result.slope),
        slope_stderr=float(result.stderr),
        residual_sd=float(np.sqrt((residuals**2).sum() / (len(x) - 2))),
        n=len(x),
        x_mean=float(x.mean()),
        sxx=float(((x - x.mean()) ** 2).sum()),
    )


def scale_variable(steps: float, n_train: float) -> float:
    """ln(T·N), the x of the fit."""
    return math.log(steps * n_train)


def scale_row(
    point: dict, seed: int, run: str, policy_epochs: int, conventional: str, last: str
) -> dict:
    """One run of the scale study: its (T, N, V), seed, policy epochs and the test AR of the
    last policy."""
    curves = [
        read_pipeline_parquet(path, ["test_loss"]).to_pandas()["test_loss"].to_numpy()
        for path in (conventional, last)
    ]
    return {
        "run": run,
        "seed": seed,
        "steps": point["steps"],
        "n_train": point["n_train"],
        "vocab_size": point["vocab_size"],
        "policy_epochs": policy_epochs,
        "ln_TN": scale_variable(point["steps"], point["n_train"]),
        "test_ar": acceleration_ratio(*curves),
    }


def scale_summary(runs: pd.DataFrame, target_steps: int, target_n: int) -> dict:
    """The fit over every run, and its extrapolation to (target_steps, target_n) with the 95 %
    prediction interval; `paper_inside` says whether the paper's AR lies in it."""
    fit = fit_line(runs["ln_TN"].to_numpy(), runs["test_ar"].to_numpy())
    x0 = scale_variable(target_steps, target_n)
    predicted = float(fit.predict(x0))
    half = float(fit.half_width(x0, new_run=True))
    low, high = fit.slope_interval()
    paper_ar = paper.ACCELERATION_RATIO["transformer"]
    return {
        "form": "AR = a + b ln(T N), OLS over every run",
        "a": fit.intercept,
        "b": fit.slope,
        "b_ci_low": low,
        "b_ci_high": high,
        "runs": fit.n,
        "target_steps": target_steps,
        "target_n_train": target_n,
        "predicted_ar": predicted,
        "prediction_low": predicted - half,
        "prediction_high": predicted + half,
        "paper_ar": paper_ar,
        "paper_inside": bool(predicted - half <= paper_ar <= predicted + half),
    }


def points_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (T, N, V): the seeds, their policy epochs and the mean and sd (n − 1) of the test AR."""
    grouped = runs.groupby(["steps", "n_train", "vocab_size"], sort=True)
    table = grouped["test_ar"].agg(seeds="count", test_ar_mean="mean", test_ar_sd="std")
    table["policy_epochs"] = grouped["policy_epochs"].agg(
        lambda epochs: "/".join(str(e) for e in sorted(set(epochs)))
    )
    table = table.reset_index()
    table["ln_TN"] = [
        scale_variable(t, n) for t, n in zip(table["steps"], table["n_train"], strict=True)
    ]
    return table


def scale_markdown(table: pd.DataFrame, summary: dict) -> str:
    """The Markdown of the scale study: the points, the fit, the extrapolation and the verdict."""
    lines = [
        "# Transformer toward the paper's scale: AR against ln(T·N)",
        "",
        "| T | N | V | seeds | policy epochs | test AR (mean ± sd) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.steps} | {row.n_train} | {row.vocab_size} | {row.seeds} | "
            f"{row.policy_epochs} | {row.test_ar_mean:.2f} ± {row.test_ar_sd:.2f} |"
        )
    s = summary
    inside = "inside" if s["paper_inside"] else "outside"
    lines += [
        "",
        f"Fit ({s['form']}, {s['runs']} runs): a = {s['a']:.3f}, b = {s['b']:.3f} per unit of "
        f"ln(T·N) (95 % CI {s['b_ci_low']:.3f} – {s['b_ci_high']:.3f}).",
        "",
        f"Extrapolated to the paper's T = {s['target_steps']}, N = {s['target_n_train']}: "
        f"AR = {s['predicted_ar']:.2f}, 95 % prediction interval {s['prediction_low']:.2f} – "
        f"{s['prediction_high']:.2f}; the paper's {s['paper_ar']:.2f}× lies {inside} it.",
    ]
    return "\n".join(lines) + "\n"
