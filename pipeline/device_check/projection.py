"""Part (b) of the device check (pipeline/device_check/__init__.py): one training step, one
VJP and one simplex projection at the paper preset's shapes on the configured device, measured
with the bench's code (pipeline/bench/measure.py: time, FLOPs, peak memory), and the time and
memory of one policy epoch of the paper preset and of its whole policy optimisation projected
from them with the bench's cost model (pipeline/bench/cost.py).
"""

from __future__ import annotations

import torch

from pipeline.bench.cost import (
    GPU_ASSUMED_TFLOPS,  # the throughput the bench assumes for a GPU, shown beside the measured
    MB,
    data_parallel_estimate,  # memory of one policy epoch per process (θ checkpoints, γ, chunk)
    policy_step_flops,  # FLOPs of one policy step from per-example gradient and VJP FLOPs
)
from pipeline.bench.measure import measure, peak_growth_mb, return_freed_memory
from pipeline.config import merged
from pipeline.data.synthetic import policy_after_step  # a policy plus a gradient step
from pipeline.device_check.runs import base_run, on_device, preset_settings
from pipeline.experiment import initial_parameters
from pipeline.models.base import batch_slice
from pipeline.policy.adjoint import sqrt_checkpointing
from pipeline.policy.flops import recomputed_fraction  # the share of steps recomputed
from pipeline.policy.simplex import project_to_simplex
from pipeline.runtime import rss_mb
from pipeline.training.descent import descent_step

#: Timed repeats and paper-shape sequences when `device_check.repeats` / `.sequences` are 0:
#: on a CPU a handful (CI runs the check in seconds), on a GPU one chunk of the paper preset.
AUTO_REPEATS = {"cpu": 1, "cuda": 3}
CPU_SEQUENCES = 4
#: Policy rows projected on a CPU (the paper preset's T rows on a GPU); the time scales by T/rows.
CPU_PROJECTION_ROWS = 64


# -- (b) the paper preset's shapes: time, FLOPs and memory on the device ---------------------------
def chunk_activations_mb(measured: dict[int, float], chunk: int) -> float:
    """Peak memory of a VJP over `chunk` sequences, from its peaks over n/2 and n sequences:
    the measured one when n = chunk (a GPU), else extrapolated along the line through both (a
    CPU's few sequences: a plain ratio would spread the |θ|-sized buffers over them)."""
    (small, low), (n, high) = sorted(measured.items())
    if n == chunk or small == n:
        return high * chunk / n
    return high + (high - low) / (n - small) * (chunk - n)


def paper_cost(
    settings: dict,
    sequences: int,
    step: dict,
    vjp: dict,
    projection: dict,
    params: int,
    activations_mb: float,
) -> dict:
    """One policy epoch and the whole policy optimisation of the paper preset on this device:
    FLOPs per sequence of the timed training step and VJP, scaled to the epoch's sequences
    (per step: the training gradient over N, its recomputation when θ is checkpointed every
    k > 1 steps, the desired gradient over K, one VJP over N; the bench's count), each at its
    measured throughput, plus one projection of the T × N policy; memory from the bench's
    model with `activations_mb`, the VJP's peak over one chunk of `train.chunk_size`."""
    data, train, policy = settings["data"], settings["train"], settings["policy"]
    steps, n_train, n_desired = train["steps"], data["n_train"], data["n_desired"]
    k = policy["checkpoint_every"] or sqrt_checkpointing(steps)
    measured = {"step": step, "vjp": vjp}
    per_sequence = {op: m["flops"] / sequences for op, m in measured.items()}
    # the bench's count of a policy step, split by operation so each gets its own throughput
    flops = {
        "step": steps * policy_step_flops(per_sequence["step"], 0.0, n_train, n_desired, k),
        "vjp": steps * policy_step_flops(0.0, per_sequence["vjp"], n_train, n_desired, k),
    }
    throughput = {op: m["flops"] / m["seconds"] for op, m in measured.items()}
    projection_seconds = projection["seconds"] * steps / projection["rows"]
    epoch_seconds = sum(flops[op] / throughput[op] for op in flops) + projection_seconds
    epoch_flops = sum(flops.values())
    chunk = train["chunk_size"] or n_train
    memory = data_parallel_estimate(
        params, steps, n_train, k, chunk, activations_mb * MB / chunk, epoch_flops, processes=(1,)
    )["processes"]["1"]
    epochs = policy["epochs"]
    return {
        "checkpoint_every": k,
        "sequences_per_step": {
            "step": (1 + recomputed_fraction(k)) * n_train + n_desired,
            "vjp": n_train,
        },
        "epoch_flops": epoch_flops,
        "epoch_flops_by_operation": flops,
        "throughput_tflops": {op: value / 1e12 for op, value in throughput.items()},
        "projection_seconds_per_epoch": projection_seconds,
        "epoch_seconds": epoch_seconds,
        "epochs": epochs,
        "run_seconds": epochs * epoch_seconds,
        "bench_assumed_tflops": GPU_ASSUMED_TFLOPS,
        "bench_assumed_epoch_seconds": epoch_flops / (GPU_ASSUMED_TFLOPS * 1e12)
        + projection_seconds,
        "chunk_size": chunk,
        "activations_gb_per_chunk": activations_mb / 1024,
        "memory_gb": memory["memory_gb_per_process"],
        "memory_gb_at_saves": memory["memory_gb_first_process_at_saves"],
    }


def time_paper_shapes(
    config: dict, device: torch.device, dtype: torch.dtype, sequences: int, repeats: int
) -> dict:
    """(b): one training step and one VJP over `sequences` paper-shape sequences and one
    projection of paper-width policy rows, on the device, and the paper run they project to."""
    if device.type == "cpu":
        return_freed_memory()  # before anything is allocated, so that peaks count all
    settings = preset_settings(config, "paper", "transformer")
    seed = config["seed"]
    data, train = settings["data"], settings["train"]
    chunk = train["chunk_size"] or data["n_train"]
    sequences = sequences or (CPU_SEQUENCES if device.type == "cpu" else chunk)
    repeats = repeats or AUTO_REPEATS.get(device.type, 3)
    small = merged(
        settings,
        {
            "data": {"n_train": sequences, "n_desired": 1, "n_test": 1},
            "train": {"chunk_size": sequences},
        },
    )
    run = on_device(base_run(small, seed), device, dtype)
    theta = initial_parameters(run, seed)
    weights = torch.full((sequences,), 1.0 / sequences, dtype=dtype, device=device)
    generator = torch.Generator().manual_seed(seed + 1)
    cotangent = (1e-2 * torch.randn(theta.shape, generator=generator)).to(device, dtype)
    step = measure(
        lambda: descent_step(run.model, theta, run.train, weights, run.eta), device, repeats
    )
    vjp = measure(
        lambda: run.model.weighted_grad_vjp(theta, run.train, weights, cotangent), device, repeats
    )
    half = max(1, sequences // 2)
    vjp_peaks = {
        sequences: vjp["peak_growth_mb"],
        half: peak_growth_mb(
            lambda: run.model.weighted_grad_vjp(
                theta, batch_slice(run.train, 0, half), weights[:half], cotangent
            ),
            device,
        ),
    }
    rows = train["steps"] if device.type != "cpu" else min(CPU_PROJECTION_ROWS, train["steps"])
    v = policy_after_step(rows, data["n_train"], seed, dtype).to(device)
    projection = {**measure(lambda: project_to_simplex(v), device, repeats), "rows": rows}
    projection.pop("flops")  # no matrix products: FlopCounterMode counts none
    peak = {
        "step": step["peak_growth_mb"],
        "vjp": vjp["peak_growth_mb"],
        f"vjp_{half}": vjp_peaks[half],
    }
    if device.type == "cuda":
        peak["process_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak["process_peak_rss_mb"] = rss_mb("VmHWM")
    params = theta.numel()
    return {
        "sizes": {
            "params": params,
            "n_train": data["n_train"],
            "n_desired": data["n_desired"],
            "steps": train["steps"],
            "vocab_size": data["vocab_size"],
            "seq_len": data["seq_len"],
            **settings["model"],
        },
        "sequences": sequences,
        "repeats": repeats,
        "measured": {
            "training_step": step,
            "vjp": vjp,
            "projection": projection,
            "peak_memory_mb": peak,
        },
        "projected": paper_cost(
            settings,
            sequences,
            step,
            vjp,
            projection,
            params,
            chunk_activations_mb(vjp_peaks, chunk),
        ),
    }
