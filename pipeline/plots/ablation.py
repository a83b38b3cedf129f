"""The ablation figure (Perceptron or Transformer): acceleration ratios per variant, over seeds;
and the Perceptron seeds figure: the AR against what makes a data draw easy or hard."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, NullLocator

from pipeline import paper
from pipeline.plots.style import CONVENTIONAL, NEAR_OPTIMAL, PAPER, new_figure, save_figure

#: (column of the per-run table, label, colour, marker) of each quantity drawn.
SERIES = [
    ("test_ar_last", "test set, last policy", NEAR_OPTIMAL, "o"),
    ("test_ar_selected", "test set, selected policy", "#DD8452", "D"),
    ("desired_ar", "desired set (optimised on), last policy", CONVENTIONAL, "s"),
]


#: How far (in variants) the seeds' dots sit left of their mean's marker.
SEED_SHIFT = 0.07


def ratio_axis(ax, low: float, high: float) -> None:
    """A log y axis of ratios from `low` to `high`, ticked at round ratios labelled 1×, 2×, …"""
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    round_ratios = (0.05, 0.1, 0.2, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100)
    ticks = [t for t in round_ratios if low <= t <= high]
    if high / low > 100:  # wide spans (the optimum's ratios): every other tick, 1× kept
        ticks = sorted({t for t in ticks if t in (0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100)})
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_yticklabels([f"{t:g}×" for t in ticks])


def plot_ablation(
    runs: pd.DataFrame, order: list[str], outputs: Sequence[str], kind: str = "perceptron"
):
    """Per variant: each seed's AR (small dots, just left of their mean so that seeds that
    agree stay visible) and their mean ± sd (marker and error bar), for the test set (last and
    selected policy) and the desired set; the paper's AR for `kind` (5.50× or 2.41×) and AR = 1
    (no speed-up) as lines. Log scale: ratios above and below 1 get the same room. Returns the
    (saved and closed) figure, whose artists tests read back."""
    fig, ax = new_figure(max(6.0, 1.1 * len(order) + 2.5), 4.2)
    x = np.arange(len(order))
    width = 0.24
    for i, (column, label, colour, marker) in enumerate(SERIES):
        offset = (i - 1) * width
        means, sds = [], []
        for j, variant in enumerate(order):
            values = runs.loc[runs["variant"] == variant, column].to_numpy(dtype=float)
            means.append(values.mean())
            sds.append(values.std(ddof=1) if len(values) > 1 else 0.0)
            ax.scatter(
                np.full(len(values), x[j] + offset - SEED_SHIFT),
                values,
                s=12,
                color=colour,
                alpha=0.6,
                zorder=2,
                linewidths=0,
            )
        ax.errorbar(
            x + offset + SEED_SHIFT / 2,
            means,
            yerr=sds,
            fmt=marker,
            color=colour,
            capsize=3,
            ms=6,
            label=label,
            zorder=3,
        )
    paper_ar = paper.ACCELERATION_RATIO[kind]
    ax.axhline(paper_ar, color=PAPER, ls="--", lw=1.2, label=f"paper: {paper_ar:.2f}× (test set)")
    ax.axhline(1.0, color="0.3", ls=":", lw=1.0, label="1× (no speed-up)")
    values = runs[[c for c, *_ in SERIES]].to_numpy(dtype=float)
    low = min(0.5, np.nanmin(values) / 1.15)
    high = max(paper_ar * 1.6, np.nanmax(values) * 1.15)
    ratio_axis(ax, low, high)
    ax.set_xticks(x)
    ax.set_xticklabels(order, rotation=20, ha="right")
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xlabel("variant (one factor changed from the ablation's base)")
    ax.set_ylabel("acceleration ratio AR (mean ± sd over seeds)")
    seeds = sorted(runs["seed"].unique())
    ax.set_title(f"{kind.capitalize()} ablation ({len(seeds)} seeds: {', '.join(map(str, seeds))})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    save_figure(fig, outputs)
    return fig


#: (column of the seeds runs table, x-axis label) of the seeds figure's panels.
DIFFICULTY = [
    ("test_cr_conventional", "conventional test CR"),
    ("desired_label_balance", "desired set: share of y = 1"),
    ("teacher_desired_angle", "angle(teacher, desired mean) (°)"),
]


def plot_seeds(runs: pd.DataFrame, order: list[str], outputs: Sequence[str]):
    """The test AR of the last policy of each run against three properties of its data draw,
    one panel each, a colour per variant; the paper's 5.50× as a line. Returns the figure."""
    fig, axes = new_figure(4.0 * len(DIFFICULTY), 3.6, ncols=len(DIFFICULTY), sharey=True)
    colours = [NEAR_OPTIMAL, CONVENTIONAL, "#DD8452", "#55A868", "#8172B3"]
    paper_ar = paper.ACCELERATION_RATIO["perceptron"]
    for ax, (column, label) in zip(axes, DIFFICULTY, strict=True):
        for i, variant in enumerate(order):
            rows = runs[runs["variant"] == variant]
            ax.scatter(
                rows[column], rows["test_ar_last"], s=18, color=colours[i % len(colours)],
                label=variant,
            )  # fmt: skip
        ax.axhline(paper_ar, color=PAPER, ls="--", lw=1.2, label=f"paper: {paper_ar:.2f}×")
        ax.axhline(1.0, color="0.3", ls=":", lw=1.0)
        ax.set_xlabel(label)
    axes[0].set_ylabel("test AR, last policy")
    top = max(paper_ar * 1.3, float(np.nanmax(runs["test_ar_last"])) * 1.15)
    bottom = min(0.5, float(np.nanmin(runs["test_ar_last"])) / 1.15)
    ratio_axis(axes[0], bottom, top)  # shared by the three panels
    seeds = sorted(runs["seed"].unique())
    axes[0].set_title(f"Perceptron over {len(seeds)} seeds", loc="left")
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    save_figure(fig, outputs)
    return fig
