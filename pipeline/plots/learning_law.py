"""Figures 3b and 6–10 (Learning Law, Sections 4.4–4.5) and the weight of perturbed examples,
drawn from the tables of pipeline.analysis.learning_law (results/<run>/learning_law/)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.lines import Line2D

from pipeline.analysis.learning_law import SimCrFit, sim_cr_curve
from pipeline.plots.online import ONLINE_COLOURS
from pipeline.plots.style import (
    CONVENTIONAL,
    NEAR_OPTIMAL,
    cr_colorbar,
    new_figure,
    place_legend,
    policy_colours,
    save_figure,
)
from pipeline.plots.training import run_title

BOX = {"boxstyle": "round", "fc": "white", "ec": "0.7"}


def _note(ax, text: str, x: float = 0.5, y: float = 0.5, width: int = 55) -> None:
    """A boxed message inside the axes (e.g. why a fit or a panel is missing), wrapped."""
    lines = [textwrap.fill(line, width) for line in text.split("\n")]
    ax.text(
        x,
        y,
        "\n".join(lines),
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=9,
        bbox=BOX,
    )


def _policy_crs(frame: pd.DataFrame) -> pd.Series:
    """policy → CR, in optimisation order (conventional first)."""
    return frame.groupby("policy")[["epoch", "cr"]].first().sort_values("epoch")["cr"]


def _role_labels(policies: pd.Series) -> dict[str, str]:
    """Legend labels of the conventional and near-optimal (last) policies."""
    names = list(policies.index)
    return {names[0]: "conventional", names[-1]: f"near-optimal ({names[-1]})"}


def _drawn_policies(crs: pd.Series, count: int = 5) -> list[tuple[str, str, tuple]]:
    """(policy, legend label with its CR, colour) of the conventional policy and up to `count`
    evenly spaced later ones (the last included), in order of CR: one distinct colour each,
    dark for low CR to yellow for high, so that lines can be told apart and read as CR."""
    chosen = along_optimisation(list(crs.index), count)
    roles = _role_labels(crs)
    colours = policy_colours([crs[p] for p in chosen])
    drawn = [
        (p, f"{roles.get(p, p)}, CR {crs[p]:.3f}", colour)
        for p, colour in zip(chosen, colours, strict=True)
    ]
    return sorted(drawn, key=lambda item: crs[item[0]])


def plot_sim_per_step(per_step_path: str | Path, settings: dict, outputs: Sequence[str]):
    """Figure 6: SIM_t against L_tst(θ_t) (t ≥ 1) for the conventional policy and up to five
    later ones, one distinct colour each in order of CR (the legend lists them by CR)."""
    frame = pd.read_parquet(per_step_path)
    crs = _policy_crs(frame)
    frame = frame[(frame["step"] >= 1) & np.isfinite(frame["sim"])]
    fig, ax = new_figure(6.0, 4.2)
    for policy, label, colour in _drawn_policies(crs):  # higher CR drawn on top
        rows = frame[frame["policy"] == policy].sort_values("step")
        ax.plot(
            rows["test_loss"],
            rows["sim"],
            color=colour,
            lw=1.8,
            ls="--" if policy == crs.index[0] else "-",
            marker="o" if len(rows) <= 40 else None,
            ms=3.5,
            label=label,
        )
    losses = frame["test_loss"]
    if len(losses) and losses.max() > 10 * losses.min() > 0:
        ax.set_xscale("log")
    ax.invert_xaxis()  # training moves to lower loss: left to right
    ax.set_xlabel("test loss L$^{tst}$(θ$_t$) [nats]  (training proceeds →)")
    ax.set_ylabel("SIM$_t$ = $\\overline{CT}_t$ / s$_t$ (a ratio)")
    ax.set_title(run_title(settings))
    handles, labels = ax.get_legend_handles_labels()  # highest CR first
    place_legend(ax, handles[::-1], labels[::-1], fontsize=8, title="policy (by CR)",
                 title_fontsize=8)  # fmt: skip
    return save_figure(fig, outputs)


def _fit_label(fit: SimCrFit) -> str:
    return (
        f"fit SIM = c·ln(a/(b−CR))\n"
        f"a={fit.a:.3g}, b={fit.b:.4g}, c={fit.c:.3g}, r²={fit.r2:.3f}"
        + ("\n(b at its bound: no finite asymptote)" if fit.b_at_bound else "")
    )


def plot_sim_cr(
    policies_path: str | Path,
    fit_path: str | Path,
    settings: dict,
    outputs: Sequence[str],
    paper_style: bool = False,
    online_path: str | Path | None = None,
):
    """Figure 7 (Figure 3b with `paper_style`): SIM against CR per policy, with the fit of
    SIM = c·ln(a / (b − CR)) and its asymptote CR = b, where SIM → +∞. `online_path`: the
    online policies' SIM and CR (results/<run>/learning_law/online_policies.csv), drawn as
    diamonds outside the fit, which stays over the policies along the optimisation."""
    policies = pd.read_csv(policies_path).sort_values("epoch")
    fit = SimCrFit.from_json(Path(fit_path).read_text())
    finite = policies[np.isfinite(policies["sim"])]
    fig, ax = new_figure(5.0, 3.8) if paper_style else new_figure(6.0, 4.2)
    cr, sim = finite["cr"].to_numpy(), finite["sim"].to_numpy()
    ax.scatter(cr, sim, s=30, color="0.25", zorder=3, label="policies along the optimisation")
    for role, row, colour in (
        ("conventional", policies.iloc[0], CONVENTIONAL),
        ("near-optimal", policies.iloc[-1], NEAR_OPTIMAL),
    ):
        if np.isfinite(row["sim"]):
            ax.scatter(row["cr"], row["sim"], s=70, color=colour, zorder=4, label=role)
    span = max(np.ptp(cr), 1e-6) if len(cr) else 1.0
    shown_cr, shown_sim = cr, sim  # what the axis limits must include
    if online_path is not None:
        online = pd.read_csv(online_path)
        online = online[np.isfinite(online["sim"])]
        for row in online.itertuples():
            colour = ONLINE_COLOURS.get(row.policy, "0.5")
            ax.scatter(row.cr, row.sim, s=60, marker="D", zorder=5, color=colour, edgecolors="k",
                       label=f"{row.policy} (online, not fitted)")  # fmt: skip
        shown_cr = np.concatenate([cr, online["cr"].to_numpy()])
        shown_sim = np.concatenate([sim, online["sim"].to_numpy()])
    if fit.ok:
        right = fit.b if not fit.b_at_bound else cr.max() + 0.1 * span
        gaps = (right - cr.min() + 0.05 * span) * np.logspace(-4, 0, 300)
        grid = np.sort(right - gaps) if not fit.b_at_bound else np.linspace(cr.min(), right, 300)
        ax.plot(
            grid,
            sim_cr_curve(grid, fit.log_a, fit.b, fit.c),
            color=NEAR_OPTIMAL,
            lw=1.8,
            label=_fit_label(fit),
        )
        if not fit.b_at_bound:
            ax.axvline(fit.b, color="0.4", ls="--", lw=1)
            ax.annotate(  # along the asymptote, on its empty right-hand side
                f"CR → b = {fit.b:.4g}: SIM → +∞",
                xy=(fit.b, sim.max() + 0.9 * max(np.ptp(sim), 1e-6)),
                xytext=(3, 0),
                textcoords="offset points",
                rotation=90,
                ha="left",
                va="top",
                fontsize=9,
            )
        low, high = shown_sim.min(), shown_sim.max()
        pad = max(high - low, 1e-6)
        ax.set_ylim(low - 0.2 * pad, high + 1.2 * pad)
        right_edge = max(fit.b if not fit.b_at_bound else right, shown_cr.max())
        ax.set_xlim(min(cr.min(), shown_cr.min()) - 0.1 * span, right_edge + 0.1 * span)
    else:
        _note(ax, f"no fit: {fit.message}", y=0.12)
        pad_x, pad_y = 0.15 * span, 0.3 * max(np.ptp(sim), 1e-6) if len(sim) else 1.0
        if len(cr):
            ax.set_xlim(shown_cr.min() - pad_x, shown_cr.max() + pad_x)
            ax.set_ylim(shown_sim.min() - 1.5 * pad_y, shown_sim.max() + pad_y)
    ax.set_xlabel(
        "Compression Ratio (CR)" if paper_style else "compression ratio CR (test set, a ratio)"
    )
    ax.set_ylabel("SIM" if paper_style else "SIM = mean$_t$ SIM$_t$ (a ratio)")
    ax.set_title(
        "Learning Law: SIM → +∞ as learning approaches the optimum"
        if paper_style
        else run_title(settings),
        fontsize=10 if paper_style else None,
    )
    place_legend(ax, fontsize=8)
    return save_figure(fig, outputs)


def plot_property41(policies_path: str | Path, settings: dict, outputs: Sequence[str]):
    """Figure 8: per policy, the share of (t, n) with CT_{t,n} ≤ 0 that get γ_{t,n} = 0; the
    conventional and near-optimal policies ringed, their shares in the legend."""
    policies = pd.read_csv(policies_path).sort_values("epoch")
    fig, ax = new_figure()
    colour = cr_colorbar(fig, ax, policies["cr"].min(), policies["cr"].max())
    shown = policies[np.isfinite(policies["property41_fraction"])]
    ax.plot(shown["cr"], 100 * shown["property41_fraction"], color="0.6", lw=1, zorder=1)
    ax.scatter(
        shown["cr"],
        100 * shown["property41_fraction"],
        c=[colour(cr) for cr in shown["cr"]],
        s=45,
        edgecolor="0.2",
        zorder=2,
    )
    for role, row, ring in (
        ("conventional", policies.iloc[0], CONVENTIONAL),
        (f"near-optimal ({policies.iloc[-1]['policy']})", policies.iloc[-1], NEAR_OPTIMAL),
    ):
        if np.isfinite(row["property41_fraction"]):
            ax.scatter(
                row["cr"],
                100 * row["property41_fraction"],
                s=140,
                facecolor="none",
                edgecolor=ring,
                lw=2,
                zorder=3,
                label=f"{role}: {100 * row['property41_fraction']:.1f}%",
            )
    if shown.empty:
        _note(ax, "no example has CT$_{t,n}$ ≤ 0 at the dumped steps")
    ax.set_ylim(-5, 105)
    ax.set_xlabel("compression ratio CR (test set, a ratio)")
    ax.set_ylabel("zero-weight share of CT ≤ 0 [%]")
    ax.set_title(run_title(settings))
    if not shown.empty:
        place_legend(ax, fontsize=9)
    return save_figure(fig, outputs)


def _weighted_cdf(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return values[order], cumulative / cumulative[-1]


def plot_property42(
    property42_path: str | Path,
    policies_path: str | Path,
    settings: dict,
    loss_threshold: float,
    outputs: Sequence[str],
):
    """Figure 9: CDF of γ_{t,n} / max_m γ_{t,m} over the perfectly learned (t, n), whose loss is
    below `loss_threshold`, for the conventional policy and up to five later ones (one distinct
    colour each in order of CR; steps weighted as in SIM)."""
    learned = pd.read_parquet(property42_path)
    policies = pd.read_csv(policies_path).sort_values("epoch").set_index("policy")
    crs = policies["cr"][[p for p in policies.index if p in set(learned["policy"])]]
    fig, ax = new_figure(6.0, 4.2)
    for policy, label, colour in _drawn_policies(crs) if len(crs) else []:
        rows = learned[learned["policy"] == policy]
        relative, weight = rows["relative_weight"].to_numpy(), rows["step_weight"].to_numpy()
        x, y = _weighted_cdf(relative, weight)
        below = weight[relative < 0.2].sum() / weight.sum()
        ax.step(
            np.r_[0, x],
            np.r_[0, y],
            where="post",
            color=colour,
            lw=2,
            label=f"{label}: {100 * below:.0f}% below 0.2",
            ls="--" if policy == policies.index[0] else "-",
        )
    ax.axvline(0.2, color="0.5", ls=":", lw=1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(0, 1.02)
    if learned.empty:
        smallest = policies["min_example_loss"].min()
        _note(
            ax,
            f"no dumped example reached l(x$_n$, θ$_t$) < {loss_threshold:g}\n"
            f"(smallest per-example loss: {smallest:.3g} nats).\n"
            "Relax `learning_law.perfectly_learned_loss` to see the distribution.",
        )
    ax.set_xlabel("γ$_{t,n}$ / max$_m$ γ$_{t,m}$ (a ratio)")
    ax.set_ylabel(f"CDF over (t, n) with l < {loss_threshold:g} nats")
    ax.set_title(run_title(settings))
    if not learned.empty:
        handles, labels = ax.get_legend_handles_labels()  # highest CR first
        place_legend(ax, handles[::-1], labels[::-1], fontsize=8, headroom=False)
    return save_figure(fig, outputs)


def _cell_edges(steps: np.ndarray) -> np.ndarray:
    """Edges of heat-map cells: dumped step t_i covers [t_i, t_{i+1})."""
    last = steps[-1] + (steps[-1] - steps[-2] if steps.size > 1 else 1)
    return np.append(steps, last).astype(float)


def plot_property43(
    sample_path: str | Path,
    settings: dict,
    max_step: int,
    sample_size: int,
    outputs: Sequence[str],
):
    """Figure 10: γ_{t,n}·N over t for examples sampled among those with CT_{t,n} > 0 at every
    dumped step shown (near-optimal policy); rows sorted by their mean weight."""
    sample = pd.read_parquet(sample_path)
    n_train = settings["data"]["n_train"]
    fig, ax = new_figure(6.0, 4.2)
    window = f"t ≤ {max_step}" if max_step > 0 else "the whole run"
    if sample.empty:
        _note(ax, f"no training example has CT$_{{t,n}}$ > 0 at every dumped step of {window}")
        ax.set_axis_off()
    else:
        grid = sample.pivot(index="example", columns="step", values="weight") * n_train
        grid = grid.loc[grid.mean(axis=1).sort_values(ascending=False).index]
        steps = grid.columns.to_numpy()
        values = grid.to_numpy()
        top = max(float(np.quantile(values, 0.99)) if values.size else 1.0, 1e-12)
        # γ = 0 exactly is white (below the smallest colour); any weight above 0 is coloured
        cmap = colormaps["magma_r"].with_extremes(under="white")
        mesh = ax.pcolormesh(
            _cell_edges(steps),
            np.arange(values.shape[0] + 1),
            values,
            cmap=cmap,
            vmin=min(1e-9 * top, 1e-9),
            vmax=top,
            shading="flat",
            rasterized=True,
        )
        fig.colorbar(
            mesh, ax=ax, label="γ$_{t,n}$ · N  (1 = conventional 1/N; white: 0)", extend="both"
        )
        ax.invert_yaxis()
        drawn = f"all {len(grid)}" if len(grid) < sample_size else f"{len(grid)} sampled"
        ax.set_ylabel(f"training examples with CT > 0\n({drawn}), by mean γ")
        ax.set_xlabel("training step t")
        zero = float((values == 0).mean())
        policy = sample["policy"].iloc[0]
        ax.set_title(
            f"{run_title(settings)}\n{policy}, CT > 0 throughout {window}; "
            f"{100 * zero:.0f}% of cells γ = 0",
            fontsize=10,
        )
    return save_figure(fig, outputs)


def along_optimisation(policies: Sequence[str], count: int = 4) -> list[str]:
    """The conventional policy and up to `count` evenly spaced later ones, the last included."""
    policies = list(policies)
    later = policies[1:]
    if len(later) <= count:
        return policies
    picks = np.unique(np.linspace(0, len(later) - 1, count).round().astype(int))
    return [policies[0]] + [later[i] for i in picks]


def plot_perturbed_weight(table_path: str | Path, settings: dict, outputs: Sequence[str]):
    """Share of the weight on perturbed examples, and the zero-weight fraction of perturbed vs
    clean examples, over training, for policies along the optimisation (one distinct colour
    each, in order of CR)."""
    table = pd.read_csv(table_path)
    crs = _policy_crs(table)
    fig, (share_ax, zero_ax) = new_figure(11.0, 4.2, ncols=2, layout="constrained")
    for policy, label, colour in _drawn_policies(crs, count=4):
        rows = table[table["policy"] == policy].sort_values("step")
        share_ax.plot(
            rows["step"], 100 * rows["perturbed_weight_share"], color=colour, lw=2, label=label
        )
        zero_ax.plot(rows["step"], 100 * rows["perturbed_zero_weight_fraction"], color=colour, lw=2)
        zero_ax.plot(
            rows["step"], 100 * rows["clean_zero_weight_fraction"], color=colour, lw=2, ls="--"
        )
    share_ax.axhline(
        100 * table["perturbed_example_fraction"].iloc[0],
        color="0.4",
        ls=":",
        lw=1.5,
        label="perturbed share of the data",
    )
    share_ax.set_ylabel("Σ γ$_{t,n}$ over perturbed n [%]")
    share_ax.set_title("weight on perturbed examples")
    zero_ax.set_ylabel("examples with γ$_{t,n}$ = 0 [%]")
    zero_ax.set_title("zero-weight examples, perturbed (solid) vs clean (dashed)")
    for ax in (share_ax, zero_ax):
        ax.set_xlabel("training step t")
        ax.title.set_fontsize(10)
    place_legend(
        zero_ax,
        [Line2D([], [], color="0.2", lw=2), Line2D([], [], color="0.2", lw=2, ls="--")],
        ["perturbed", "clean"],
        fontsize=9,
    )
    handles, labels = share_ax.get_legend_handles_labels()
    order = [*range(len(handles) - 2, -1, -1), len(handles) - 1]  # highest CR first, then data
    place_legend(share_ax, [handles[i] for i in order], [labels[i] for i in order], fontsize=8)
    fig.suptitle(run_title(settings), fontweight="bold")
    return save_figure(fig, outputs)
