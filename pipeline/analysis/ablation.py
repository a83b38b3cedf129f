"""The Perceptron ablation: what the acceleration ratio depends on, over seeds.

Every run of the ablation (a variant of the Perceptron settings at one seed) gives one row of
`run_metrics`; `variant_table` aggregates the rows of a variant to mean ± sd over its seeds.
Torch-free, like every analysis job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import paper
from pipeline.analysis.metrics import acceleration_ratio, auc, compression_ratio
from pipeline.analysis.tables import format_number
from pipeline.results import read_pipeline_parquet

#: (column, heading) of the metrics aggregated per variant, in table order.
METRICS = [
    ("test_ar_last", "test AR, last policy"),
    ("test_ar_selected", "test AR, selected policy"),
    ("desired_ar", "desired AR, last policy"),
    ("j_reduction_pct", "J reduction (%)"),
    ("test_cr_conventional", "test CR, conventional"),
    ("test_cr_last", "test CR, last"),
    ("test_cr_selected", "test CR, selected"),
    ("best_test_epoch", "epoch of lowest test AUC"),
    ("selected_epoch", "selected epoch"),
]


@dataclass(frozen=True)
class AblationRun:
    """The files of one run of the ablation."""

    variant: str
    seed: int
    run: str
    conventional: str  # steps.parquet of the conventional policy
    last: str  # steps.parquet of the last epoch's policy
    selected: str  # steps.parquet of the near-optimal policy (the last one under `last`)
    history: str  # policy_history.parquet


def run_metrics(files: AblationRun, steps: int, log_vocab: float) -> dict:
    """The ablation's numbers for one run (AR and CR on the test set unless named `desired`)."""
    curves = ["step", "test_loss", "desired_loss"]
    conv, last, selected = (
        read_pipeline_parquet(path, curves).to_pandas()
        for path in (files.conventional, files.last, files.selected)
    )
    history = read_pipeline_parquet(files.history, ["epoch", "objective", "test_auc"]).to_pandas()
    if "selected" in read_pipeline_parquet(files.history).column_names:  # selection: validation
        history["selected"] = read_pipeline_parquet(files.history, ["selected"]).to_pandas()

    def cr(frame: pd.DataFrame) -> float:
        return compression_ratio(auc(frame["test_loss"]), steps, log_vocab)

    conv_test = conv["test_loss"].to_numpy()
    if "selected" in history:
        selected_epoch = int(history.loc[history["selected"], "epoch"].iloc[0])
    else:
        selected_epoch = int(history["epoch"].iloc[-1])
    objective = history["objective"].to_numpy()
    return {
        "variant": files.variant,
        "seed": files.seed,
        "run": files.run,
        "test_ar_last": acceleration_ratio(conv_test, last["test_loss"].to_numpy()),
        "test_ar_selected": acceleration_ratio(conv_test, selected["test_loss"].to_numpy()),
        "desired_ar": acceleration_ratio(
            conv["desired_loss"].to_numpy(), last["desired_loss"].to_numpy()
        ),
        "j_reduction_pct": 100.0 * (objective[0] - objective[-1]) / objective[0],
        "test_cr_conventional": cr(conv),
        "test_cr_last": cr(last),
        "test_cr_selected": cr(selected),
        "best_test_epoch": int(history["epoch"].iloc[int(np.argmin(history["test_auc"]))]),
        "selected_epoch": selected_epoch,
    }


def variant_table(runs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per variant (in `order`): the number of seeds, and mean and sd (n − 1) of each metric."""
    rows = []
    for variant in order:
        group = runs[runs["variant"] == variant]
        row: dict = {"variant": variant, "seeds": len(group)}
        for column, _ in METRICS:
            values = group[column].to_numpy(dtype=float)
            row[f"{column}_mean"] = float(values.mean())
            row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def mean_sd(mean: float, sd: float, spec: str = ".2f") -> str:
    """'1.23 ± 0.04' (the sd left out when there is one seed)."""
    if np.isnan(sd):
        return format_number(mean, spec)
    return f"{format_number(mean, spec)} ± {format_number(sd, spec)}"


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The variant table formatted for people: mean ± sd per cell."""
    shown = pd.DataFrame({"variant": table["variant"], "seeds": table["seeds"]})
    for column, heading in METRICS:
        spec = ".0f" if column.endswith("epoch") or column == "j_reduction_pct" else ".2f"
        if column.startswith("test_cr"):
            spec = ".3f"
        shown[heading] = [
            mean_sd(m, s, spec)
            for m, s in zip(table[f"{column}_mean"], table[f"{column}_sd"], strict=True)
        ]
    return shown


def header(definitions: dict, order: list[str], seeds: list[int]) -> str:
    """The Markdown table's heading: what each variant changes, and the paper's number."""
    lines = [
        "# Perceptron ablation: what the acceleration ratio depends on",
        "",
        f"Mean ± sd over seeds {', '.join(map(str, seeds))} (a seed draws the data and θ_0). "
        "AR and CR on the held-out test set unless marked *desired* (the set J is computed on). "
        "*Last*: the policy of the last epoch; *selected*: the near-optimal policy of the run "
        "(the last one, or under `policy.selection: validation` the epoch with the lowest AUC "
        "on the held-out quarter of the desired set). *Epoch of lowest test AUC*: over every "
        "epoch, for information only (the test set chooses nothing).",
        "",
        f"Paper (Figure 5a, test set): AR = {paper.ACCELERATION_RATIO['perceptron']:.2f}×.",
        "",
        "Variants (each a partial `perceptron` block merged onto config.yaml's):",
        "",
    ]
    for name in order:
        change = definitions[name] or "the main settings"
        lines.append(f"- `{name}`: {change}")
    return "\n".join(lines)
