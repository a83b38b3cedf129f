"""The Transformer's AR against scale: ours with error bars, the fit and its band, the paper's
Table 2 points."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline import paper
from pipeline.analysis.scale import LinearFit, scale_variable
from pipeline.plots.style import NEAR_OPTIMAL, PAPER, new_figure, save_figure


def plot_scale(
    table: pd.DataFrame, fit: LinearFit, target: tuple[int, int], outputs: Sequence[str]
):
    """AR (mean ± sd over seeds) against T·N on a log axis, the fitted line with its 95 %
    confidence band (shaded) and prediction interval (dashed) out to the paper's scale, and the
    paper's Table 2 ARs. Returns the figure."""
    fig, ax = new_figure(6.2, 4.0)
    tn = table["steps"] * table["n_train"]
    ax.errorbar(
        tn, table["test_ar_mean"], yerr=table["test_ar_sd"].fillna(0.0), fmt="o",
        color=NEAR_OPTIMAL, capsize=3, label="ours (test AR, mean ± sd over seeds)", zorder=3,
    )  # fmt: skip
    paper_tn = [row["steps"] * row["n_train"] for row in paper.TABLE2]
    right = max(max(paper_tn), target[0] * target[1]) * 1.5
    grid = np.geomspace(float(tn.min()) / 1.5, right, 200)
    x = np.log(grid)
    line = fit.predict(x)
    ax.plot(grid, line, color=NEAR_OPTIMAL, lw=1.2, label="fit: AR = a + b ln(T·N)")
    band = fit.half_width(x)
    ax.fill_between(grid, line - band, line + band, color=NEAR_OPTIMAL, alpha=0.2,
                    label="95 % confidence band")  # fmt: skip
    pred = fit.half_width(x, new_run=True)
    ax.plot(grid, line - pred, color=NEAR_OPTIMAL, ls="--", lw=0.8)
    ax.plot(grid, line + pred, color=NEAR_OPTIMAL, ls="--", lw=0.8,
            label="95 % prediction interval")  # fmt: skip
    ax.scatter(paper_tn, [row["AR"] for row in paper.TABLE2], marker="s", color=PAPER,
               label="paper (Table 2)", zorder=4)  # fmt: skip
    x0 = scale_variable(*target)
    ax.axvline(math.exp(x0), color="0.5", ls=":", lw=1.0)
    ax.axhline(1.0, color="0.3", ls=":", lw=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("T·N (steps × training examples)")
    ax.set_ylabel("acceleration ratio AR (test set)")
    ax.set_title("Transformer: AR toward the paper's scale", loc="left")
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    save_figure(fig, outputs)
    return fig
