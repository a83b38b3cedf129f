"""The linear-classification data of Section 4.2 / Appendix D (teacher-student, shifted inputs).

Teacher w* ~ N(0, √D·I); training inputs z ~ N(0, σ²I) with σ² = `train_variance` (3 in the
paper); desired and test inputs z ~ N(μ·1, I) with μ = `desired_mean` (0.5); label y = 1[w*·z > 0].
Scaling w* leaves every label unchanged, so the teacher's variance is immaterial.

The teacher and each split draw from their own stream of the seed (`SeedSequence.spawn`), so a
split's examples do not depend on the other splits' sizes: with more desired examples (the
ablation's K = 2048, 8192) the test set stays the same, and the first K desired examples too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pipeline.results import read_pipeline_parquet

SPLITS = ("train", "desired", "test")


def make_perceptron_data(settings: dict, seed: int) -> dict[str, pd.DataFrame]:
    """The three splits as DataFrames with columns `x` (list of floats) and `y` (0/1)."""
    streams = np.random.SeedSequence(seed).spawn(1 + len(SPLITS))
    teacher_rng, *split_rngs = (np.random.default_rng(s) for s in streams)
    dim = settings["dim"]
    teacher = teacher_rng.normal(0.0, dim**0.25, size=dim)  # variance √D
    sizes = {
        "train": settings["n_train"],
        "desired": settings["n_desired"],
        "test": settings["n_test"],
    }
    frames = {}
    for split, rng in zip(SPLITS, split_rngs, strict=True):
        if split == "train":
            z = rng.normal(0.0, np.sqrt(settings["train_variance"]), size=(sizes[split], dim))
        else:
            z = rng.normal(settings["desired_mean"], 1.0, size=(sizes[split], dim))
        y = (z @ teacher > 0).astype(np.int8)
        frames[split] = pd.DataFrame({"x": list(z.astype(np.float32)), "y": y})
    return frames


def write_split(frame: pd.DataFrame, path: str | Path) -> None:
    """Write one split as Parquet (x as a list<float32> column)."""
    table = pa.table(
        {
            "x": pa.array([row.tolist() for row in frame["x"]], type=pa.list_(pa.float32())),
            "y": pa.array(frame["y"].to_numpy(), type=pa.int8()),
        }
    )
    pq.write_table(table, path)


def load_perceptron_split(
    path: str | Path, dtype: torch.dtype, device: torch.device
) -> dict[str, torch.Tensor]:
    """A split as a batch {x: (n, D), y: (n,)}."""
    table = read_pipeline_parquet(path, ["x", "y"])
    x = table.column("x").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
    y = table.column("y").to_numpy()
    return {
        "x": torch.tensor(x, dtype=dtype, device=device),
        "y": torch.tensor(y, dtype=dtype, device=device),
    }
