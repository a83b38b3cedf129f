"""What every pipeline job sets up: device, dtype, threads, logging, and clear failures."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

log = logging.getLogger("pipeline")

#: OpenMP's wait policy in every job: PASSIVE puts a thread that waits at a barrier to sleep at
#: once instead of spinning (libgomp spins for up to 300,000 iterations first), so that a job's
#: threads do not hold a core that the thread they wait for, or another process, needs. Chosen by
#: measurement (bench part `contention`, docs/performance.md).
WAIT_POLICY = "PASSIVE"
#: The thread-count variables of OpenMP and the BLAS libraries torch and numpy may load (those
#: Snakemake sets for its shell jobs).
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_environment(threads: int, wait_policy: str | None = WAIT_POLICY) -> dict[str, str]:
    """The environment of a job of `threads` threads: every BLAS/OpenMP thread count, and
    OpenMP's wait policy (None: libgomp's default, which spins before sleeping)."""
    environment = dict.fromkeys(THREAD_VARIABLES, str(max(1, threads)))
    if wait_policy is not None:
        environment["OMP_WAIT_POLICY"] = wait_policy
    return environment


def set_thread_environment(threads: int, wait_policy: str | None = WAIT_POLICY) -> None:
    """Set this process's `thread_environment`, for the libraries it loads afterwards (a library
    already loaded keeps its own: numpy's BLAS then has Snakemake's counts, which are the same)."""
    os.environ.update(thread_environment(threads, wait_policy))
    if wait_policy is None:
        os.environ.pop("OMP_WAIT_POLICY", None)


def set_torch_threads(threads: int) -> None:
    """torch's intra-op and inter-op threads (the inter-op pool can be sized once per process,
    before it starts: a second, different request is logged and ignored)."""
    import torch  # here: the job sets the thread environment before torch loads

    threads = max(1, threads)
    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != threads:
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError as err:  # the pool has started (or was sized) already
            log.warning("torch inter-op threads stay %d: %s", torch.get_num_interop_threads(), err)


def resolve_device(setting: str) -> torch.device:
    """`auto` → CUDA when present, else CPU; `cuda` without a GPU is an error naming the setting."""
    import torch  # here: the job sets the thread environment before torch loads

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "setting `device: cuda` but PyTorch sees no CUDA device; "
            "set `device: auto` or `device: cpu` (config.yaml or --config device=cpu)"
        )
    return torch.device(setting)


def compile_unavailable(device: torch.device) -> str | None:
    """Why `torch.compile` cannot build kernels for `device` here, or None if it can: on a CPU
    Inductor compiles C++ against the Python headers; on CUDA it needs Triton."""
    import shutil
    import sysconfig

    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "Triton is not installed (pip install triton)"
    compilers = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    if not any(c and shutil.which(c) for c in compilers):
        return "no C++ compiler on PATH (install g++, or set CXX)"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not headers.exists():
        return f"the Python headers are missing ({headers}; install python3-dev)"
    return None


def resolve_dtype(setting: str) -> torch.dtype:
    import torch  # here: the job sets the thread environment before torch loads

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


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory from /proc/self/status, in MB: `VmRSS` (now) or `VmHWM`
    (the peak since start-up or since the last write of "5" to /proc/self/clear_refs)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rule_log(smk) -> str | None:
    """The log file of a rule's `snakemake` object, if the rule declares one."""
    return smk.log[0] if len(smk.log) else None


@contextmanager
def job(
    log_path: str | Path | None = None,
    threads: int = 1,
    uses_torch: bool = False,
    wait_policy: str | None = WAIT_POLICY,
) -> Iterator[None]:
    """Set up one pipeline job: logging; the thread environment of `threads` threads (BLAS,
    OpenMP and its wait policy) for what it loads; torch's threads if it uses torch
    (`uses_torch`: torch is loaded here, after the environment) or has loaded it, and then
    deterministic algorithms (analysis and figure jobs never import it, and start faster)."""
    set_thread_environment(threads, wait_policy)
    setup_logging(log_path)
    torch = sys.modules.get("torch")
    if torch is not None or uses_torch:
        set_torch_threads(threads)
    if torch is not None:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    except Exception:
        log.exception("job failed")
        raise
