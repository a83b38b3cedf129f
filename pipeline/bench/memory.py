"""Bench parts 3 `memory` and 4 `paper_scale` (pipeline/bench/__init__.py): the peak memory of
an adjoint pass storing every θ_t against checkpointing, and the paper preset's Transformer
measured per chunk on this CPU and estimated per epoch on a GPU. Each probe runs in a fresh
process, so that its peak RSS is its own.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from pipeline.bench import cost
from pipeline.bench.measure import CPU, bench_run, initial, timed_peak
from pipeline.config import run_settings, with_steps
from pipeline.policy.adjoint import policy_gradient, sqrt_checkpointing
from pipeline.policy.flops import count_flops
from pipeline.policy.optimize import conventional_policy


# -- 3. memory ----------------------------------------------------------------------------------
def _memory_probe(settings: dict, seed: int, checkpoint_every: int, threads: int) -> dict:
    """Peak RSS growth of one adjoint pass (run in a fresh process, so peaks do not mix)."""
    torch.set_num_threads(threads)
    run = bench_run(settings, seed)
    theta0 = initial(run, seed)
    policy = conventional_policy(run)
    weights = policy[0]
    run.model.weighted_grad_vjp(theta0, run.train, weights, theta0)  # libraries' one-off set-up
    elapsed, peak = timed_peak(
        lambda: policy_gradient(
            run.model,
            theta0,
            run.train,
            run.desired,
            policy,
            run.eta,
            checkpoint_every,
            test=run.test,
        ),
        CPU,
    )
    return {"checkpoint_every": checkpoint_every, "peak_growth_mb": peak, "seconds": elapsed}


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


# -- 4. the paper-scale Transformer: measured per chunk here, estimated per epoch on a GPU ------
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
        result[f"{name}_flops"] = count_flops(fn)
        result[f"{name}_seconds"], result[f"{name}_peak_growth_mb"] = timed_peak(fn, CPU)
    return result


def bench_paper_scale(settings: dict, seed: int, chunk: int) -> dict:
    """The paper preset's Transformer (`settings`, docs/method.md §5): one chunk measured on this
    CPU, and from it the FLOPs, time and memory of one policy epoch on a GPU
    (pipeline/bench/cost.py, at its assumed throughput and bandwidth)."""
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
