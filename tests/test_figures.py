"""Every figure read back from what is drawn: legends inside the figure and over no data, a
distinct colour for every line of a style, axis labels with units, readable log-axis ticks.

The figures are drawn from the smoke run's outputs and from synthetic data shaped like the
default run's (many policies, a CR that peaks and falls, policies of nearly equal CR), where the
defects of issue #15 showed. The checks below are written independently of pipeline.plots.style.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from pipeline.analysis.scaling_law import Curve, SearchSettings, compare_policies
from pipeline.config import run_settings
from pipeline.plots import learning_law as law
from pipeline.plots import scaling_law, training
from tests.conftest import merged_config

UNITLESS = ("ratio", "epoch", "step", "cdf", "examples", "1/n", "%")


def data_axes(fig: Figure) -> list:
    """Axes that draw data (colour bars and empty axes excluded)."""
    return [
        ax
        for ax in fig.axes
        if ax.get_label() != "<colorbar>" and (ax.get_lines() or ax.collections)
    ]


def drawn_points(ax) -> np.ndarray:
    """Display coordinates of the data of `ax`: each line sampled every pixel along its length,
    and scatter points."""
    out = [np.empty((0, 2))]
    for line in ax.get_lines():
        if line.get_transform() is not ax.transData:  # axhline / axvline: not data
            continue
        xy = ax.transData.transform(np.asarray(line.get_xydata(), float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) > 1:
            length = np.r_[0, np.cumsum(np.hypot(*np.diff(xy, axis=0).T))]
            at = np.arange(0, length[-1], 1.0)
            out.append(np.c_[np.interp(at, length, xy[:, 0]), np.interp(at, length, xy[:, 1])])
        out.append(xy)
    for collection in ax.collections:
        if collection.get_offset_transform() is ax.transData and len(collection.get_offsets()):
            out.append(ax.transData.transform(np.asarray(collection.get_offsets(), float)))
    return np.concatenate(out)


def check_legends(fig: Figure) -> None:
    fig.draw_without_rendering()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    for legend in legends:
        box = legend.get_window_extent()
        assert fig.bbox.contains(box.x0, box.y0) and fig.bbox.contains(box.x1, box.y1), (
            "legend cut off"
        )
        for ax in data_axes(fig):
            if not box.overlaps(ax.bbox):
                continue
            inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
            assert inside, f"legend {legend.get_texts()[0].get_text()!r} sticks out of its axes"
            points = drawn_points(ax)
            covered = (
                (points[:, 0] > box.x0)
                & (points[:, 0] < box.x1)
                & (points[:, 1] > box.y0)
                & (points[:, 1] < box.y1)
            )
            assert not covered.any(), (
                f"the legend ({[t.get_text() for t in legend.get_texts()]}) covers "
                f"{covered.sum()} drawn data points of {ax.get_title() or ax.get_ylabel()!r}"
            )


def check_colours(fig: Figure) -> None:
    for ax in data_axes(fig):
        lines = [
            line
            for line in ax.get_lines()
            if line.get_transform() is ax.transData and len(line.get_xdata()) > 1
        ]
        for a, b in itertools.combinations(lines, 2):
            if str(a.get_linestyle()) != str(b.get_linestyle()):
                continue
            distance = np.linalg.norm(np.subtract(to_rgb(a.get_color()), to_rgb(b.get_color())))
            assert distance > 0.12, (
                f"{a.get_label()!r} and {b.get_label()!r} are drawn in the same style and "
                f"colour ({to_rgb(a.get_color())} vs {to_rgb(b.get_color())})"
            )


def check_labels(fig: Figure) -> None:
    def has_unit(label: str) -> bool:
        return bool(re.search(r"\[[^\]]+\]", label)) or any(w in label.lower() for w in UNITLESS)

    for ax in data_axes(fig):
        twins = [a for a in fig.axes if a.bbox.bounds == ax.bbox.bounds]  # twinx share the x label
        xlabel = " ".join(a.get_xlabel() for a in twins)
        for label in (xlabel, ax.get_ylabel()):
            assert label.strip() and has_unit(label), f"axis label {label!r} gives no unit"
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert ax.get_ylabel(), "a colour bar without a label"


def check_log_ticks(fig: Figure) -> None:
    fig.draw_without_rendering()
    for ax in data_axes(fig):
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if axis.get_scale() != "log":
                continue
            low, high = sorted(limits)
            shown = [
                t
                for t in axis.get_majorticklabels()
                if t.get_text() and low <= t.get_position()[axis is ax.yaxis] <= high
            ]
            assert len(shown) >= 4, f"a log axis with {len(shown)} tick labels"


def check(fig: Figure) -> None:
    check_legends(fig)
    check_colours(fig)
    check_labels(fig)
    check_log_ticks(fig)


# --- the figures of the smoke run ---------------------------------------------------------------


def smoke_figures(results, outputs):
    config = merged_config()
    perceptron, transformer = (run_settings(config, r) for r in ("perceptron", "transformer"))
    law_dir = {run: results / run / "learning_law" for run in ("perceptron", "transformer")}
    dumps = {run: results / run / "dumps" for run in ("perceptron", "transformer")}
    last = {"perceptron": "epoch0004", "transformer": "epoch0002"}
    figures = {}
    for run, settings in (("perceptron", perceptron), ("transformer", transformer)):
        steps = (
            dumps[run] / "conventional" / "steps.parquet",
            dumps[run] / last[run] / "steps.parquet",
        )
        figures[f"4 {run}"] = training.plot_policy_optimization(
            results / run / "policy_history.parquet", settings, outputs
        )
        figures[f"5 {run}"] = training.plot_loss_curves(*steps, settings, outputs)
        figures[f"6 {run}"] = law.plot_sim_per_step(
            law_dir[run] / "sim_per_step.parquet", settings, outputs
        )
        figures[f"7 {run}"] = law.plot_sim_cr(
            law_dir[run] / "policies.csv",
            law_dir[run] / "sim_cr_fit.json",
            settings,
            outputs,
            online_path=law_dir[run] / "online_policies.csv",  # the online policies beside them
        )
        figures[f"8 {run}"] = law.plot_property41(law_dir[run] / "policies.csv", settings, outputs)
        figures[f"10 {run}"] = law.plot_property43(
            law_dir[run] / "property43_sample.parquet", settings, 50, 2048, outputs
        )
    figures["2"] = training.plot_loss_curves(*steps, transformer, outputs, paper_style=True)
    figures["9"] = law.plot_property42(
        law_dir["perceptron"] / "property42_weights.parquet",
        law_dir["perceptron"] / "policies.csv",
        perceptron,
        1e-6,
        outputs,
    )
    figures["perturbed"] = law.plot_perturbed_weight(
        law_dir["transformer"] / "perturbed_weight.csv", transformer, outputs
    )
    curves = [
        Curve.from_steps(name, pd.read_parquet(path))
        for name, path in zip(["conventional", "near-optimal"], steps, strict=True)
    ]
    comparison = compare_policies(
        *(pd.read_parquet(p) for p in steps), SearchSettings.from_config(config["scaling_law"])
    )
    figures["11"] = scaling_law.plot_scaling_law(curves, comparison, transformer, outputs)
    return figures


def test_every_smoke_figure_reads_well(smoke_run, tmp_path):
    figures = smoke_figures(smoke_run / "results", [str(tmp_path / "figure.png")])
    assert len(figures) == 16
    for name, fig in figures.items():
        try:
            check(fig)
        except AssertionError as err:
            raise AssertionError(f"figure {name}: {err}") from None


# --- synthetic data shaped like the default run's -----------------------------------------------

SETTINGS = {"kind": "perceptron", "train": {"steps": 150}, "data": {"n_train": 256}}
POLICIES = ["conventional"] + [f"epoch{e:04d}" for e in range(1, 9)]
# Epochs 6 and 8 of nearly equal CR: the perturbed-weight figure drew them in one colour.
CRS = [1.211, 1.248, 1.260, 1.265, 1.268, 1.270, 1.2725, 1.2727, 1.273]


def test_policy_optimisation_legend_clears_both_axes(tmp_path):
    epochs = np.arange(21)
    cr = 5.06 + 0.26 * np.sin(np.pi * epochs / 25)  # peaks, then falls back (the Perceptron)
    history = pd.DataFrame(
        {"epoch": epochs, "objective": 288 - 5 * epochs, "test_compression_ratio": cr}
    )
    history.to_parquet(tmp_path / "history.parquet")
    fig = training.plot_policy_optimization(
        tmp_path / "history.parquet", SETTINGS, [str(tmp_path / "f.png")]
    )
    check(fig)
    assert "[nats]" in fig.axes[0].get_ylabel()


@pytest.mark.parametrize("kind", ["perceptron", "transformer"])
def test_loss_curves_legend_and_ratio_clear_the_curves(tmp_path, kind):
    t = np.arange(151)
    conventional = 6.9 * np.exp(-t / 60) + 1.0  # the legend once hid both curves at t = 30–45
    optimised = 6.9 * np.exp(-t / 40) + 0.95
    for name, loss in (("conv", conventional), ("opt", optimised)):
        pd.DataFrame({"step": t, "test_loss": loss, "desired_loss": loss}).to_parquet(
            tmp_path / f"{name}.parquet"
        )
    settings = {**SETTINGS, "kind": kind}
    for paper_style in (False, True):
        fig = training.plot_loss_curves(
            tmp_path / "conv.parquet",
            tmp_path / "opt.parquet",
            settings,
            [str(tmp_path / "f.png")],
            paper_style,
        )
        check(fig)
        title = fig.axes[0].get_legend().get_title().get_text()
        assert "×" in title


def per_step_frame() -> pd.DataFrame:
    rows = []
    for i, (policy, cr) in enumerate(zip(POLICIES, CRS, strict=True)):
        for step in range(1, 16):
            loss = 6.0 * np.exp(-step / (8 - 0.3 * i)) + 1.5
            sim = 2.5 + 0.07 * i + 0.3 * np.sin(step * (1 + 0.1 * i))  # zigzags
            rows.append(
                {
                    "policy": policy,
                    "epoch": i,
                    "cr": cr,
                    "step": step * 10,
                    "test_loss": loss,
                    "sim": sim,
                }
            )
    return pd.DataFrame(rows)


def test_sim_per_step_draws_distinct_colours_in_order_of_cr(tmp_path):
    per_step_frame().to_parquet(tmp_path / "per_step.parquet")
    fig = law.plot_sim_per_step(tmp_path / "per_step.parquet", SETTINGS, [str(tmp_path / "f.png")])
    check(fig)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    crs = [float(label.rsplit("CR ", 1)[1]) for label in labels]
    assert crs == sorted(crs, reverse=True) and len(labels) <= 6  # legend in order of CR
    assert labels[-1].startswith("conventional") and "near-optimal" in labels[0]


def test_property42_with_many_policies(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i, (policy, cr) in enumerate(zip(POLICIES, CRS, strict=True)):
        relative = np.ones(200) if i == 0 else rng.beta(1 + 0.5 * (8 - i), 2 + i, 200)
        rows.append(
            pd.DataFrame(
                {
                    "policy": policy,
                    "epoch": i,
                    "cr": cr,
                    "relative_weight": relative,
                    "step_weight": 1.0,
                }
            )
        )
    pd.concat(rows).to_parquet(tmp_path / "p42.parquet")
    policies = pd.DataFrame(
        {"policy": POLICIES, "epoch": range(9), "cr": CRS, "min_example_loss": 0.0}
    )
    policies.to_csv(tmp_path / "policies.csv", index=False)
    fig = law.plot_property42(
        tmp_path / "p42.parquet",
        tmp_path / "policies.csv",
        SETTINGS,
        1e-6,
        [str(tmp_path / "f.png")],
    )
    check(fig)


def test_property41_annotations_stay_inside_when_the_last_policy_is_leftmost(tmp_path):
    crs = [5.06, 5.32, 5.30, 5.2, 5.01]  # the Perceptron's: the last policy has the lowest CR
    policies = pd.DataFrame(
        {
            "policy": POLICIES[:5],
            "epoch": range(5),
            "cr": crs,
            "property41_fraction": [0.0, 0.02, 0.03, 0.04, 0.045],
        }
    )
    policies.to_csv(tmp_path / "policies.csv", index=False)
    fig = law.plot_property41(tmp_path / "policies.csv", SETTINGS, [str(tmp_path / "f.png")])
    check(fig)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    for text in ax.texts:  # any annotation lies inside its axes
        box = text.get_window_extent()
        assert ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
    assert "near-optimal (epoch0004): 4.5%" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_perturbed_weight_policies_of_equal_cr_get_distinct_colours(tmp_path):
    rows = []
    for i, (policy, cr) in enumerate(zip(POLICIES, CRS, strict=True)):
        for step in range(0, 150, 10):
            share = 0.5 if i == 0 else 0.05 + step / 400 + 0.01 * i
            rows.append(
                {
                    "policy": policy,
                    "epoch": i,
                    "cr": cr,
                    "step": step,
                    "perturbed_weight_share": share,
                    "perturbed_zero_weight_fraction": 0.0 if i == 0 else 0.9 - step / 200,
                    "clean_zero_weight_fraction": 0.0 if i == 0 else 0.5 - step / 400,
                    "perturbed_example_fraction": 0.5,
                }
            )
    pd.DataFrame(rows).to_csv(tmp_path / "table.csv", index=False)
    fig = law.plot_perturbed_weight(tmp_path / "table.csv", SETTINGS, [str(tmp_path / "f.png")])
    check(fig)


def test_heat_map_draws_zero_white_and_names_its_sample_once(tmp_path):
    weights = np.r_[np.zeros(50), np.full(50, 1 / 256)]
    sample = pd.DataFrame(
        {
            "policy": "epoch0008",
            "epoch": 8,
            "cr": 1.27,
            "step": np.repeat([0, 10], 50),
            "example": np.tile(np.arange(50), 2),
            "weight": weights,
            "contribution": 1.0,
        }
    )
    sample.to_parquet(tmp_path / "sample.parquet")
    fig = law.plot_property43(
        tmp_path / "sample.parquet", SETTINGS, 0, 50, [str(tmp_path / "f.png")]
    )
    mesh = fig.axes[0].collections[0]
    zero_colour = mesh.cmap(mesh.norm(0.0))
    assert to_rgb(zero_colour) == (1.0, 1.0, 1.0)  # γ = 0 is white, as the caption says
    ylabel = fig.axes[0].get_ylabel()
    assert ylabel.count("50") == 1, ylabel  # not "50 sampled, at most 50"


def test_the_checks_catch_a_legend_over_data_and_twin_colours(tmp_path):
    """The checks themselves fail on the defects they look for."""
    from pipeline.plots.style import new_figure

    fig, ax = new_figure()
    x = np.linspace(0, 1, 50)
    ax.plot(x, x, color="C0", label="a")
    ax.plot(x, 1 - x, color="C0", label="b")
    ax.set_xlabel("t")
    ax.legend(loc="center")
    with pytest.raises(AssertionError, match="covers"):
        check_legends(fig)
    with pytest.raises(AssertionError, match="same style and colour"):
        check_colours(fig)
    with pytest.raises(AssertionError, match="gives no unit"):
        check_labels(fig)


@pytest.mark.parametrize("limits", [(0.14, 0.68), (4.62, 4.84), (1, 150), (1e-3, 10), (0.9, 12)])
def test_log_axes_get_at_least_four_tick_labels_whatever_their_span(limits):
    from pipeline.plots.style import new_figure, readable_log_ticks

    fig, ax = new_figure()
    ax.plot([1, 2], limits)
    ax.set_yscale("log")
    ax.set_ylim(*limits)
    ax.set_xlabel("step t")
    ax.set_ylabel("loss [nats]")
    readable_log_ticks(ax)
    check_log_ticks(fig)
