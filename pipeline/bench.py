"""Benchmark of the policy-optimisation engine: `python -m pipeline.bench [--quick] [--only …]`.

Measures, in one process on this machine (memory: one subprocess per configuration):

1. `perceptron`, `transformer`: the time of one policy-optimisation epoch (forward pass, adjoint
   pass, projection) over the time of one plain conventional training run of the same T. An epoch
   costs at least one training step plus one VJP per step, and a VJP of the training gradient
   costs about three gradients in arithmetic, so the ratio cannot go much below 4 for a model
   whose time is in its matrix products (the Transformer); the Perceptron's steps are bound by
   streaming its data matrix, which a VJP does three times and a step twice.
2. `projection`: the exact simplex projection of a 4000 × 16384 policy after a gradient step.
3. `memory`: peak memory of the adjoint storing every θ_t (k = 1) and checkpointing (k = √T),
   beside |θ|·T and |θ|·√T.
4. `perceptron` also gives the wall time of the full Perceptron policy optimisation (E epochs of
   the real loop, policies saved), run for `--perceptron-epochs` epochs and extrapolated to E.
5. `paper_scale`: the paper preset's Transformer, one chunk measured here, one epoch estimated on
   GPUs from its FLOPs; with P data-parallel processes also the per-step communication volume and
   the per-process memory (computed).
6. `data_parallel`: a policy epoch of the Transformer in 2 processes × 1 thread (gloo, started
   by pipeline.launch) against 1 process × 2 threads, on the same 2 cores.

Sizes come from config.yaml (the Perceptron at the paper's size, the Transformer at laptop size,
on random tokens: times do not depend on the text), or from the smoke preset with `--quick`.
Writes results/bench/bench.json (every figure, the goals, the machine) and bench.md (a table).
"""

from __future__ import annotations

import argparse
import json
import logging
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
import yaml
from torch import Tensor

from pipeline.config import policy_name, run_settings, saved_epochs
from pipeline.data.perceptron import make_perceptron_data
from pipeline.distributed import all_reduce_sum, barrier, is_main, local_shard, world_size
from pipeline.experiment import PAD_ID, Run, build_model, shard_batch
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
from pipeline.runtime import job
from pipeline.training.descent import descent_step

log = logging.getLogger("pipeline.bench")
ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("perceptron", "transformer", "projection", "memory", "paper_scale", "data_parallel",
            "online")  # fmt: skip
#: Sustained float32 throughput assumed for the GPU estimate of the paper preset (an A100-class
#: GPU: 19.5 TFLOP/s peak FP32, of which small-width matmuls and elementwise work reach ~40 %).
GPU_ASSUMED_TFLOPS = 8.0
#: Bus bandwidth assumed for the all-reduces of a data-parallel run (GB/s per process): NVLink
#: between the GPUs of one node (A100/H100 nodes: 150–450 GB/s; taken low), and 100 Gb/s
#: InfiniBand between nodes.
NODE_ASSUMED_GBPS = 100.0
NETWORK_ASSUMED_GBPS = 12.5
DATA_PARALLEL_PROCESSES = (1, 2, 4, 8, 16)
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


def load_config(path: Path, quick: bool) -> dict:
    """config.yaml, with the smoke preset's sizes merged in for `--quick`."""
    config = yaml.safe_load(path.read_text())
    if quick:
        smoke = yaml.safe_load((ROOT / "workflow" / "presets" / "smoke.yaml").read_text())
        for kind in ("perceptron", "transformer"):
            for block, values in smoke[kind].items():
                if isinstance(values, dict):
                    config[kind][block].update(values)
    return config


def perceptron_run(settings: dict, seed: int) -> Run:
    """The Perceptron data of the settings (the data job's generator), in the model's layout."""
    frames = make_perceptron_data(settings["data"], seed)
    model = build_model(settings, CPU)
    splits = {
        split: model.prepare(
            {
                "x": torch.tensor(np.stack(frame["x"].to_numpy())),
                "y": torch.tensor(frame["y"].to_numpy(), dtype=torch.float32),
            }
        )
        for split, frame in frames.items()
    }
    return Run(
        settings, model, splits["train"], splits["desired"], splits["test"], CPU, torch.float32
    )


def transformer_run(settings: dict, seed: int) -> Run:
    """The Transformer of the settings on random token sequences, right-padded to 50–100 %."""
    data = settings["data"]
    generator = torch.Generator().manual_seed(seed)

    def tokens(n: int) -> dict[str, Tensor]:
        seq = torch.randint(1, data["vocab_size"], (n, data["seq_len"]), generator=generator)
        lengths = torch.randint(
            data["seq_len"] // 2, data["seq_len"] + 1, (n, 1), generator=generator
        )
        seq[torch.arange(data["seq_len"]) >= lengths] = PAD_ID
        return {"tokens": seq}

    splits = {s: tokens(data[f"n_{s}"]) for s in ("train", "desired", "test")}
    model = build_model(settings, CPU)
    return Run(
        settings, model, splits["train"], splits["desired"], splits["test"], CPU, torch.float32
    )


def initial(run: Run, seed: int) -> Tensor:
    return run.model.init_params(torch.Generator().manual_seed(seed)).to(torch.float32)


def with_steps(settings: dict, steps: int) -> dict:
    return {**settings, "train": {**settings["train"], "steps": steps}}


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
    """The epoch ratio that the FLOPs alone allow (FlopCounterMode: matrix products).

    Per step an epoch runs the training gradient (N examples), its VJP (N), the desired set's
    gradient (K) and the test set's loss (K); a conventional run, the training gradient. So the
    ratio cannot fall below 1 + F_vjp/F_grad + K_dsr/N + (K_tst/N)·F_fwd/F_grad at equal speed.
    """
    from torch.utils.flop_counter import FlopCounterMode

    flops = {}
    for name, fn in operations.items():
        with FlopCounterMode(display=False) as counter:
            fn()
        flops[name] = counter.get_total_flops()
    if not flops["grad"]:  # closed forms without matrix products the counter sees
        return {}
    size = lambda batch: next(iter(batch.values())).shape[0]  # noqa: E731
    n, desired, test = size(run.train), size(run.desired), size(run.test)
    return {
        "flops": flops,
        "vjp_over_grad_flops": flops["vjp"] / flops["grad"],
        "epoch_ratio_flop_floor": 1
        + flops["vjp"] / flops["grad"]
        + desired / n
        + test / n * flops["forward"] / flops["grad"],
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
    run = perceptron_run(settings, seed)
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
        run = transformer_run(settings, seed)
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
def policy_after_step(rows: int, n: int, seed: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """A realistic input of the projection: a policy on the simplex plus a gradient step.

    Row t of the previous policy has a growing fraction of exact zeros (0 → 90 % along t), as
    optimised policies have; the step moves every entry by about half a typical weight (1/N).
    """
    generator = torch.Generator().manual_seed(seed)
    policy = torch.rand(rows, n, generator=generator, dtype=dtype).clamp_min_(1e-12).log_().neg_()
    zero_fraction = torch.linspace(0.0, 0.9, rows).unsqueeze(1)
    policy[torch.rand(rows, n, generator=generator) < zero_fraction] = 0
    policy /= policy.sum(dim=1, keepdim=True)
    return policy + torch.randn(rows, n, generator=generator, dtype=dtype) * (0.5 / n)


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
    run = transformer_run(settings, seed)
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
    params = transformer_run(settings, seed).model.num_params
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
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    settings = {**settings, "train": {**settings["train"], "chunk_size": chunk}}
    settings["data"] = {**settings["data"], "n_train": chunk, "n_desired": 1, "n_test": 1}
    run = transformer_run(settings, seed)
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
        with FlopCounterMode(display=False) as counter:
            fn()
        Path("/proc/self/clear_refs").write_text("5")
        baseline = _rss_mb("VmRSS")
        result[f"{name}_seconds"] = seconds(fn)
        result[f"{name}_peak_growth_mb"] = _rss_mb("VmHWM") - baseline
        result[f"{name}_flops"] = counter.get_total_flops()
    return result


def bench_paper_scale(seed: int, chunk: int) -> dict:
    """The paper preset's Transformer (SPEC §5): one chunk measured on this CPU, and from it the
    FLOPs, time and memory of one policy epoch on a GPU, estimated (see `GPU_ASSUMED_TFLOPS`)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    paper = yaml.safe_load((ROOT / "workflow" / "presets" / "paper.yaml").read_text())
    for block, values in paper["transformer"].items():
        if isinstance(values, dict):
            config["transformer"][block].update(values)
    settings = run_settings(config, "transformer")
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
    per_example = {op: measured[f"{op}_flops"] / chunk for op in ("grad", "vjp")}
    # Per step of an epoch: the forward pass's training gradient, its recomputation in the
    # backward pass (checkpointing every √T steps), one VJP, the desired set's gradient.
    k = sqrt_checkpointing(steps) if settings["policy"]["checkpoint_every"] == 0 else 1
    recompute = 1.0 if k > 1 else 0.0
    step_flops = per_example["grad"] * ((1 + recompute) * n_train + n_desired)
    step_flops += per_example["vjp"] * n_train
    epoch_flops = steps * step_flops
    mb = measured["params"] * 4 / 2**20
    gpu_chunk = train["chunk_size"] or n_train
    activations = measured["vjp_peak_growth_mb"] / chunk * gpu_chunk  # linear in the chunk
    stored_thetas = (math.ceil(steps / k) + 1 + (k + 1 if k > 1 else 0)) * mb
    policy_mb = steps * n_train * 4 / 2**20
    parallel = data_parallel_estimate(
        measured["params"], steps, n_train, k, gpu_chunk, activations / gpu_chunk, epoch_flops
    )
    return {
        "sizes": {
            "params": measured["params"],
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
            "cpu_epoch_hours": steps
            * (
                measured["grad_seconds"] * ((1 + recompute) * n_train + n_desired)
                + measured["vjp_seconds"] * n_train
            )
            / chunk
            / 3600,
        },
        "estimated_gpu": {
            "assumed_sustained_tflops": GPU_ASSUMED_TFLOPS,
            "step_tflop": step_flops / 1e12,
            "epoch_pflop": epoch_flops / 1e15,
            "epoch_hours": epoch_flops / (GPU_ASSUMED_TFLOPS * 1e12) / 3600,
            "checkpoint_every": k,
            "stored_thetas_gb": stored_thetas / 1024,
            "policy_and_gradient_gb": 3 * policy_mb / 1024,  # γ, ∂J/∂γ, the projected step
            "activations_gb_per_chunk": activations / 1024,
            "chunk_size": gpu_chunk,
            "every_theta_stored_gb": (steps + 1) * mb / 1024,
        },
        "data_parallel": parallel,
    }


def data_parallel_estimate(
    params: int,
    steps: int,
    n_train: int,
    k: int,
    chunk: int,
    activation_mb_per_example: float,
    epoch_flops: float,
) -> dict:
    """Per-step communication and per-process memory of one policy epoch in P processes
    (computed from the engine's collectives, float32), and the epoch time they allow (estimated).

    Per step every process all-reduces |θ| floats for the training gradient, |θ| for its
    recomputation in the backward pass ((k−1)/k of the steps), |θ| for H a and |θ| for the
    desired gradient; a ring all-reduce sends and receives 2(P−1)/P times the message. Per saved
    epoch the first process gathers γ twice (the saved policy, the resume state). Memory: the θ
    checkpoints (every process holds them), γ, ∂J/∂γ and the projected step for N/P columns,
    the activations of one chunk of at most N/P examples; the first process also holds the whole
    γ while it saves it.
    """
    theta_mb = params * 4 / 2**20
    vectors_per_step = 3 + (k - 1) / k
    stored_gb = (math.ceil(steps / k) + 1 + (k + 1 if k > 1 else 0)) * theta_mb / 1024
    policy_gb = steps * n_train * 4 / 2**30
    rows = {}
    for processes in DATA_PARALLEL_PROCESSES:
        ring = 2 * (processes - 1) / processes
        step_mb = vectors_per_step * theta_mb * ring
        epoch_gb = steps * step_mb / 1024 + (2 * policy_gb if processes > 1 else 0.0)
        local_chunk = min(chunk, math.ceil(n_train / processes))
        per_process_gb = (
            stored_gb + 3 * policy_gb / processes + activation_mb_per_example * local_chunk / 1024
        )
        compute_hours = epoch_flops / (processes * GPU_ASSUMED_TFLOPS * 1e12) / 3600
        bandwidth = NODE_ASSUMED_GBPS if processes <= 8 else NETWORK_ASSUMED_GBPS
        rows[str(processes)] = {
            "allreduce_mb_per_step": vectors_per_step * theta_mb,
            "sent_mb_per_step_per_process": step_mb,
            "sent_gb_per_epoch_per_process": epoch_gb,
            "communication_seconds_per_epoch": epoch_gb / bandwidth,
            "assumed_gbps": bandwidth,
            "memory_gb_per_process": per_process_gb,
            "memory_gb_first_process_at_saves": per_process_gb + policy_gb,
            "epoch_hours": compute_hours + epoch_gb / bandwidth / 3600,
        }
    return {
        "processes": rows,
        "note": "computed volumes and memory; hours estimated at "
        f"{GPU_ASSUMED_TFLOPS:g} TFLOP/s per GPU and {NODE_ASSUMED_GBPS:g} GB/s within a node "
        f"(up to 8 processes), {NETWORK_ASSUMED_GBPS:g} GB/s beyond",
    }


# -- 6. data-parallel processes against threads, measured -------------------------------------
def data_parallel_epochs(spec: dict) -> None:
    """Entry of `pipeline.launch` (and of the one-process run): epochs of the Transformer of
    `spec["settings"]` on this process's share; the first process writes their median time and
    that of an all-reduce of |θ| floats to `spec["out"]`."""
    settings, seed = spec["settings"], spec["seed"]
    whole = transformer_run(settings, seed)
    splits = {s: shard_batch(getattr(whole, s), s, settings) for s in ("train", "desired", "test")}
    run = Run(
        settings,
        whole.model,
        splits["train"],
        splits["desired"],
        splits["test"],
        CPU,
        torch.float32,
        local_shard(whole.n_train),
    )
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
                entry = "pipeline.bench:data_parallel_epochs"
                launch(entry, case, processes, per_process, False, [case["out"]], None)
            results[name] = {**json.loads(Path(case["out"]).read_text()), "load_average": load}
    finally:
        torch.set_num_threads(threads)
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()
    one, two = (results[k]["epoch_seconds"] for k in list(results)[:2])
    whole = transformer_run(settings, seed)
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


# -- report -------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    """The figures against their goals, as a Markdown table."""
    rows = []

    def add(what: str, value: float, unit: str, goal: float) -> None:
        met = "yes" if value <= goal else "no"
        rows.append(f"| {what} | {value:.3g}{unit} | ≤ {goal:g}{unit} | {met} |")

    if "perceptron" in results:
        p = results["perceptron"]
        add("Perceptron: epoch / conventional run", p["epoch_ratio"], "", p["goal_epoch_ratio"])
        full = p["full"]
        add(
            f"Perceptron: {full['epochs']} epochs ({full['measured']})",
            full["seconds"],
            " s",
            full["goal_seconds"],
        )
    if "transformer" in results:
        t = results["transformer"]
        add("Transformer: epoch / conventional run", t["epoch_ratio"], "", t["goal_epoch_ratio"])
        if t["compiled"]:
            ratio = t["compiled"]["epoch_ratio"]
            add(
                "Transformer, `train.compile`: epoch / conventional run",
                ratio,
                "",
                t["goal_epoch_ratio"],
            )
    if "projection" in results:
        q = results["projection"]
        add(
            f"projection of {q['shape'][0]} × {q['shape'][1]}",
            q["seconds"],
            " s",
            q["goal_seconds"],
        )
    for kind, online in results.get("online", {}).items():  # pipeline/policy/online.py
        for rule in ("online_greedy", "online_positive", "online_softmax"):
            ratio, goal = online[f"{rule}_per_conventional"], online["goal_per_conventional"]
            add(f"{kind}: {rule} run / conventional run (T = {online['steps']})", ratio, "", goal)
    lines = ["| quantity | measured | goal | met |", "| --- | --- | --- | --- |", *rows]
    if "transformer" in results:
        ops = results["transformer"]["eager"]["operations"]
        lines += [
            "",
            f"Transformer step operations (eager): training gradient {ops['grad_seconds']:.3f} s, "
            f"its VJP {ops['vjp_seconds']:.3f} s ({ops['vjp_over_grad']:.2f}× the gradient in "
            f"time, {ops.get('vjp_over_grad_flops', math.nan):.2f}× in FLOPs). By FLOPs alone an "
            "epoch costs at least "
            f"{ops.get('epoch_ratio_flop_floor', math.nan):.2f} conventional runs (training "
            "gradient + its VJP + the desired set's gradient + the test loss, per step). "
            "Self CPU time by operator (torch.profiler):",
            "",
            "| operation | operator | calls | self time | share |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, profiled in ops.get("profile", {}).items():
            for e in profiled:
                ms, share = f"{e['self_ms']:.1f} ms", f"{e['share']:.0%}"
                lines.append(f"| {name} | `{e['op']}` | {e['calls']} | {ms} | {share} |")
    if "memory" in results:
        m = results["memory"]
        lines += [
            "",
            f"Adjoint peak memory, Transformer |θ| = {m['params']}, T = {m['steps']}: "
            f"every θ_t stored {m['every_step']['peak_growth_mb']:.0f} MB "
            f"(|θ|·T = {m['theta_times_T_mb']:.0f} MB), "
            f"checkpoints every √T {m['sqrt_checkpointing']['peak_growth_mb']:.0f} MB "
            f"(|θ|·√T = {m['theta_times_sqrt_T_mb']:.0f} MB).",
        ]
    if "paper_scale" in results:
        p = results["paper_scale"]
        cpu, gpu, size = p["measured_cpu"], p["estimated_gpu"], p["sizes"]
        lines += [
            "",
            f"Paper preset's Transformer (|θ| = {size['params']:,}, N = {size['n_train']}, "
            f"T = {size['steps']}, V = {size['vocab_size']}, {size['seq_len']} tokens). "
            f"Measured here on {cpu['chunk']} sequences: gradient {cpu['grad_seconds']:.2f} s "
            f"({cpu['grad_flops'] / 1e9:.1f} GFLOP), VJP {cpu['vjp_seconds']:.2f} s "
            f"({cpu['vjp_flops'] / 1e9:.1f} GFLOP, {cpu['vjp_peak_growth_mb']:.0f} MB peak); "
            f"one policy epoch would take {cpu['cpu_epoch_hours']:.0f} h on this CPU. "
            f"Estimated on a GPU sustaining {gpu['assumed_sustained_tflops']:g} TFLOP/s: "
            f"{gpu['epoch_pflop']:.0f} PFLOP and {gpu['epoch_hours']:.1f} h per epoch; memory "
            f"{gpu['stored_thetas_gb']:.1f} GB of θ checkpoints (k = {gpu['checkpoint_every']}; "
            f"{gpu['every_theta_stored_gb']:.0f} GB if every θ_t were stored), "
            f"{gpu['policy_and_gradient_gb']:.1f} GB for γ and ∂J/∂γ, "
            f"{gpu['activations_gb_per_chunk']:.1f} GB of activations per chunk of "
            f"{gpu['chunk_size']}.",
        ]
    if "paper_scale" in results and "data_parallel" in results["paper_scale"]:
        parallel = results["paper_scale"]["data_parallel"]
        lines += [
            "",
            f"Paper preset in P data-parallel processes ({parallel['note']}):",
            "",
            "| P | all-reduced per step | sent per process per step | per epoch (time) | memory "
            "per process (first, at saves) | epoch (estimate) |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for processes, row in parallel["processes"].items():
            lines.append(
                f"| {processes} | {row['allreduce_mb_per_step']:.0f} MB "
                f"| {row['sent_mb_per_step_per_process']:.0f} MB "
                f"| {row['sent_gb_per_epoch_per_process']:.0f} GB "
                f"({row['communication_seconds_per_epoch']:.0f} s) "
                f"| {row['memory_gb_per_process']:.1f} GB "
                f"({row['memory_gb_first_process_at_saves']:.1f} GB) "
                f"| {row['epoch_hours']:.2f} h |"
            )
    if "data_parallel" in results:
        d = results["data_parallel"]
        one, two = d["one_process_two_threads"], d["two_processes_one_thread"]
        size = d["sizes"]
        lines += [
            "",
            f"Data-parallel on this machine: one policy epoch of the Transformer (|θ| = "
            f"{size['params']:,}, N = {size['n_train']}, T = {size['steps']}) takes "
            f"{one['epoch_seconds']:.2f} s in 1 process × 2 threads and "
            f"{two['epoch_seconds']:.2f} s in 2 processes × 1 thread (gloo; "
            f"{d['speedup_of_processes']:.2f}× the speed), "
            f"{d['one_process_one_thread']['epoch_seconds']:.2f} s in 1 process × 1 thread; "
            f"one all-reduce of |θ| floats {two['allreduce_ms']:.2f} ms. Load average before "
            "each: "
            + ", ".join(f"{d[k]['load_average']:.1f}" for k in DATA_PARALLEL_CASES)
            + " (the machine is shared).",
        ]
    info = results["machine"]
    lines += [
        "",
        f"Machine: {info['processor']}, {info['cores_available']} cores available, "
        f"{info['torch_threads']} torch threads, torch {info['torch']}.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smoke-preset sizes, seconds")
    parser.add_argument(
        "--only", choices=SECTIONS, help="one part (merged into an existing bench.json)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=0, help="timed repeats (0: 3, quick: 1)")
    parser.add_argument(
        "--perceptron-epochs", type=int, default=20, help="run, then extrapolate (0: all)"
    )
    parser.add_argument(
        "--transformer-steps", type=int, default=20, help="T of the ratio (it does not depend on T)"
    )
    parser.add_argument("--memory-steps", type=int, default=400)
    parser.add_argument(
        "--paper-chunk", type=int, default=64, help="paper-size sequences measured per chunk"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled Transformer")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run_bench(args: argparse.Namespace) -> dict:
    """Measure the chosen sections and write bench.json and bench.md to `args.out`."""
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    config = load_config(args.config, quick)
    results: dict = {"machine": machine(), "quick": quick}
    for section in [args.only] if args.only else SECTIONS:
        log.info("bench: %s", section)
        if section == "perceptron":
            epochs = min(args.perceptron_epochs, 3) if quick else args.perceptron_epochs
            results[section] = bench_perceptron(config, args.seed, repeats, epochs)
        elif section == "transformer":
            steps = min(args.transformer_steps, 4) if quick else args.transformer_steps
            compiled = not (quick or args.no_compile)
            results[section] = bench_transformer(config, args.seed, repeats, steps, compiled)
        elif section == "projection":
            rows, n = (200, 2048) if quick else (4000, 16384)
            results[section] = bench_projection(rows, n, args.seed, repeats)
        elif section == "memory":
            steps = 16 if quick else args.memory_steps
            results[section] = bench_memory(config, args.seed, steps, 8 if quick else 32)
        elif section == "paper_scale":
            results[section] = bench_paper_scale(args.seed, 4 if quick else args.paper_chunk)
        elif section == "data_parallel":
            steps = min(args.transformer_steps, 4) if quick else args.transformer_steps
            args.out.mkdir(parents=True, exist_ok=True)
            results[section] = bench_data_parallel(config, args.seed, steps, repeats, args.out)
        elif section == "online":  # an online policy's run (pipeline/policy/online.py)
            from pipeline.policy.online import bench_online

            builders = {"perceptron": perceptron_run, "transformer": transformer_run}
            results[section] = {
                kind: bench_online(build(run_settings(config, kind), args.seed), args.seed, repeats)
                for kind, build in builders.items()
            }

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench.json"
    if args.only and path.exists():  # keep the other parts of an earlier full run
        results = {**json.loads(path.read_text()), **results}
    path.write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "bench.md").write_text(markdown(results))
    log.info("wrote %s\n%s", path, markdown(results))
    return results


def main(argv: list[str] | None = None, log_path: str | None = None) -> dict:
    """The command line; set up as a pipeline job is (threads, deterministic algorithms, log)."""
    args = parse_args(argv)
    with job(log_path, args.threads or torch.get_num_threads()):
        return run_bench(args)


if __name__ == "__main__":
    main()
