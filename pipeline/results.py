"""The pipeline's own files under results/: which rule writes each, and one Parquet reader whose
errors say which file is damaged and how to rebuild it.

A damaged intermediate file (cut short by a full disk, written by an older version, edited by
hand) otherwise fails a later job with a bare KeyError or ArrowInvalid, and a plain re-run fails
the same way, since Snakemake sees the file as up to date. `--forcerun <file>` rebuilds it and
everything computed from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

#: File patterns (matched from the right, first match wins) and the rule that writes them.
WRITERS = (
    ("data/perceptron*/*.parquet", "perceptron_data"),
    ("data/*/*.parquet", "tinystories_data"),
    ("policy_history.parquet", "optimize_policy"),
    ("dumps/*/*.parquet", "evaluate_policy"),
    ("learning_law/*.parquet", "learning_law"),
    ("tables/*_ablation_runs.csv", "ablation_table"),
    ("policies", "optimize_policy"),  # the directory of saved policies (epochNNNN.pt)
)


class PipelineFileError(RuntimeError):
    """An intermediate file of the pipeline is missing, unreadable or lacks a column."""


def writing_rule(path: str | Path) -> str | None:
    """The rule of workflow/rules/ that writes `path`, if it is one of the pipeline's files."""
    posix = PurePosixPath(Path(path).as_posix())
    return next((rule for pattern, rule in WRITERS if posix.match(pattern)), None)


def rebuild_hint(path: str | Path) -> str:
    """Which rule writes `path` and the command that rebuilds it."""
    rule = writing_rule(path)
    by = f"it is written by rule `{rule}`" if rule else "it is one of the pipeline's outputs"
    return (
        f"{by}; rebuild it and what is computed from it with "
        f"`snakemake --cores all --forcerun {path}` (with the --configfile / --config of the run: "
        "a plain re-run does not, as the file looks up to date)"
    )


def read_pipeline_parquet(path: str | Path, columns: Sequence[str] | None = None) -> pa.Table:
    """The table of an intermediate Parquet file, with `columns` (all when None), or a
    `PipelineFileError` that names the file, the rule that writes it and the rebuild command."""
    try:
        names = pq.read_schema(path).names
        missing = [c for c in columns or () if c not in names]
        if not missing:
            return pq.read_table(path, columns=list(columns) if columns is not None else None)
    except FileNotFoundError:
        problem = "is missing"
    except (pa.ArrowException, OSError) as error:
        size = Path(path).stat().st_size if Path(path).exists() else 0
        problem = f"({size} bytes) cannot be read as Parquet ({type(error).__name__}: {error})"
    else:
        problem = (
            f"has no column {', '.join(f'`{c}`' for c in missing)} (it has {', '.join(names)}): "
            "it was written by another version of the pipeline, or damaged"
        )
    raise PipelineFileError(f"{path} {problem}; {rebuild_hint(path)}.")
