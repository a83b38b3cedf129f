"""The online policies beside the conventional and near-optimal ones: one figure per experiment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.config import ONLINE_POLICIES
from pipeline.plots.style import (
    CONVENTIONAL,
    NEAR_OPTIMAL,
    new_figure,
    readable_log_ticks,
    save_figure,
)

ONLINE_COLOURS = {"online_greedy": "#55A868", "online_positive": "#8172B2",
                  "online_softmax": "#DD8452"}  # fmt: skip
SHORT = {"conventional": "conventional", "near_optimal": "near-optimal"}
#: (column of the per-run table, panel title, y label, log scale)
PANELS = [
    ("test_ar", "test AR (conventional = 1)", "acceleration ratio", False),
    ("test_cr", "test CR", "compression ratio", False),
    ("j", "J = desired AUC (lower is better)", "Σ_t L_dsr(θ_t) [nats · steps]", False),
    (
        "cost_conventional_runs",
        "cost of finding the policy (bars: wall, ◇: FLOPs)",
        "conventional runs (ratio)",
        True,
    ),
]
#: the counted cost drawn over the measured one in the cost panel (one ◇ per policy, seeds' mean)
FLOPS = "cost_flops_conventional_runs"


def plot_online_policies(runs: pd.DataFrame, experiment: str, outputs: Sequence[str]):
    """Four panels (test AR, test CR, J, cost in conventional runs): per policy each seed's
    value (dots) and the mean ± sd over seeds (bar and error bar), the cost measured in wall
    time (bars) and counted in FLOPs (◇); online policies by their rule (greedy, positive,
    softmax). Returns the saved figure."""
    order = [p for p in ["conventional", "near_optimal", *ONLINE_POLICIES]
             if p in set(runs["policy"])]  # fmt: skip
    colours = {"conventional": CONVENTIONAL, "near_optimal": NEAR_OPTIMAL, **ONLINE_COLOURS}
    fig, axes = new_figure(12.0, 3.8, ncols=len(PANELS), layout="constrained")
    x = np.arange(len(order))
    for ax, (column, title, ylabel, log) in zip(axes, PANELS, strict=True):
        for i, policy in enumerate(order):
            values = runs.loc[runs["policy"] == policy, column].to_numpy(dtype=float)
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            ax.bar(i, values.mean(), yerr=sd, color=colours[policy], alpha=0.8, capsize=3)
            ax.scatter(np.full(len(values), i), values, s=10, color="0.15", zorder=3)
        labels = [SHORT.get(p, p.removeprefix("online_")) for p in order]
        ax.set_xticks(x, labels, fontsize=8, rotation=35, ha="right")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        shown = runs[column]
        if column == "cost_conventional_runs":
            counted = [runs.loc[runs["policy"] == p, FLOPS].mean() for p in order]
            ax.scatter(x, counted, marker="D", s=28, facecolor="white", edgecolor="0.15", zorder=4)
            shown = pd.concat([shown, runs[FLOPS]])
        if log:
            ax.set_yscale("log")
            top = shown.max()  # from half a run: room for a 1-2-5 tick below 1
            ax.set_ylim(0.5 * min(1.0, shown.min()), 1.6 * top)
            readable_log_ticks(ax)
        elif column != "j":
            low = runs[column].min()
            ax.set_ylim(0.9 * low if low > 0 else low, None)
    axes[0].set_title(f"{experiment}: {PANELS[0][1]}", fontsize=9)
    return save_figure(fig, outputs)
