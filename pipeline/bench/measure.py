"""The bench's measuring code, shared with the device check (pipeline/device_check/): a run of
the settings on the CPU from synthetic data, and the wall time, FLOPs and peak memory of a call.

Peak memory: `max_memory_allocated` on CUDA; on a CPU the process's peak RSS (VmHWM), reset to
the current RSS before the call, so that it counts what the call itself allocates.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from pipeline.data.perceptron import make_perceptron_data
from pipeline.data.synthetic import random_token_splits
from pipeline.distributed import local_shard
from pipeline.experiment import Run, build_model, shard_batch
from pipeline.runtime import rss_mb

CPU = torch.device("cpu")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


# -- the run ------------------------------------------------------------------------------------
def _splits(settings: dict, seed: int) -> dict[str, dict[str, Tensor]]:
    """The run's three splits: the Perceptron's from its data job's generator, the
    Transformer's random tokens (its time does not depend on the text)."""
    if settings["kind"] == "transformer":
        return random_token_splits(settings["data"], seed)
    frames = make_perceptron_data(settings["data"], seed)
    return {
        split: {
            "x": torch.tensor(np.stack(frame["x"].to_numpy())),
            "y": torch.tensor(frame["y"].to_numpy(), dtype=torch.float32),
        }
        for split, frame in frames.items()
    }


def bench_run(settings: dict, seed: int, compile: bool = False) -> Run:
    """The run of the settings on the CPU, on this process's share of each split (all of it in
    one process), in the model's layout: as `pipeline.experiment.load_run` builds it."""
    splits = _splits(settings, seed)
    n_train = next(iter(splits["train"].values())).shape[0]
    model = build_model(settings, CPU, compile)
    local = {s: model.prepare(shard_batch(batch, s, settings)) for s, batch in splits.items()}
    return Run(
        settings,
        model,
        local["train"],
        local["desired"],
        local["test"],
        CPU,
        torch.float32,
        local_shard(n_train),
    )


def initial(run: Run, seed: int) -> Tensor:
    return run.model.init_params(torch.Generator().manual_seed(seed)).to(torch.float32)


def split_sizes(run: Run) -> dict:
    """{n_train, n_desired, n_test} of the run (this process's share)."""
    count = lambda batch: next(iter(batch.values())).shape[0]  # noqa: E731
    return {
        "n_train": count(run.train),
        "n_desired": count(run.desired),
        "n_test": count(run.test),
    }


# -- time, FLOPs and memory of a call ------------------------------------------------------------
def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def return_freed_memory() -> None:
    """Make glibc hand every large freed block back to the OS (as MALLOC_MMAP_THRESHOLD_ does
    for the bench's probes), so that the peak RSS of an operation counts its activations rather
    than heap kept from earlier ones. No-op without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 65536)


def timed_peak(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, peak memory growth in MB) of one call of `fn`."""
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        elapsed = time.perf_counter() - start
        return elapsed, (torch.cuda.max_memory_allocated(device) - baseline) / 2**20
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the RSS
    baseline = rss_mb("VmRSS")
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    return elapsed, rss_mb("VmHWM") - baseline


def peak_growth_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory growth of one call (≥ 0)."""
    return max(0.0, timed_peak(fn, device)[1])


def measure(fn: Callable[[], object], device: torch.device, repeats: int) -> dict:
    """FLOPs (FlopCounterMode, on a first call), the peak memory growth of one call after a
    warm-up, and the median time of `repeats`."""
    with FlopCounterMode(display=False) as counter:
        fn()
    fn()  # a warm-up outside the counter, whose dispatch differs
    peak_mb = peak_growth_mb(fn, device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return {
        "flops": counter.get_total_flops(),
        "seconds": statistics.median(times),
        "peak_growth_mb": peak_mb,
    }
