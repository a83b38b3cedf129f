"""The measurements of the bench (`python -m pipeline.bench`, parts in pipeline/bench/__init__.py).

Each `bench_<part>` function times the engine on this machine and returns plain JSON values;
FLOP, memory and communication arithmetic is pipeline/bench/cost.py's, the table report.py's.
Sizes come from the configuration the command line loads (pipeline/bench/cli.py); the
Transformer runs on random tokens (its time does not depend on the text).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pipeline.bench import cost
from pipeline.config import policy_name, run_settings, saved_epochs, with_steps
from pipeline.data.perceptron import make_perceptron_data
from pipeline.data.synthetic import policy_after_step, random_token_splits
from pipeline.distributed import all_reduce_sum, barrier, is_main, local_shard, world_size
from pipeline.experiment import Run, build_model, shard_batch
from pipeline.launch import launch
from pipeline.policy.adjoint import policy_gradient, sqrt_checkpointing
from pipeline.policy.optimize import (
    checkpoint_interval,
    conventional_policy,
    epoch_gradient,
    optimize_policy,
    policy_step_size,
)
from pipeline.policy.simplex import project_to_simplex, sort_projection
from pipeline.training.descent import descent_step

#: The measured data-parallel cases: name → (processes, threads per process), in this order.
DATA_PARALLEL_CASES = {
    "one_process_two_threads": (1, 2),
    "two_processes_one_thread": (2, 1),
    "one_process_one_thread": (1, 1),
}
GOALS = {
    "perceptron_epoch_ratio": 4.0,  # at most
    "transformer_epoch_ratio": 3.5,  # at most
    "projection_seconds": 1.0,  # under, for 4000 × 16384 on 2 cores
    "perceptron_full_seconds": 600.0,  # under, 500 epochs of T = 2000
}
CPU = torch.device("cpu")


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


def bench_run(settings: dict, seed: int) -> Run:
    """The run of the settings on the CPU, on this process's share of each split (all of it in
    one process), in the model's layout: as `pipeline.experiment.load_run` builds it."""
    splits = _splits(settings, seed)
    n_train = next(iter(splits["train"].values())).shape[0]
    model = build_model(settings, CPU)
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


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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
    flops = {name: cost.count_flops(fn) for name, fn in operations.items()}
    if not flops["grad"]:  # closed forms without matrix products the counter sees
        return {}
    sizes = _sizes(run)
    return {
        "flops": flops,
        "vjp_over_grad_flops": flops["vjp"] / flops["grad"],
        "epoch_ratio_flop_floor": cost.epoch_ratio_floor(
            flops["grad"], flops["vjp"], flops["forward"], *sizes.values()
        ),
    }


def op_profile(fn: Callable[[], object], top: int = 6) -> list[dict]:
    """Where one call of `fn` spends its time: the `top` ATen operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

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
    result = {"sizes": {"dim": settings["data"]["dim"], **_sizes(run)}}
    result.update(bench_epoch_ratio(run, theta0, repeats))
    result["goal_epoch_ratio"] = GOALS["perceptron_epoch_ratio"]
    result["full"] = bench_full_optimisation(run, theta0, seed, epochs_run)
    return result


def bench_transformer(config: dict, seed: int, repeats: int, steps: int, compiled: bool) -> dict:
    """The ratio and the step operations, eager and (if `compiled`) with torch.compile."""
    settings = with_steps(run_settings(config, "transformer"), steps)
    result = {}
    for mode in ("eager", "compiled"):
        settings["train"]["compile"] = mode == "compiled"
        if mode == "compiled" and not compiled:
            result[mode] = None  # skipped (--quick or --no-compile): compiling takes minutes
            continue
        run = bench_run(settings, seed)
        theta0 = initial(run, seed)
        result["sizes"] = {
            **_sizes(run),
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


def _sizes(run: Run) -> dict:
    count = lambda batch: next(iter(batch.values())).shape[0]  # noqa: E731
    return {
        "n_train": count(run.train),
        "n_desired": count(run.desired),
        "n_test": count(run.test),
    }


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


# -- 3. memory ----------------------------------------------------------------------------------
def _rss_mb(field: str) -> float:
    """VmRSS or VmHWM (peak) of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_probe(settings: dict, seed: int, checkpoint_every: int, threads: int) -> dict:
    """Peak RSS growth of one adjoint pass (run in a fresh process, so peaks do not mix)."""
    torch.set_num_threads(threads)
    run = bench_run(settings, seed)
    theta0 = initial(run, seed)
    policy = conventional_policy(run)
    weights = policy[0]
    run.model.weighted_grad_vjp(theta0, run.train, weights, theta0)  # libraries' one-off set-up
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    baseline = _rss_mb("VmRSS")
    start = time.perf_counter()
    policy_gradient(
        run.model, theta0, run.train, run.desired, policy, run.eta, checkpoint_every, test=run.test
    )
    return {
        "checkpoint_every": checkpoint_every,
        "peak_growth_mb": _rss_mb("VmHWM") - baseline,
        "seconds": time.perf_counter() - start,
    }


def bench_memory(config: dict, seed: int, steps: int, n_train: int) -> dict:
    """The Transformer at laptop size on few examples (activations small beside T·|θ|)."""
    settings = with_steps(run_settings(config, "transformer"), steps)
    settings["data"].update(n_train=n_train, n_desired=n_train // 2, n_test=n_train // 2)
    params = bench_run(settings, seed).model.num_params
    mb = params * 4 / 2**20  # one float32 θ
    k = sqrt_checkpointing(steps)
    probes = {}
    for name, every in (("every_step", 1), ("sqrt_checkpointing", k)):
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            probes[name] = pool.submit(
                _memory_probe, settings, seed, every, torch.get_num_threads()
            ).result()
    return {
        "steps": steps,
        "n_train": n_train,
        "params": params,
        "theta_mb": mb,
        "theta_times_T_mb": mb * steps,
        "theta_times_sqrt_T_mb": mb * math.sqrt(steps),
        **probes,
        "peak_ratio": probes["every_step"]["peak_growth_mb"]
        / probes["sqrt_checkpointing"]["peak_growth_mb"],
    }


# -- 5. the paper-scale Transformer: measured per chunk here, estimated per epoch on a GPU ------
def _chunk_probe(settings: dict, seed: int, chunk: int, threads: int) -> dict:
    """Time, FLOPs and peak RSS growth of one gradient and one VJP over `chunk` paper-size
    sequences (a fresh process, so that the peak is this chunk's)."""
    torch.set_num_threads(threads)
    settings = {**settings, "train": {**settings["train"], "chunk_size": chunk}}
    settings["data"] = {**settings["data"], "n_train": chunk, "n_desired": 1, "n_test": 1}
    run = bench_run(settings, seed)
    theta0 = initial(run, seed)
    weights = torch.full((chunk,), 1.0 / chunk)
    cotangent = 1e-2 * torch.randn(theta0.shape, generator=torch.Generator().manual_seed(1))
    model, train = run.model, run.train
    operations = {
        "grad": lambda: model.weighted_grad(theta0, train, weights),
        "vjp": lambda: model.weighted_grad_vjp(theta0, train, weights, cotangent),
    }
    result = {"params": theta0.numel(), "chunk": chunk}
    for name, fn in operations.items():
        result[f"{name}_flops"] = cost.count_flops(fn)
        Path("/proc/self/clear_refs").write_text("5")
        baseline = _rss_mb("VmRSS")
        result[f"{name}_seconds"] = seconds(fn)
        result[f"{name}_peak_growth_mb"] = _rss_mb("VmHWM") - baseline
    return result


def bench_paper_scale(settings: dict, seed: int, chunk: int) -> dict:
    """The paper preset's Transformer (`settings`, SPEC §5): one chunk measured on this CPU, and
    from it the FLOPs, time and memory of one policy epoch on a GPU (pipeline/bench/cost.py,
    at its assumed throughput and bandwidth)."""
    # A fixed mmap threshold makes glibc return every large tensor to the OS when it is freed, so
    # that the probe's peak RSS counts each operation's activations (not heap reused from the last).
    environ = {**os.environ}
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
    try:
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            measured = pool.submit(
                _chunk_probe, settings, seed, chunk, torch.get_num_threads()
            ).result()
    finally:
        os.environ.clear()
        os.environ.update(environ)
    data, train = settings["data"], settings["train"]
    steps, n_train, n_desired = train["steps"], data["n_train"], data["n_desired"]
    params = measured["params"]
    grad, vjp = (measured[f"{op}_flops"] / chunk for op in ("grad", "vjp"))
    k = sqrt_checkpointing(steps) if settings["policy"]["checkpoint_every"] == 0 else 1
    epoch_flops = cost.policy_epoch_flops(grad, vjp, n_train, n_desired, steps, k)
    gpu_chunk = train["chunk_size"] or n_train
    activation = measured["vjp_peak_growth_mb"] * cost.MB / chunk  # bytes, linear in the chunk
    memory = cost.memory_estimate(params, steps, n_train, k, gpu_chunk, activation)
    cpu_seconds_per_example = {op: measured[f"{op}_seconds"] / chunk for op in ("grad", "vjp")}
    return {
        "sizes": {
            "params": params,
            "n_train": n_train,
            "n_desired": n_desired,
            "steps": steps,
            "vocab_size": data["vocab_size"],
            "seq_len": data["seq_len"],
            **settings["model"],
        },
        "measured_cpu": {
            **measured,
            "grad_gflops_per_second": measured["grad_flops"] / measured["grad_seconds"] / 1e9,
            "vjp_gflops_per_second": measured["vjp_flops"] / measured["vjp_seconds"] / 1e9,
            # the epoch's arithmetic at this CPU's measured time per example and operation
            "cpu_epoch_hours": cost.policy_epoch_flops(
                cpu_seconds_per_example["grad"],
                cpu_seconds_per_example["vjp"],
                n_train,
                n_desired,
                steps,
                k,
            )
            / 3600,
        },
        "estimated_gpu": {
            "assumed_sustained_tflops": cost.GPU_ASSUMED_TFLOPS,
            "step_tflop": epoch_flops / steps / 1e12,
            "epoch_pflop": epoch_flops / 1e15,
            "epoch_hours": cost.compute_hours(epoch_flops),
            "checkpoint_every": k,
            "stored_thetas_gb": memory["stored_thetas"] / cost.GB,
            "policy_and_gradient_gb": memory["policy_and_gradient"] / cost.GB,
            "activations_gb_per_chunk": memory["activations"] / cost.GB,
            "chunk_size": gpu_chunk,
            "every_theta_stored_gb": cost.stored_theta_vectors(steps, 1) * params * 4 / cost.GB,
        },
        "data_parallel": cost.data_parallel_estimate(
            params, steps, n_train, k, gpu_chunk, activation, epoch_flops
        ),
    }


# -- 6. data-parallel processes against threads, measured -------------------------------------
def data_parallel_epochs(spec: dict) -> None:
    """Entry of `pipeline.launch` (and of the one-process run): epochs of the Transformer of
    `spec["settings"]` on this process's share; the first process writes their median time and
    that of an all-reduce of |θ| floats to `spec["out"]`."""
    settings, seed = spec["settings"], spec["seed"]
    run = bench_run(settings, seed)
    theta0 = initial(run, seed)
    policy = conventional_policy(run)
    times = []
    for epoch in range(spec["repeats"] + 1):  # the first warms up
        barrier()
        start = time.perf_counter()
        policy, _ = policy_epoch(run, theta0, policy, epoch)
        barrier()
        times.append(time.perf_counter() - start)
    vector = torch.ones_like(theta0)
    reduces = [seconds(lambda: all_reduce_sum(vector)) for _ in range(20)]
    if is_main():
        result = {
            "processes": world_size(),
            "threads": torch.get_num_threads(),
            "epoch_seconds": statistics.median(times[1:]),
            "allreduce_ms": 1e3 * statistics.median(reduces),
        }
        Path(spec["out"]).write_text(json.dumps(result))


def bench_data_parallel(config: dict, seed: int, steps: int, repeats: int, out: Path) -> dict:
    """A policy epoch (T = `steps`) of the config's Transformer in 1 process × 2 threads and in
    2 processes × 1 thread (torchrun, gloo), on the same cores; and in 1 process × 1 thread for
    scale. The load average before each is recorded: on a shared machine it explains a lot."""
    settings = with_steps(run_settings(config, "transformer"), steps)
    spec = {"settings": settings, "seed": seed, "repeats": repeats, "device": "cpu"}
    results = {}
    threads = torch.get_num_threads()
    scratch = Path(tempfile.mkdtemp(dir=out))
    try:
        for name, (processes, per_process) in DATA_PARALLEL_CASES.items():
            load = os.getloadavg()[0]
            case = {**spec, "out": str(scratch / f"{name}.json")}
            if processes == 1:
                torch.set_num_threads(per_process)
                data_parallel_epochs(case)
                torch.set_num_threads(threads)
            else:
                entry = "pipeline.bench.timing:data_parallel_epochs"
                launch(entry, case, processes, per_process, False, [case["out"]], None)
            results[name] = {**json.loads(Path(case["out"]).read_text()), "load_average": load}
    finally:
        torch.set_num_threads(threads)
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()
    one, two = (results[k]["epoch_seconds"] for k in list(results)[:2])
    whole = bench_run(settings, seed)
    return {
        "sizes": {**_sizes(whole), "steps": steps, "params": whole.model.num_params},
        **results,
        "speedup_of_processes": one / two,
        "repeats": repeats,
    }


# -- 4. the full Perceptron optimisation -------------------------------------------------------
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
