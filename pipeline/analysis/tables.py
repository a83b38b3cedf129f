"""Tables as CSV (numbers, for machines) and Markdown (formatted, for people), without tabulate."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd


def format_number(value: object, spec: str = ".3g", missing: str = "–") -> str:
    """`value` formatted with `spec`; NaN and None as `missing`, text unchanged."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, str):
        return value
    return format(value, spec)


def mean_sd(mean: float, sd: float, spec: str = ".2f") -> str:
    """'1.23 ± 0.04' (the sd left out when there is one seed)."""
    if math.isnan(sd):
        return format_number(mean, spec)
    return f"{format_number(mean, spec)} ± {format_number(sd, spec)}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of the frame's cells as text (pipes escaped)."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(c) for c in frame.columns) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join(lines) + "\n"


def write_table(
    numbers: pd.DataFrame,
    shown: pd.DataFrame,
    csv_path: str,
    md_path: str,
    header: str,
    footer: str = "",
) -> None:
    """`numbers` to CSV; `shown` (the same rows, formatted) to Markdown between `header` and
    `footer`."""
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    numbers.to_csv(csv_path, index=False)
    below = "\n" + footer if footer else ""
    Path(md_path).write_text(header.rstrip() + "\n\n" + markdown_table(shown) + below)
