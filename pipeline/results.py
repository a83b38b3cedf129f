"""The pipeline's own files under results/: one Parquet reader whose errors say which file is
damaged, the rule that writes it (`writing_rule`, pipeline/paths.py) and how to rebuild it, and
one all-or-nothing writer (`write_atomic`) whose errors name the file, its free disk space
and the settings to lower.

A damaged intermediate file (cut short by a full disk, written by an older version, edited by
hand) otherwise fails a later job with a bare KeyError or ArrowInvalid, and a plain re-run fails
the same way, since Snakemake sees the file as up to date. `--forcerun <file>` rebuilds it and
everything computed from it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.paths import writing_rule  # the rule that writes a file (pipeline/paths.py)


class PipelineFileError(RuntimeError):
    """An intermediate file of the pipeline is missing, unreadable or lacks a column."""


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


class PipelineWriteError(OSError):
    """Writing one of the pipeline's files failed (a full disk, a quota, a lost mount)."""


def _free_space(path: Path) -> str:
    """The free space of the file system holding `path`, for an error message."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return "unknown free space"
    return f"{free / 1e9:.3g} GB free" if free >= 1e8 else f"{free / 1e6:.3g} MB free"


def write_atomic(path: str | Path, write: Callable[[Path], object], controls: str) -> None:
    """Write `path` all or nothing: `write(temporary)` under a hidden name beside it, then one
    rename onto `path`, so that a full disk or a kill never leaves a truncated file.

    A failed write (OSError, or torch.save's RuntimeError "unexpected pos") is a
    `PipelineWriteError` naming the file, the free space of its file system and `controls`, the
    settings that decide how much is written; the temporary file is removed.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:
        temporary.unlink(missing_ok=True)
        raise PipelineWriteError(
            f"writing {path} failed ({type(error).__name__}: {error}); its file system has "
            f"{_free_space(path.parent)}. {controls} Free space (or move results/ to a larger "
            "disk) and run the same command again: the files written so far are whole, and an "
            "interrupted policy optimisation resumes from its last saved epoch."
        ) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
