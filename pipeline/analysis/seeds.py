"""The Perceptron over many seeds: what makes a data draw easy or hard for the policy.

Two properties of a draw, computed from its data files: the desired set's label balance (the
share of y = 1), and the angle between the teacher and the desired mean. The teacher is not
stored; on the isotropic training inputs z ~ N(0, σ²I), E[(2y − 1) z] is parallel to it, so its
direction is estimated by the mean of (2y − 1) z over the training set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from pipeline import paper
from pipeline.analysis.tables import format_number, markdown_table
from pipeline.results import read_pipeline_parquet


def _inputs_and_labels(path: str) -> tuple[np.ndarray, np.ndarray]:
    table = read_pipeline_parquet(path, ["x", "y"]).to_pandas()
    return np.stack(table["x"].to_numpy()).astype(np.float64), table["y"].to_numpy(dtype=float)


def teacher_direction(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The unit vector of mean (2y − 1) z: the teacher's direction for isotropic inputs."""
    w = ((2 * y - 1)[:, None] * z).mean(axis=0)
    return w / np.linalg.norm(w)


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between two vectors, in degrees."""
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def data_difficulty(train_path: str, desired_path: str) -> dict:
    """{desired_label_balance, teacher_desired_angle} of one Perceptron data draw."""
    z_train, y_train = _inputs_and_labels(train_path)
    z_desired, y_desired = _inputs_and_labels(desired_path)
    return {
        "desired_label_balance": float(y_desired.mean()),
        "teacher_desired_angle": angle_degrees(
            teacher_direction(z_train, y_train), z_desired.mean(axis=0)
        ),
    }


# What makes a draw easy or hard: (column of the runs table, its name in the table).
DIFFICULTY = [
    ("test_cr_conventional", "conventional test CR"),
    ("desired_label_balance", "desired share of y = 1"),
    ("teacher_desired_angle", "angle(teacher, desired mean)"),
]


def difficulty_correlation(runs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Per variant and property of a draw: Spearman's ρ of the test AR (last policy) with it
    over the seeds, and its two-sided p-value (rank-based: a handful of seeds, no linearity
    assumed)."""
    rows = []
    for variant in order:
        of = runs[runs["variant"] == variant]
        for column, name in DIFFICULTY:
            rho, p = stats.spearmanr(of[column], of["test_ar_last"])
            rows.append(
                {
                    "variant": variant,
                    "property": name,
                    "seeds": len(of),
                    "spearman_rho": float(rho),
                    "p_value": float(p),
                }
            )
    return pd.DataFrame(rows)


def correlation_footer(correlation: pd.DataFrame) -> str:
    """The Markdown section under the seeds table: ρ (p) per variant and property; "–" where
    it is undefined (a property constant over the seeds; p needs 3 seeds or more)."""
    cells = correlation.assign(
        cell=[
            f"{format_number(r.spearman_rho, '+.2f')} ({format_number(r.p_value, '.3f')})"
            for r in correlation.itertuples()
        ]
    )
    shown = cells.pivot(index="variant", columns="property", values="cell")
    shown = shown.loc[correlation["variant"].unique(), [name for _, name in DIFFICULTY]]
    return (
        "\nSpearman's ρ of the test AR (last policy) with what makes a draw easy or hard, over "
        "the seeds (two-sided p in brackets; `perceptron_seeds_correlation.csv`):\n\n"
        + markdown_table(shown.reset_index())
    )


def seeds_header(order: list[str], seeds: list[int]) -> str:
    """The Markdown heading of the seeds table."""
    return "\n".join(
        [
            "# Perceptron over many seeds: the distribution of the acceleration ratio",
            "",
            f"{len(seeds)} seeds ({', '.join(map(str, seeds))}; a seed draws the data and θ_0), "
            f"variants {', '.join(f'`{v}`' for v in order)} of `perceptron_ablation` (the same "
            "runs). AR on the held-out test set (*test*) and on the desired set J is computed on. "
            "Quartiles by linear interpolation; sd with n − 1. "
            f"Paper (Figure 5a, test set): AR = {paper.ACCELERATION_RATIO['perceptron']:.2f}×.",
        ]
    )
