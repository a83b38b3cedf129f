"""An experiment's ablation (Perceptron or Transformer): what the AR depends on, over seeds.

Every run of the ablation (a variant of the experiment's settings at one seed) gives one row of
`run_metrics`; `variant_table` aggregates the rows of a variant to mean ± sd over its seeds, and
`distribution_table` to median, quartiles and range (`perceptron_seeds`). Torch-free, like every
analysis job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline import paper
from pipeline.analysis.tables import mean_sd, mean_sd_columns
from pipeline.metrics import acceleration_ratio, auc, compression_ratio
from pipeline.results import read_pipeline_parquet

#: (column, heading, format) of the metrics aggregated per variant, in table order.
METRICS = [
    ("test_ar_last", "test AR, last policy", ".2f"),
    ("test_ar_selected", "test AR, selected policy", ".2f"),
    ("desired_ar", "desired AR, last policy", ".2f"),
    ("j_reduction_pct", "J reduction (%)", ".0f"),
    ("test_cr_conventional", "test CR, conventional", ".3f"),
    ("test_cr_last", "test CR, last", ".3f"),
    ("test_cr_selected", "test CR, selected", ".3f"),
    ("best_test_epoch", "epoch of lowest test AUC", ".0f"),
    ("selected_epoch", "selected epoch", ".0f"),
    ("best_ar_epoch", "epoch of highest test AR", ".0f"),
    ("test_ar_best_epoch", "test AR, epoch of highest", ".2f"),
]

#: Prefix of the runs table's per-epoch test AR columns (every epoch, from the optimisation's
#: history): test_ar_epoch0001, …
EPOCH_AR = "test_ar_epoch"


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
    present = read_pipeline_parquet(files.history).column_names
    optional = [c for c in ("selected", "test_acceleration_ratio") if c in present]  # validation;
    columns = ["epoch", "objective", "test_auc", *optional]  # histories since 6d790d4
    history = read_pipeline_parquet(files.history, columns).to_pandas()

    def cr(frame: pd.DataFrame) -> float:
        return compression_ratio(auc(frame["test_loss"]), steps, log_vocab)

    conv_test = conv["test_loss"].to_numpy()
    if "selected" in history:
        selected_epoch = int(history.loc[history["selected"], "epoch"].iloc[0])
    else:
        selected_epoch = int(history["epoch"].iloc[-1])
    objective = history["objective"].to_numpy()
    per_epoch = {  # the test AR of every epoch's policy, as the optimisation measured it
        f"{EPOCH_AR}{int(row.epoch):04d}": float(row.test_acceleration_ratio)
        for row in history.itertuples()
        if row.epoch > 0 and "test_acceleration_ratio" in history
    }
    best = max(per_epoch, key=per_epoch.get) if per_epoch else None
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
        "best_ar_epoch": int(best[len(EPOCH_AR) :]) if best else math.nan,
        "test_ar_best_epoch": per_epoch[best] if best else math.nan,
        **per_epoch,
    }


def _per_variant(runs: pd.DataFrame, order: list[str], columns: list[str], summary) -> pd.DataFrame:
    """Per variant (in `order`): the number of seeds and `summary(values)` (suffix → value) of
    each column over them."""
    rows = []
    for variant in order:
        group = runs[runs["variant"] == variant]
        row: dict = {"variant": variant, "seeds": len(group)}
        for column in columns:
            values = group[column].to_numpy(dtype=float)
            row |= {f"{column}_{k}": float(v) for k, v in summary(values).items()}
        rows.append(row)
    return pd.DataFrame(rows)


def _sd(values: np.ndarray) -> float:
    """Sample standard deviation (n − 1); NaN for one seed."""
    return values.std(ddof=1) if len(values) > 1 else math.nan


def variant_table(runs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per variant (in `order`): the number of seeds, and mean, sd (n − 1) and range of each
    metric."""
    return _per_variant(
        runs,
        order,
        [c for c, *_ in METRICS],
        lambda v: {"mean": v.mean(), "sd": _sd(v), "min": v.min(), "max": v.max()},
    )


#: (column, heading) of the AR distributions of `distribution_table`.
DISTRIBUTED = [("test_ar_last", "test AR, last"), ("desired_ar", "desired AR, last")]


def distribution_table(runs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per variant: the seeds, and of each AR in `DISTRIBUTED` the mean, sd (n − 1), median,
    quartiles (linear interpolation) and range over the seeds."""

    def summary(values: np.ndarray) -> dict[str, float]:
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        return {
            "mean": values.mean(),
            "sd": _sd(values),
            "median": median,
            "q1": q1,
            "q3": q3,
            "min": values.min(),
            "max": values.max(),
        }

    return _per_variant(runs, order, [c for c, _ in DISTRIBUTED], summary)


def shown_distribution(table: pd.DataFrame) -> pd.DataFrame:
    """The distribution table for people: mean ± sd, median [Q1, Q3], range per AR."""
    shown = pd.DataFrame({"variant": table["variant"], "seeds": table["seeds"]})
    for column, heading in DISTRIBUTED:
        c = {k: table[f"{column}_{k}"] for k in ("mean", "sd", "median", "q1", "q3", "min", "max")}
        shown[f"{heading}: mean ± sd"] = [
            mean_sd(m, s) for m, s in zip(c["mean"], c["sd"], strict=True)
        ]
        shown[f"{heading}: median [Q1, Q3]"] = [
            f"{m:.2f} [{a:.2f}, {b:.2f}]"
            for m, a, b in zip(c["median"], c["q1"], c["q3"], strict=True)
        ]
        shown[f"{heading}: range"] = [
            f"{a:.2f} – {b:.2f}" for a, b in zip(c["min"], c["max"], strict=True)
        ]
    return shown


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The variant table formatted for people: mean ± sd per cell."""
    shown = pd.DataFrame({"variant": table["variant"], "seeds": table["seeds"]})
    return shown.assign(**mean_sd_columns(table, METRICS))


def header(
    kind: str,
    definitions: dict,
    order: list[str],
    seeds: list[int],
    base: dict | None = None,
    main: str | None = None,
) -> str:
    """The Markdown table's heading: what each variant changes, and the paper's number; the
    variant `main` is marked as the main run's settings (the one the at-a-glance page judges)."""
    drawn = "the data and θ_0" if kind == "perceptron" else "the stories sampled and θ_0"
    source = paper.ACCELERATION_FIGURE[kind]
    lines = [
        f"# {kind.capitalize()} ablation: what the acceleration ratio depends on",
        "",
        f"Mean ± sd over seeds {', '.join(map(str, seeds))} (a seed draws {drawn}). "
        "AR and CR on the held-out test set unless marked *desired* (the set J is computed on). "
        "*Last*: the policy of the last epoch; *selected*: the near-optimal policy of the run "
        "(the last one, or under `policy.selection: validation` the epoch with the lowest AUC "
        "on the held-out quarter of the desired set). *Epoch of lowest test AUC* and *of highest "
        "test AR*: over every epoch, for information only (the test set chooses nothing; the "
        "authors evaluated several epochs and did not say which gave their AR). Every epoch's "
        "test AR comes from the optimisation's own curves (`policy_history.parquet`) and is in "
        "the runs table (`test_ar_epoch0001`, …).",
        "",
        f"Paper ({source}, test set): AR = {paper.ACCELERATION_RATIO[kind]:.2f}×.",
        "",
        f"Variants (each a partial `{kind}` block merged onto config.yaml's"
        + (f", after the ablation's base {base}" if base else "")
        + "):",
        "",
    ]
    for name in order:
        change = definitions[name] or "the main settings"
        mark = " ← the main run's settings, judged on the at-a-glance page" if name == main else ""
        lines.append(f"- `{name}`: {change}{mark}")
    return "\n".join(lines)
