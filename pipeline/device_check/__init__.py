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

**Tolerance** (`device_check.tolerance`, default 1e-4). float32 rounds at ε = 6e-8; T steps of
gradient descent and the T vector-Jacobian products of the adjoint carry that error forward, and
the Transformer's sums run over sequences × vocabulary. Measured with `dtype: float32` on the
project's CPU, every quantity of both models stays below 1e-6 (the table in
docs/measurements.md, "The device check on the CPU"), so 1e-4 leaves a margin of over 100×. A
GPU in float32 sums in another order (and some of its reductions, the embedding's backward among
them, in no fixed order) at the same precision: its differences should be of the same size
(expected; docs/measurements.md logs where the check has run). What the check is for lands above
it: matrix products in TF32 (inputs rounded to 11 bits, ~5e-4 each) or bfloat16 (~4e-3), a
kernel that computes something else, a chunk of a sum lost (1e-2 and more).
With `dtype: float64` on a CPU both computations are the same and every difference is 0.

Modules: `runs` (the presets' runs on a device), `precision` (a), `projection` (b, with the
bench's measuring code and cost model); here the whole check, its report and the job.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from pipeline.device_check.precision import compare_with_reference
from pipeline.device_check.projection import time_paper_shapes
from pipeline.runtime import job, resolve_device, resolve_dtype, rule_log

log = logging.getLogger("pipeline.device_check")


class DeviceCheckFailed(RuntimeError):
    """A number computed on the device differs from the float64 CPU reference beyond tolerance."""


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
