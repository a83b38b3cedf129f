"""Device check, run before committing GPU hours: `snakemake --cores all device_check`.

On the configured device (`device`, `dtype`) it

(a) runs the smoke preset's Perceptron and Transformer through the engine — T training steps,
    one policy gradient J, ∂J/∂γ with the step and projection after it, one evaluation (the
    desired, test and training loss curves, the per-example losses and contributions CT) — and
    compares every number with a float64 CPU reference computed here from the same data, θ_0
    and policy γ, failing above `device_check.tolerance`;
(b) times one training step, one VJP and one simplex projection at the paper preset's shapes,
    counts their FLOPs (FlopCounterMode) and measures peak memory, and projects from them the
    time and memory of one policy epoch of the paper preset and of its whole policy optimisation.

Data: the Perceptron's own generator; random token sequences for the Transformer (numbers and
times depend on the shapes, not on the text), so the check needs neither the stories nor the hub.

**Difference.** For each quantity x (a vector or matrix) against its reference r:
max|x − r| / max|r|, the error relative to the quantity's scale. An entry-wise relative error
would be meaningless for entries that cross zero (∂J/∂γ, CT), whose float32 values are
dominated by round-off of their larger neighbours.

**Tolerance** (`device_check.tolerance`, default 1e-4). float32 rounds at ε = 6e-8; T steps
of gradient descent and the T vector-Jacobian products of the adjoint carry that error forward,
and the Transformer's sums run over sequences × vocabulary. Measured with `dtype: float32` on
this repository's CPU: at most 4e-7 over every quantity of both models (README "Before a GPU
run"), so 1e-4 leaves a margin of 250×. A GPU in float32 sums in another order (and some of its
reductions, the embedding's backward among them, in no fixed order) at the same precision: its
differences should be of the same size (expected, not measured: no GPU here). What the check
is for lands above it: matrix products in TF32 (inputs rounded to 11 bits, ~5e-4 each) or
bfloat16 (~4e-3), a kernel that computes something else, a chunk of a sum lost (1e-2 and more).
With `dtype: float64` on a CPU both computations are the same and every difference is 0.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

# From the bench (pipeline/bench/): the cost model and its CPU runs
from pipeline.bench.cost import (
    GPU_ASSUMED_TFLOPS,  # the throughput the bench assumes for a GPU, shown beside the measured
    MB,
    data_parallel_estimate,  # memory of one policy epoch per process (θ checkpoints, γ, chunk)
    policy_step_flops,  # FLOPs of one policy step from per-example gradient and VJP FLOPs
    recomputed_fraction,  # the share of steps whose gradient the adjoint recomputes
)
from pipeline.bench.timing import (
    _rss_mb,  # VmRSS / VmHWM (peak) of this process, MB
    bench_run,  # the run of the settings on the CPU: the Perceptron's generator, random tokens
)
from pipeline.config import merged, run_settings
from pipeline.data.synthetic import policy_after_step  # a policy plus a gradient step
from pipeline.experiment import Run, build_model, initial_parameters
from pipeline.models.base import Batch, batch_slice
from pipeline.policy.adjoint import sqrt_checkpointing
from pipeline.policy.optimize import epoch_gradient, policy_step_size
from pipeline.policy.simplex import project_to_simplex
from pipeline.runtime import job, resolve_device, resolve_dtype, rule_log
from pipeline.training.descent import TrainingDiverged, descent_step
from pipeline.training.evaluate import dump_steps, evaluate_policy

log = logging.getLogger("pipeline.device_check")
ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "workflow" / "presets"
CPU = torch.device("cpu")
#: Timed repeats and paper-shape sequences when `device_check.repeats` / `.sequences` are 0:
#: on a CPU a handful (CI runs the check in seconds), on a GPU one chunk of the paper preset.
AUTO_REPEATS = {"cpu": 1, "cuda": 3}
CPU_SEQUENCES = 4
#: Policy rows projected on a CPU (the paper preset's T rows on a GPU); the time scales by T/rows.
CPU_PROJECTION_ROWS = 64
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


class DeviceCheckFailed(RuntimeError):
    """A number computed on the device differs from the float64 CPU reference beyond tolerance."""


# -- settings ------------------------------------------------------------------------------------
def preset_settings(config: dict, preset: str, kind: str) -> dict:
    """The settings of run `kind` with `workflow/presets/<preset>.yaml` merged onto `config`."""
    overlay = yaml.safe_load((PRESETS / f"{preset}.yaml").read_text())
    return run_settings(merged(config, overlay), kind)


def base_run(settings: dict, seed: int) -> Run:
    """The run's data and model on the CPU in float32 (the bench's generators)."""
    return bench_run(settings, seed)


def on_device(run: Run, device: torch.device, dtype: torch.dtype) -> Run:
    """The same run (data, model) on `device`, its floating-point data in `dtype`."""

    def moved(batch: Batch) -> Batch:
        return {
            k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
            for k, v in batch.items()
        }

    model = build_model(run.settings, device)
    splits = [model.prepare(moved(b)) for b in (run.train, run.desired, run.test)]
    return Run(run.settings, model, *splits, device, dtype)


# -- (a) the numbers against a float64 CPU reference ----------------------------------------------
def check_policy(steps: int, n: int, seed: int) -> Tensor:
    """γ (T × N, float64) on the simplex with exact zeros and unequal weights: a policy as the
    optimiser makes them, so that every per-example weight matters (the conventional 1/N would
    not test the weighting)."""
    return project_to_simplex(policy_after_step(steps, n, seed, torch.float64))


def engine_quantities(run: Run, seed: int, policy: Tensor) -> dict[str, Tensor]:
    """Every number of the check, computed on the run's device and dtype, as float64 CPU tensors:
    θ_T after T training steps under γ; J, ∂J/∂γ and the policy after one projected step; the
    evaluation's loss curves and its per-example losses and CT."""
    theta0 = initial_parameters(run, seed)
    gamma = policy.to(device=run.device, dtype=run.dtype)
    out: dict[str, Tensor] = {}
    theta = theta0
    for t in range(run.steps):
        theta = descent_step(run.model, theta, run.train, gamma[t], run.eta)[0]
    out["training: θ_T"] = theta
    gradient = epoch_gradient(run, theta0, gamma)
    # float64: torch.as_tensor of a Python float is float32, which rounds the reference's J
    out["policy gradient: J"] = torch.as_tensor(gradient.objective, dtype=torch.float64)
    out["policy gradient: ∂J/∂γ"] = gradient.grad
    step = policy_step_size(run.settings["policy"], 0, run.steps)
    out["policy step: projected γ"] = project_to_simplex(gamma - step * gradient.grad)
    evaluate = run.settings["evaluate"]
    dumped = dump_steps(run.steps, evaluate["dump_every"], evaluate["dump_dense_until"])
    steps, examples = evaluate_policy(run, theta0, gamma, dumped)
    for column in ("desired_loss", "test_loss", "train_loss"):
        out[f"evaluation: {column.replace('_', ' ')}"] = torch.as_tensor(steps[column].to_numpy())
    out["evaluation: example loss"] = torch.tensor(examples.column("loss").to_numpy())
    out["evaluation: contribution CT"] = torch.tensor(examples.column("contribution").to_numpy())
    return {name: value.detach().to(CPU, torch.float64) for name, value in out.items()}


def relative_difference(value: Tensor, reference: Tensor) -> float:
    """max|x − r| / max|r| (max|x − r| when r = 0; NaN if x has a NaN): see the module's
    docstring."""
    scale = float(reference.abs().max())
    error = float((value - reference).abs().max())
    return error / scale if scale > 0 else error


def compare_with_reference(
    config: dict, device: torch.device, dtype: torch.dtype, tolerance: float
) -> dict:
    """(a) for both models: the largest relative difference of every quantity on the device
    from the float64 CPU reference, and whether all are within `tolerance`."""
    seed = config["seed"]
    models = {}
    for kind in ("perceptron", "transformer"):
        settings = preset_settings(config, "smoke", kind)
        base = base_run(settings, seed)
        policy = check_policy(base.steps, base.n_train, seed)
        start = time.perf_counter()
        reference = engine_quantities(on_device(base, CPU, torch.float64), seed, policy)
        middle = time.perf_counter()
        try:
            checked = engine_quantities(on_device(base, device, dtype), seed, policy)
        except TrainingDiverged as err:  # the reference trained: the device computes garbage
            log.error("%s on %s: %s", kind, device, err)
            checked = {name: torch.full_like(value, math.nan) for name, value in reference.items()}
        seconds = {"reference": middle - start, "device": time.perf_counter() - middle}
        differences = {
            name: relative_difference(checked[name], reference[name]) for name in reference
        }
        models[kind] = {
            "sizes": {
                "n_train": base.n_train,
                "steps": base.steps,
                "params": int(initial_parameters(base, seed).numel()),
            },
            "max_relative_difference": differences,
            "seconds": seconds,
        }
    largest = max(  # NaN, if any
        (d for m in models.values() for d in m["max_relative_difference"].values()),
        key=lambda d: math.inf if math.isnan(d) else d,
    )
    failed = [
        f"{kind} {name}: {difference:.3g}"
        for kind, m in models.items()
        for name, difference in m["max_relative_difference"].items()
        if not difference <= tolerance  # NaN fails too
    ]
    return {
        "tolerance": tolerance,
        "largest_relative_difference": largest,
        "passed": not failed,
        "failed": failed,
        "models": models,
    }


# -- (b) the paper preset's shapes: time, FLOPs and memory on the device ---------------------------
def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def return_freed_memory() -> None:
    """Make glibc hand every large freed block back to the OS (as the bench's
    MALLOC_MMAP_THRESHOLD_ does for its probes), so that the peak RSS of an operation counts
    its activations rather than heap kept from earlier ones. No-op without glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 65536)


def peak_growth_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory growth of one call: max_memory_allocated on CUDA, peak RSS (VmHWM) on a CPU."""
    _synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        fn()
        _synchronize(device)
        return max(0.0, (torch.cuda.max_memory_allocated(device) - baseline) / 2**20)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the RSS
    baseline = _rss_mb("VmRSS")
    fn()
    return max(0.0, _rss_mb("VmHWM") - baseline)


def measure(fn: Callable[[], object], device: torch.device, repeats: int) -> dict:
    """FLOPs (FlopCounterMode, on a first call), the peak memory growth of one call after a
    warm-up, and the median time of `repeats`."""
    with FlopCounterMode(display=False) as counter:
        fn()
    fn()  # a warm-up outside the counter, whose dispatch differs
    peak_mb = peak_growth_mb(fn, device)
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return {
        "flops": counter.get_total_flops(),
        "seconds": statistics.median(times),
        "peak_growth_mb": peak_mb,
    }


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
        peak["process_peak_rss_mb"] = _rss_mb("VmHWM")
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


# -- the whole check, its report and the job ---------------------------------------------------
def device_check(config: dict) -> dict:
    """(a) and (b) on the configured device: the result that the JSON and Markdown report."""
    device, dtype = resolve_device(config["device"]), resolve_dtype(config["dtype"])
    check = config["device_check"]
    start = time.perf_counter()
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "dtype": config["dtype"],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the smoke sizes' operations are too small to share among threads
    try:
        result["precision"] = compare_with_reference(config, device, dtype, check["tolerance"])
    finally:
        torch.set_num_threads(threads)
    result["paper"] = time_paper_shapes(config, device, dtype, check["sequences"], check["repeats"])
    result["passed"] = result["precision"]["passed"]
    result["seconds"] = time.perf_counter() - start
    return result


def _hours(seconds: float) -> str:
    """'12 min', '4.6 h', '46,694 h'."""
    hours = seconds / 3600
    if hours >= 100:
        return f"{hours:,.0f} h"
    return f"{hours:.1f} h" if hours >= 1 else f"{seconds / 60:.1f} min"


def markdown(result: dict) -> str:
    """The report: differences against the tolerance, then the paper preset's projection."""
    precision, paper = result["precision"], result["paper"]
    verdict = "passed" if result["passed"] else "FAILED"
    lines = [
        f"# Device check: {result['device']} ({result['device_name']}), {result['dtype']}: "
        f"{verdict}",
        "",
        f"Largest relative difference from the float64 CPU reference: "
        f"{precision['largest_relative_difference']:.2e} (tolerance "
        f"{precision['tolerance']:.0e}, `device_check.tolerance`). Per quantity, "
        "max|x − r| / max|r|:",
        "",
        "| model | quantity | max relative difference | within tolerance |",
        "| --- | --- | --- | --- |",
    ]
    for kind, m in precision["models"].items():
        for name, difference in m["max_relative_difference"].items():
            ok = "yes" if difference <= precision["tolerance"] else "**no**"
            lines.append(f"| {kind} | {name} | {difference:.2e} | {ok} |")
    size, measured, cost = paper["sizes"], paper["measured"], paper["projected"]
    step, vjp, proj = measured["training_step"], measured["vjp"], measured["projection"]
    tf = cost["throughput_tflops"]
    lines += [
        "",
        f"Paper preset's Transformer (|θ| = {size['params']:,}, N = {size['n_train']}, "
        f"T = {size['steps']}, V = {size['vocab_size']}, {size['seq_len']} tokens), measured on "
        f"this device over {paper['sequences']} sequences (median of {paper['repeats']}):",
        "",
        "| operation | time | FLOPs | throughput | peak memory growth |",
        "| --- | --- | --- | --- | --- |",
        f"| training step | {step['seconds']:.3g} s | {step['flops'] / 1e9:.3g} G | "
        f"{tf['step']:.3g} TFLOP/s | {step['peak_growth_mb']:.0f} MB |",
        f"| VJP of the training gradient | {vjp['seconds']:.3g} s | {vjp['flops'] / 1e9:.3g} G | "
        f"{tf['vjp']:.3g} TFLOP/s | {vjp['peak_growth_mb']:.0f} MB |",
        f"| projection of {proj['rows']} × {size['n_train']} | {proj['seconds']:.3g} s | – | – | "
        f"{proj['peak_growth_mb']:.0f} MB |",
        "",
        f"Projected from these: one policy epoch {cost['epoch_flops'] / 1e15:.0f} PFLOP, "
        f"**{_hours(cost['epoch_seconds'])}**; the policy optimisation ({cost['epochs']} epochs) "
        f"**{_hours(cost['run_seconds'])}** (evaluations and the sweeps' runs not included); "
        f"memory **{cost['memory_gb']:.1f} GB** (θ checkpoints every k = "
        f"{cost['checkpoint_every']} steps, γ and ∂J/∂γ, the activations of a chunk of "
        f"{cost['chunk_size']}; {cost['memory_gb_at_saves']:.1f} GB while saving a policy). "
        f"At the bench's assumed {cost['bench_assumed_tflops']:g} TFLOP/s an epoch would take "
        f"{_hours(cost['bench_assumed_epoch_seconds'])}.",
        "",
        f"torch {result['torch']}; the comparison on 1 thread, the timing on "
        f"{result['threads']}; the check took "
        f"{result['seconds']:.1f} s.",
    ]
    return "\n".join(lines) + "\n"


def failure_message(result: dict) -> str:
    precision = result["precision"]
    return (
        f"device check failed on {result['device']} ({result['dtype']}): "
        f"{len(precision['failed'])} quantities differ from the float64 CPU reference by more "
        f"than device_check.tolerance = {precision['tolerance']:g}: "
        + "; ".join(precision["failed"])
        + ". The device computes something else than the CPU: check the CUDA/PyTorch install "
        "(and that TF32 or reduced precision is off); the whole table is in the log"
    )


def write_report(result: dict, json_path: str | Path, md_path: str | Path) -> None:
    Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    Path(md_path).write_text(markdown(result))


def device_check_job(smk) -> None:
    """`rule device_check`: run the check, log and write the report, fail above tolerance."""
    with job(rule_log(smk), smk.threads):
        params = smk.params
        config = {"device": params.device, "dtype": params.dtype, "device_check": params.check}
        config["seed"] = params.seed
        result = device_check({**config, **params.experiments})
        write_report(result, smk.output.json, smk.output.md)
        log.info("device check\n%s", markdown(result))
        if not result["passed"]:
            raise DeviceCheckFailed(failure_message(result))
