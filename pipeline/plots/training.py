"""Figures 2, 4 and 5: policy optimisation and the test-loss curves it produces."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from pipeline import paper
from pipeline.metrics import acceleration_ratio
from pipeline.plots.style import (
    CONVENTIONAL,
    NEAR_OPTIMAL,
    new_figure,
    place_legend,
    readable_log_ticks,
    save_figure,
)

TITLES = {"perceptron": "Perceptron linear classification", "transformer": "Transformer LM"}


def run_title(settings: dict) -> str:
    """'Perceptron linear classification (T=2000, N=4096)' and the like."""
    kind = settings["kind"]
    return f"{TITLES[kind]} (T={settings['train']['steps']}, N={settings['data']['n_train']})"


def plot_policy_optimization(history_path: str, settings: dict, outputs: Sequence[str]):
    """Figure 4: J(γ) (solid) and the test compression ratio (dashed) per policy epoch."""
    history = pd.read_parquet(history_path)
    fig, ax = new_figure()
    ax.plot(
        history["epoch"],
        history["objective"],
        color=NEAR_OPTIMAL,
        lw=2,
        label="J(γ): desired-loss AUC",
    )
    ax.set_xlabel("policy-optimisation epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))  # whole epochs
    ax.set_ylabel("J(γ) = Σ$_t$ L$^{dsr}$(θ$_t$) [nats]")
    twin = ax.twinx()
    twin.plot(
        history["epoch"],
        history["test_compression_ratio"],
        color=CONVENTIONAL,
        lw=2,
        ls="--",
        label="CR (test set)",
    )
    twin.set_ylabel("compression ratio CR (test set, a ratio)")
    twin.grid(False)
    ax.set_title(run_title(settings))
    lines = ax.get_lines() + twin.get_lines()
    # on the twin, which is drawn last: the lines of both axes stay clear of it
    place_legend(twin, lines, [line.get_label() for line in lines], data_axes=[ax, twin])
    return save_figure(fig, outputs)


def plot_loss_curves(
    conventional_path: str,
    optimized_path: str,
    settings: dict,
    outputs: Sequence[str],
    paper_style: bool = False,
):
    """Figure 5 (Figure 2 with `paper_style`): test loss, conventional vs near-optimal, AR."""
    conv = pd.read_parquet(conventional_path)
    opt = pd.read_parquet(optimized_path)
    conv_loss, opt_loss = conv["test_loss"].to_numpy(), opt["test_loss"].to_numpy()
    ratio = acceleration_ratio(conv_loss, opt_loss)
    paper_ratio = paper.ACCELERATION_RATIO[settings["kind"]]
    fig, ax = new_figure(5.0, 3.6) if paper_style else new_figure()
    labels = (
        ("Conventional LM Learning", "(Near-)Optimal LM Learning")
        if paper_style
        else ("conventional policy", "near-optimal policy (last epoch)")
    )
    ax.plot(conv["step"], conv_loss, color=CONVENTIONAL, lw=2, label=labels[0])
    ax.plot(opt["step"], opt_loss, color=NEAR_OPTIMAL, lw=2, label=labels[1])
    steps = int(conv["step"].iloc[-1])
    reached = np.flatnonzero(opt_loss <= conv_loss[-1])
    if reached.size:
        t_star = int(opt["step"].iloc[reached[0]])
        ax.axhline(conv_loss[-1], color="0.5", lw=0.8, ls=":")
        ax.annotate(
            "",
            xy=(t_star, conv_loss[-1]),
            xytext=(steps, conv_loss[-1]),
            arrowprops={"arrowstyle": "->", "color": "0.15", "lw": 1.5},
        )
    desired_ratio = acceleration_ratio(
        conv["desired_loss"].to_numpy(), opt["desired_loss"].to_numpy()
    )
    text = (
        f"{ratio:.2f}× Speedup"
        if paper_style
        else (
            f"acceleration ratio {ratio:.2f}× (ours, test set)\n"
            f"{desired_ratio:.2f}× on the desired set it was optimised on\n"
            f"paper: {paper_ratio:.2f}× (Fig. 5, test set)"
        )
    )
    ax.set_xlabel("Training Steps" if paper_style else "training step t")
    ax.set_ylabel("Test Loss [nats]" if paper_style else "test loss L$^{tst}$(θ$_t$) [nats]")
    if settings["kind"] == "perceptron":
        ax.set_yscale("log")
        readable_log_ticks(ax)
    if not paper_style:
        ax.set_title(run_title(settings))
    # the ratios head the legend, placed where it covers no curve
    size = "medium" if paper_style else "small"
    place_legend(ax, title=text, title_fontsize=size, alignment="left")
    return save_figure(fig, outputs)
