"""The minibatch AdamW comparison (`minibatch_online`): test loss against steps and FLOPs."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.ticker import EngFormatter

from pipeline.plots.online import ONLINE_COLOURS
from pipeline.plots.style import (
    CONVENTIONAL,
    PAPER,
    new_figure,
    place_legend,
    readable_log_ticks,
    save_figure,
)

COLOURS = {"conventional": CONVENTIONAL, **ONLINE_COLOURS, "online_select": "#C44E52",
           "clean_only": PAPER, "offline_selection": "#937860"}  # fmt: skip
STYLES = {"clean_only": "--", "offline_selection": "-."}


def plot_minibatch(curves: pd.DataFrame, order: list[str], outputs: Sequence[str]):
    """Two panels, test loss (mean over seeds, band ± sd) against AdamW steps and against the
    FLOPs of training (log scale: an online step costs several conventional ones), one line per
    policy in `order`, and the conventional final loss (dotted) whose first reach AR counts.
    The loss axis runs from the conventional run's loss at T/4 down to the lowest band: the
    early descent, alike for every policy, leaves the top, and the differences near the end
    show. `curves` is `analysis.minibatch.mean_curves`. Returns the saved figure."""
    fig, (by_step, by_flops) = new_figure(11.0, 4.0, ncols=2, sharey=True, layout="constrained")
    for policy in order:
        points = curves[curves["policy"] == policy].sort_values("step")
        style = {"color": COLOURS[policy], "linestyle": STYLES.get(policy, "-"), "lw": 1.6}
        low = points["test_loss"] - points["test_loss_sd"]
        high = points["test_loss"] + points["test_loss_sd"]
        label = policy.replace("_", " ")
        by_step.plot(points["step"], points["test_loss"], label=label, **style)
        by_step.fill_between(points["step"], low, high, color=COLOURS[policy], alpha=0.15, lw=0)
        later = points["flops"] > 0  # t = 0 has no place on a log axis
        by_flops.plot(points.loc[later, "flops"], points.loc[later, "test_loss"], **style)
        by_flops.fill_between(points.loc[later, "flops"], low[later], high[later],
                              color=COLOURS[policy], alpha=0.15, lw=0)  # fmt: skip
    conventional = curves[curves["policy"] == "conventional"].sort_values("step")
    if len(conventional):  # the level whose first reach the AR counts
        final = conventional["test_loss"].iloc[-1]
        for ax in (by_step, by_flops):
            ax.axhline(final, color=CONVENTIONAL, linestyle=":", lw=1.0,
                       label="conventional final loss" if ax is by_step else None)  # fmt: skip
        top = conventional[conventional["step"] >= conventional["step"].iloc[-1] / 4]
        top = float(top["test_loss"].iloc[0])
        bottom = float((curves["test_loss"] - curves["test_loss_sd"]).min())
        if top > bottom:
            by_step.set_ylim(bottom - 0.05 * (top - bottom), top)
    by_step.set_xlabel("AdamW step")
    by_step.set_ylabel("test loss [nats per token]")
    by_step.set_title("test loss against steps", fontsize=10)
    by_flops.set_xscale("log")
    readable_log_ticks(by_flops, which="x")
    by_flops.xaxis.set_major_formatter(EngFormatter(sep=" "))  # 20 G, 1 T: FLOPs
    by_flops.set_xlabel("training FLOPs (weighting and step; evaluations not counted)")
    by_flops.set_title("test loss against FLOPs", fontsize=10)
    place_legend(by_step, fontsize=8)
    return save_figure(fig, outputs)
