"""Bench parts 1 and 2 (`python -m pipeline.bench`, parts in pipeline/bench/__init__.py): the
epoch ratio, the step operations and the full Perceptron optimisation, and the projection;
parts 3 and 4 are in pipeline/bench/memory.py, 5 in data_parallel.py, 7 in online.py.

Each `bench_<part>` function times the engine on this machine and returns plain JSON values;
FLOP, memory and communication arithmetic is pipeline/bench/cost.py's, the table report.py's,
the run and the measuring of a call measure.py's. Sizes come from the configuration the command
line loads (pipeline/bench/cli.py); the Transformer runs on random tokens (its time does not
depend on the text).
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.profiler import ProfilerActivity, profile

from pipeline.bench import cost
from pipeline.bench.measure import bench_run, initial, seconds, split_sizes
from pipeline.config import policy_name, run_settings, saved_epochs, with_steps
from pipeline.data.synthetic import policy_after_step
from pipeline.experiment import Run
from pipeline.policy.flops import count_flops
from pipeline.policy.optimize import (
    checkpoint_interval,
    conventional_policy,
    epoch_gradient,
    optimize_policy,
    policy_step_size,
)
from pipeline.policy.simplex import project_to_simplex, sort_projection
from pipeline.training.descent import descent_step

GOALS = {
    "perceptron_epoch_ratio": 4.0,  # at most
    "transformer_epoch_ratio": 3.5,  # at most
    "projection_seconds": 1.0,  # under, for 4000 × 16384 on 2 cores
    "perceptron_full_seconds": 600.0,  # under, 500 epochs of T = 2000
}


# -- set-up ------------------------------------------------------------------------------------
def machine() -> dict:
    """What the figures were measured on."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cores_available": affinity,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _processor_name(),
    }


def _processor_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


# -- 1. epoch / conventional run --------------------------------------------------------------
def conventional_run(run: Run, theta0: Tensor) -> Tensor:
    """Plain conventional training: T full-batch steps under γ_t = 1/N."""
    weights = torch.full((run.n_train,), 1.0 / run.n_train)
    theta = theta0
    for _ in range(run.steps):
        theta = descent_step(run.model, theta, run.train, weights, run.eta)[0]
    return theta


def policy_epoch(run: Run, theta0: Tensor, policy: Tensor, epoch: int) -> tuple[Tensor, float]:
    """One epoch of the optimiser (adjoint gradient, step, projection), and the projection time."""
    result = epoch_gradient(run, theta0, policy)
    eps = policy_step_size(run.settings["policy"], epoch, run.steps)
    start = time.perf_counter()
    projected = project_to_simplex(torch.add(policy, result.grad, alpha=-eps))
    return projected, time.perf_counter() - start


def bench_epoch_ratio(run: Run, theta0: Tensor, repeats: int) -> dict:
    """Medians over `repeats` of the conventional run and of successive epochs, interleaved."""
    policy = conventional_policy(run)
    conventional_run(run, theta0)  # warm-up (and compilation, for a compiled model)
    policy_epoch(run, theta0, policy, 0)
    conventional, epochs, projections = [], [], []
    for epoch in range(repeats):
        conventional.append(seconds(lambda: conventional_run(run, theta0)))
        start = time.perf_counter()
        policy, projection = policy_epoch(run, theta0, policy, epoch)
        epochs.append(time.perf_counter() - start)
        projections.append(projection)
    conv, epoch = statistics.median(conventional), statistics.median(epochs)
    return {
        "steps": run.steps,
        "n_train": run.n_train,
        "checkpoint_every": checkpoint_interval(run),
        "conventional_run_seconds": conv,
        "epoch_seconds": epoch,
        "projection_seconds": statistics.median(projections),
        "epoch_ratio": epoch / conv,
        "repeats": repeats,
    }


def bench_step_operations(run: Run, theta0: Tensor, repeats: int) -> dict:
    """One forward, one training gradient and one VJP of the training gradient (N examples)."""
    model, train = run.model, run.train
    weights = torch.full((run.n_train,), 1.0 / run.n_train)
    cotangent = 1e-2 * torch.randn(theta0.shape, generator=torch.Generator().manual_seed(1))
    operations = {
        "forward": lambda: model.mean_loss(theta0, train),
        "grad": lambda: model.weighted_grad(theta0, train, weights),
        "vjp": lambda: model.weighted_grad_vjp(theta0, train, weights, cotangent),
    }
    times = {name: [] for name in operations}
    for _ in range(repeats + 1):  # the first round warms up
        for name, fn in operations.items():
            times[name].append(seconds(fn))
    result = {f"{name}_seconds": statistics.median(t[1:]) for name, t in times.items()}
    result["vjp_over_grad"] = result["vjp_seconds"] / result["grad_seconds"]
    result["profile"] = {name: op_profile(operations[name]) for name in ("grad", "vjp")}
    result.update(arithmetic_floor(run, operations))
    return result


def arithmetic_floor(run: Run, operations: dict[str, Callable[[], object]]) -> dict:
    """The FLOPs of the step operations (FlopCounterMode: matrix products) and the epoch ratio
    they alone allow (`cost.epoch_ratio_floor`)."""
    flops = {name: count_flops(fn) for name, fn in operations.items()}
    if not flops["grad"]:  # closed forms without matrix products the counter sees
        return {}
    sizes = split_sizes(run)
    return {
        "flops": flops,
        "vjp_over_grad_flops": flops["vjp"] / flops["grad"],
        "epoch_ratio_flop_floor": cost.epoch_ratio_floor(
            flops["grad"], flops["vjp"], flops["forward"], *sizes.values()
        ),
    }


def op_profile(fn: Callable[[], object], top: int = 6) -> list[dict]:
    """Where one call of `fn` spends its time: the `top` ATen operators by self CPU time."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "calls": e.count,
            "self_ms": e.self_cpu_time_total / 1e3,
            "share": e.self_cpu_time_total / total,
        }
        for e in events[:top]
    ]


def bench_perceptron(config: dict, seed: int, repeats: int, epochs_run: int) -> dict:
    settings = run_settings(config, "perceptron")
    run = bench_run(settings, seed)
    theta0 = initial(run, seed)
    result = {"sizes": {"dim": settings["data"]["dim"], **split_sizes(run)}}
    result.update(bench_epoch_ratio(run, theta0, repeats))
    result["goal_epoch_ratio"] = GOALS["perceptron_epoch_ratio"]
    result["full"] = bench_full_optimisation(run, theta0, seed, epochs_run)
    return result


def bench_transformer(config: dict, seed: int, repeats: int, steps: int, compiled: bool) -> dict:
    """The ratio and the step operations, eager and (if `compiled`) with torch.compile."""
    settings = with_steps(run_settings(config, "transformer"), steps)
    result = {}
    for mode in ("eager", "compiled"):
        if mode == "compiled" and not compiled:
            result[mode] = None  # skipped (--quick or --no-compile): compiling takes minutes
            continue
        run = bench_run(settings, seed, compile=mode == "compiled")
        theta0 = initial(run, seed)
        result["sizes"] = {
            **split_sizes(run),
            **settings["model"],
            "vocab_size": settings["data"]["vocab_size"],
            "seq_len": settings["data"]["seq_len"],
            "chunk_size": run.model.chunk_size,
            "params": theta0.numel(),
        }
        result[mode] = {
            **bench_epoch_ratio(run, theta0, repeats),
            "operations": bench_step_operations(run, theta0, repeats),
        }
    result["epoch_ratio"] = result["eager"]["epoch_ratio"]
    result["goal_epoch_ratio"] = GOALS["transformer_epoch_ratio"]
    return result


# -- 2. projection ------------------------------------------------------------------------------
def bench_projection(rows: int, n: int, seed: int, repeats: int) -> dict:
    v = policy_after_step(rows, n, seed)
    project_to_simplex(v[: max(1, rows // 10)])  # warm-up
    times = [seconds(lambda: project_to_simplex(v)) for _ in range(repeats)]
    projected = project_to_simplex(v)
    sample = v[:: max(1, rows // 50)]
    reference = sort_projection(sample.double())
    return {
        "shape": [rows, n],
        "seconds": statistics.median(times),
        "sort_based_seconds": seconds(lambda: sort_projection(v)),
        "max_abs_difference_to_sort_float64": float(
            (project_to_simplex(sample).double() - reference).abs().max()
        ),
        "support_fraction": float(torch.count_nonzero(projected) / projected.numel()),
        "goal_seconds": GOALS["projection_seconds"],
        "repeats": repeats,
    }


# -- 1. the full Perceptron optimisation -------------------------------------------------------
def bench_full_optimisation(run: Run, theta0: Tensor, seed: int, epochs_run: int) -> dict:
    """Wall time of `optimize_policy` (the real loop, policies saved) over E epochs.

    Runs `epochs_run` epochs and extrapolates to E, or runs all E if epochs_run ≥ E.
    """
    total = run.settings["policy"]["epochs"]
    epochs = min(epochs_run, total) if epochs_run > 0 else total
    settings = {**run.settings, "policy": {**run.settings["policy"], "epochs": epochs}}
    short = Run(settings, run.model, run.train, run.desired, run.test, run.device, run.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        paths = {
            e: out / f"{policy_name(e)}.pt"
            for e in saved_epochs(epochs, settings["policy"]["save_every"])
        }
        elapsed = seconds(
            lambda: optimize_policy(
                short, theta0, paths, out / "history.parquet", out / "resume", seed
            )
        )
    return {
        "epochs": total,
        "epochs_run": epochs,
        "seconds": elapsed * total / epochs,
        "measured": "full run" if epochs == total else f"extrapolated from {epochs} epochs",
        "goal_seconds": GOALS["perceptron_full_seconds"],
    }
