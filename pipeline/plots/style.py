"""One look for every figure: seaborn's paper theme, fixed colours, PDF + PNG output, and the
helpers that keep a figure readable: legends placed where they cover no data, distinct colours
for the policies drawn, readable tick labels on log axes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    Locator,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

CONVENTIONAL = "#4C72B0"
NEAR_OPTIMAL = "#C44E52"
PAPER = "#7F7F7F"
CR_CMAP = "viridis"  # policies along the optimisation, coloured by their compression ratio


def apply_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.2)
    plt.rcParams.update({"figure.dpi": 110, "savefig.bbox": "tight", "axes.titleweight": "bold"})


def new_figure(width: float = 5.5, height: float = 3.8, **kwargs):
    """A styled figure and axes."""
    apply_style()
    return plt.subplots(figsize=(width, height), **kwargs)


def save_figure(fig, outputs: Sequence[str | Path]):
    """Save to every path given (the format follows the suffix: .pdf, .png), close, and return
    the figure (closed figures keep their artists: tests read back what is drawn)."""
    for path in outputs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200 if str(path).endswith(".png") else None)
    plt.close(fig)
    return fig


def cr_colorbar(fig, ax, vmin: float, vmax: float, label: str = "compression ratio (CR)"):
    """A colour bar for lines coloured by CR; returns the mapping CR → colour."""
    norm = Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-9)
    cmap = plt.get_cmap(CR_CMAP)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, label=label)
    return lambda cr: cmap(norm(cr))


def policy_colours(crs: Sequence[float]) -> list:
    """One clearly distinct colour per policy drawn, ordered by CR (dark = low, yellow = high),
    so that colour still reads as CR while no two lines share a colour."""
    ranks = np.argsort(np.argsort(np.asarray(crs, float), kind="stable"), kind="stable")
    cmap = plt.get_cmap(CR_CMAP)
    if len(ranks) == 1:
        return [cmap(0.0)]
    return [cmap(0.92 * r / (len(ranks) - 1)) for r in ranks]


def data_points(axes: Sequence) -> np.ndarray:
    """Display coordinates of every data point drawn in `axes`: the vertices of lines in data
    coordinates (segments filled in every 2 px) and scatter points. Reference lines
    spanning the axes (axhline, axvline) are not data."""
    points = [np.empty((0, 2))]
    for ax in axes:
        for line in ax.get_lines():
            if line.get_transform() is not ax.transData or not line.get_visible():
                continue
            xy = ax.transData.transform(np.asarray(line.get_xydata(), float))
            xy = xy[np.isfinite(xy).all(axis=1)]
            for a, b in zip(xy[:-1], xy[1:], strict=True):
                n = max(2, int(np.hypot(*(b - a)) / 2) + 1)
                points.append(a + np.linspace(0, 1, n)[:, None] * (b - a))
            points.append(xy)
        for collection in ax.collections:
            offsets = np.asarray(collection.get_offsets(), float)
            if offsets.size and collection.get_offset_transform() is ax.transData:
                points.append(ax.transData.transform(offsets))
    return np.concatenate(points)


def _covers(box, points: np.ndarray, pad: float = 2.0) -> bool:
    inside = (
        (points[:, 0] > box.x0 - pad)
        & (points[:, 0] < box.x1 + pad)
        & (points[:, 1] > box.y0 - pad)
        & (points[:, 1] < box.y1 + pad)
    )
    return bool(inside.any())


LEGEND_PLACES = [
    "upper right", "upper left", "lower left", "lower right", "center right", "center left",
    "upper center", "lower center", "center",
]  # fmt: skip


def place_legend(ax, *args, data_axes: Sequence | None = None, headroom: bool = True, **kwargs):
    """A legend inside `ax` where it covers no data of `data_axes` (default: `ax` and its twins).

    Tries the usual places; when every one covers data, makes room above the data by raising
    the top of the y axis (unless `headroom` is False, for axes with a natural top such as a
    CDF's 1) and tries again; failing that, puts it outside, right of the axes. Matplotlib's
    loc="best" looks at line vertices only, and only of its own axes, which is how legends came
    to cover curves and twin-axis lines.
    """
    fig = ax.figure
    if data_axes is None:
        data_axes = [ax, *ax.get_shared_x_axes().get_siblings(ax)]
        data_axes = [a for a in dict.fromkeys(data_axes) if a.bbox.bounds == ax.bbox.bounds]
    for attempt in range(4):
        fig.draw_without_rendering()
        points = data_points(data_axes)
        for place in LEGEND_PLACES:
            legend = ax.legend(*args, loc=place, **kwargs)
            fig.draw_without_rendering()
            box = legend.get_window_extent()
            inside = ax.bbox.contains(box.x0, box.y0) and ax.bbox.contains(box.x1, box.y1)
            if inside and not _covers(box, points):
                return legend
        if attempt == 3 or not headroom:
            break
        legend = ax.legend(*args, loc="upper right", **kwargs)  # room for it above the data
        fig.draw_without_rendering()
        share = legend.get_window_extent().height / ax.bbox.height + 0.04
        for a in data_axes:
            scale = a.yaxis.get_transform()
            low, high = scale.transform(np.array(a.get_ylim()))
            top = low + (high - low) / max(1 - share, 0.3)
            a.set_ylim(*scale.inverted().transform(np.array([low, top])))
    legend = ax.legend(*args, loc="upper left", bbox_to_anchor=(1.02, 1), **kwargs)  # outside
    fig.draw_without_rendering()
    overflow = legend.get_window_extent().x1 - fig.bbox.x1
    if overflow > 0:  # a wider figure, the axes where they were
        width, extra = fig.get_figwidth(), overflow / fig.dpi + 0.1
        fig.set_figwidth(width + extra)
        if fig.get_layout_engine() is None:
            params, scale = fig.subplotpars, width / (width + extra)
            fig.subplots_adjust(left=params.left * scale, right=params.right * scale)
    return legend


class ReadableLogLocator(Locator):
    """Ticks a reader can use on a log axis whatever its span, chosen when the axis is drawn
    (after every change of its limits): a decade's 1-2-5 over up to three decades, decades
    beyond, and over less than a decade evenly spaced round numbers (where the default log
    locator leaves two or three labels)."""

    def __init__(self, count: int = 5) -> None:
        self.count = count

    def __call__(self):
        low, high = sorted(self.axis.get_view_interval())
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float):
        low, high = sorted((vmin, vmax))
        if low <= 0:
            return LogLocator(base=10).tick_values(max(low, 1e-300), high)
        if high / low < 10:
            round_numbers = MaxNLocator(nbins=self.count, steps=[1, 2, 2.5, 5, 10], min_n_ticks=4)
            ticks = round_numbers.tick_values(low, high)
        elif high / low < 1000:
            ticks = LogLocator(base=10, subs=(1.0, 2.0, 5.0)).tick_values(low, high)
        else:
            ticks = LogLocator(base=10).tick_values(low, high)
        return ticks[ticks > 0]


def readable_log_ticks(ax, which: str = "y", count: int = 5) -> None:
    """`ReadableLogLocator` on a log axis of `ax`, its ticks written as plain numbers."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    axis.set_major_locator(ReadableLogLocator(count))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())
