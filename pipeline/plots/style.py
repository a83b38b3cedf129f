"""One look for every figure: seaborn's paper theme, fixed colours, PDF + PNG output."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

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


def save_figure(fig, outputs: Sequence[str | Path]) -> None:
    """Save to every path given (the format follows the suffix: .pdf, .png) and close."""
    for path in outputs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=200 if str(path).endswith(".png") else None)
    plt.close(fig)


def cr_colorbar(fig, ax, vmin: float, vmax: float, label: str = "compression ratio (CR)"):
    """A colour bar for lines coloured by CR; returns the mapping CR → colour."""
    norm = Normalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-9)
    cmap = plt.get_cmap(CR_CMAP)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, label=label)
    return lambda cr: cmap(norm(cr))
