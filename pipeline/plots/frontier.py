"""The J–test frontier (`policy_frontier`) and the test AR at the optimum against K
(`optimum_k`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline import paper
from pipeline.plots.ablation import ratio_axis
from pipeline.plots.style import PAPER, new_figure, readable_log_ticks, save_figure

PATH_COLOURS = ["#C44E52", "#DD8452", "#4C72B0", "#55A868", "#8172B3", "#937860", "#DA8BC3"]
SEED_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
#: Marker of each reference policy (large, black; the conventional one hollow).
REFERENCE_MARKERS = {"conventional": "o", "online_greedy": "P", "online_positive": "X",
                     "online_softmax": "*"}  # fmt: skip


def plot_frontier(
    points: pd.DataFrame,
    front: pd.DataFrame,
    paths: list[str],
    kind: str,
    outputs: Sequence[str],
):
    """Two panels against J (the desired AUC the optimisation lowers): the test AR (log) and the
    test AUC ratio. Every epoch of every path is a small point (colour: path, marker: seed), the
    online policies large black ones, the Pareto front of (low J, high AR) a line; 1× and the
    paper's AR as lines. Returns the saved and closed figure."""
    fig, axes = new_figure(11.0, 4.4, ncols=2)
    seeds = sorted(points["seed"].unique())
    online = [p for p in points["path"].unique() if p not in paths]
    for ax, column, label in (
        (axes[0], "test_acceleration_ratio", "test AR against the conventional policy"),
        (axes[1], "test_auc_ratio", "test AUC ratio (conventional / policy)"),
    ):
        for i, path in enumerate(paths):
            for j, seed in enumerate(seeds):
                rows = points[(points["path"] == path) & (points["seed"] == seed)]
                ax.scatter(
                    rows["objective"], rows[column], s=7, alpha=0.55, linewidths=0,
                    color=PATH_COLOURS[i % len(PATH_COLOURS)],
                    marker=SEED_MARKERS[j % len(SEED_MARKERS)],
                    label=path if j == 0 else None,
                )  # fmt: skip
        for rule in online:
            rows = points[points["path"] == rule]
            hollow = rule == "conventional"
            ax.scatter(
                rows["objective"], rows[column], s=70, zorder=4, label=rule,
                marker=REFERENCE_MARKERS.get(rule, "D"), edgecolors="black",
                facecolors="white" if hollow else "black",
            )  # fmt: skip
        ax.axhline(1.0, color="0.3", ls=":", lw=1.0, label="1× (no speed-up)")
        ax.set_xscale("log")  # J spans decades when a path over-shoots
        readable_log_ticks(ax, "x")
        ax.set_xlabel("J: desired AUC, log scale (lower: nearer the optimum)")
        ax.set_ylabel(label)
    axes[0].plot(
        front["objective"], front["test_acceleration_ratio"], color="0.2", lw=1.2,
        drawstyle="steps-post", label="Pareto front (low J, high AR)", zorder=3,
    )  # fmt: skip
    paper_ar = paper.ACCELERATION_RATIO[kind]
    axes[0].axhline(paper_ar, color=PAPER, ls="--", lw=1.2, label=f"paper: {paper_ar:.2f}×")
    values = points["test_acceleration_ratio"].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    ratio_axis(axes[0], min(0.5, values.min() / 1.15), max(paper_ar * 1.3, values.max() * 1.15))
    count = f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}"
    axes[0].set_title(f"{kind.capitalize()}: test AR against J ({count})", loc="left")
    axes[1].set_title("test AUC ratio against J", loc="left")
    handles = {}
    for ax in axes:  # one legend for both panels
        handles |= dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    axes[1].legend(handles.values(), handles.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0),
                   fontsize="small", frameon=False)  # fmt: skip
    save_figure(fig, outputs)
    return fig


def plot_optimum_k(points: pd.DataFrame, table: pd.DataFrame, kind: str, outputs: Sequence[str]):
    """Test AR of each seed's lowest-J policy against K (log), mean ± sd and seeds as dots; the
    paper's AR (at its K = 512) and 1× as lines. Returns the saved and closed figure."""
    fig, ax = new_figure(5.8, 4.0)
    ax.scatter(points["k"], points["test_acceleration_ratio"], s=14, color="#C44E52", alpha=0.5,
               linewidths=0, label="a seed's lowest-J policy")  # fmt: skip
    ax.errorbar(
        table["k"], table["test_acceleration_ratio_mean"],
        yerr=table["test_acceleration_ratio_sd"].fillna(0.0), fmt="o-", color="#C44E52",
        capsize=3, label="mean ± sd over seeds",
    )  # fmt: skip
    paper_ar = paper.ACCELERATION_RATIO[kind]
    ax.axhline(paper_ar, color=PAPER, ls="--", lw=1.2, label=f"paper: {paper_ar:.2f}× (K = 512)")
    ax.axhline(1.0, color="0.3", ls=":", lw=1.0, label="1× (no speed-up)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(table["k"], [f"{k:g}" for k in table["k"]])
    values = points["test_acceleration_ratio"].to_numpy(dtype=float)
    ratio_axis(
        ax, min(0.5, np.nanmin(values) / 1.15), max(paper_ar * 1.3, np.nanmax(values) * 1.15)
    )
    ax.set_xlabel("K: desired examples (a quarter of them held out)")
    ax.set_ylabel("test AR at the optimum (lowest J)")
    ax.set_title(f"{kind.capitalize()}: the optimum's AR as the desired set grows", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    save_figure(fig, outputs)
    return fig
