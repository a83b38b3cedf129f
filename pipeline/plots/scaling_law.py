"""Figure 11: the test-loss curves minus L0 on log-log axes, with their scaling-law fits."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from matplotlib.colors import to_rgb

from pipeline import paper
from pipeline.analysis.scaling_law import Comparison, Curve
from pipeline.plots.style import (
    CONVENTIONAL,
    NEAR_OPTIMAL,
    new_figure,
    readable_log_ticks,
    save_figure,
)
from pipeline.plots.training import run_title


def _darker(colour: str, factor: float = 0.55) -> tuple[float, float, float]:
    """The colour towards black: a fit drawn over its own curve stays visible."""
    r, g, b = to_rgb(colour)
    return (factor * r, factor * g, factor * b)


def plot_scaling_law(
    curves: Sequence[Curve], comparison: Comparison, settings: dict, outputs: Sequence[str]
):
    """Figure 11: L_tst(θ_t) − L0 against t (solid), the fits (B/t)^β for t > t0 (dashed)
    with r² in the legend, t0 marked; without a fit, the raw curves and the reason."""
    fits = [comparison.conventional, comparison.near_optimal]
    L0 = fits[0].L0 if comparison.fitted else 0.0
    fig, ax = new_figure(5.8, 5.2, layout="constrained")  # room for the legend below
    for curve, fit, colour in zip(curves, fits, [CONVENTIONAL, NEAR_OPTIMAL], strict=True):
        t, loss = curve.after(0)
        above = loss > L0
        ax.plot(t[above], loss[above] - L0, color=colour, lw=2, label=f"{curve.name} learning")
        if fit is not None:
            t_fit = t[t > fit.t0]
            ax.plot(
                t_fit,
                fit.predict(t_fit) - L0,
                color=_darker(colour),
                lw=1.5,
                ls=(0, (4, 2)),
                label=f"fit: B = {fit.B:.3g}, β = {fit.beta:.3f}, r² = {fit.r2:.4f}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training step t")
    ax.set_ylabel("L$^{tst}$(θ$_t$) − L$_0$ [nats]" if comparison.fitted else "L$^{tst}$(θ$_t$)")
    if comparison.fitted:
        t0 = fits[0].t0
        if t0 > 0:
            ax.axvline(t0, color="0.45", lw=1, ls=":")
            ax.text(t0, 0.02, f" t$_0$ = {t0}", transform=ax.get_xaxis_transform(), color="0.3")
        reference = paper.SCALING_LAW_IMPROVEMENT
        text = (
            f"ours: L$_0$ = {L0:.4g} nats (shared), t$_0$ = {t0}, "
            f"|ΔB/B| = {comparison.dB_over_B:.1%}, |Δβ/β| = {comparison.dbeta_over_beta:.1%}\n"
            f"paper (Fig. 11): L$_0$ = {paper.SCALING_LAW_FIT['L0']}, "
            f"t$_0$ = {paper.SCALING_LAW_FIT['t0']}, "
            f"|ΔB/B| = {reference['dB_over_B']:.1%}, |Δβ/β| = {reference['dbeta_over_beta']:.1%}"
        )
    else:
        text = textwrap.fill(comparison.note, 80)
    for which in ("x", "y"):  # plain numbers (3, 4, 10, 20), not 4×10⁰, at least four of them
        readable_log_ticks(ax, which)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=2,
        fontsize=8.5,
        title=text,
        title_fontsize=8.5,
        frameon=True,
    )
    ax.set_title(f"Scaling law, {run_title(settings)}")
    return save_figure(fig, outputs)
