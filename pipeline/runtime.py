"""What every pipeline job sets up: device, dtype, threads, logging, and clear failures."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger("pipeline")


def resolve_device(setting: str) -> torch.device:
    """`auto` → CUDA when present, else CPU; `cuda` without a GPU is an error naming the setting."""
    import torch

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "setting `device: cuda` but PyTorch sees no CUDA device; "
            "set `device: auto` or `device: cpu` (config.yaml or --config device=cpu)"
        )
    return torch.device(setting)


def resolve_dtype(setting: str) -> torch.dtype:
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[setting]


def setup_logging(log_path: str | Path | None = None) -> None:
    """Log to stderr and, when given, to the rule's log file (replacing earlier handlers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def rule_log(smk) -> str | None:
    """The log file of a rule's `snakemake` object, if the rule declares one."""
    return smk.log[0] if len(smk.log) else None


@contextmanager
def job(log_path: str | Path | None = None, threads: int = 1) -> Iterator[None]:
    """Set up one pipeline job: logging; for jobs that already use torch, threads and
    deterministic algorithms (analysis and figure jobs never import it, and start faster)."""
    setup_logging(log_path)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(max(1, threads))
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    except Exception:
        log.exception("job failed")
        raise
