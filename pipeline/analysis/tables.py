"""Tables as CSV (numbers, for machines) and Markdown (formatted, for people), without tabulate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
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


def mean_sd_columns(table: pd.DataFrame, metrics: list[tuple[str, str, str]]) -> dict:
    """{heading: ['mean ± sd', …]} for each (column, heading, format) of `metrics`, from the
    table's `<column>_mean` and `<column>_sd`: the shown cells of a table over seeds."""
    return {
        heading: [
            mean_sd(m, s, spec)
            for m, s in zip(table[f"{column}_mean"], table[f"{column}_sd"], strict=True)
        ]
        for column, heading, spec in metrics
    }


def summary_over_seeds(group: pd.DataFrame, columns: list[str]) -> dict:
    """{<column>_mean, <column>_sd} over a group's rows (one per seed) of each column, its
    non-finite values left out; NaN where nothing (or, for the sd, one value) is left."""
    row = {}
    for column in columns:
        values = group[column].to_numpy(dtype=float) if column in group else np.array([])
        values = values[np.isfinite(values)]
        row[f"{column}_mean"] = float(values.mean()) if len(values) else math.nan
        row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return row


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
