"""`python -m pipeline.bench --quick`: every figure of bench.json, and `--only` keeps the others."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from tests.conftest import ROOT


def bench(out, *args: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "pipeline.bench",
        "--quick",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    result = subprocess.run(
        [*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "bench.json").read_text())


def positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_quick_bench_writes_every_figure(tmp_path):
    results = bench(tmp_path)
    assert results["quick"] is True
    machine = results["machine"]
    assert machine["torch_threads"] == 1 and machine["cpu_count"] >= 1 and machine["torch"]

    perceptron = results["perceptron"]
    for key in ("conventional_run_seconds", "epoch_seconds", "projection_seconds"):
        assert positive(perceptron[key]), key
    ratio = perceptron["epoch_seconds"] / perceptron["conventional_run_seconds"]
    assert math.isclose(perceptron["epoch_ratio"], ratio)
    assert positive(perceptron["full"]["seconds"]) and "epochs" in perceptron["full"]["measured"]

    transformer = results["transformer"]
    assert transformer["compiled"] is None  # skipped by --quick: compiling takes minutes
    eager = transformer["eager"]
    assert transformer["epoch_ratio"] == eager["epoch_ratio"] and positive(eager["epoch_ratio"])
    for key in ("forward_seconds", "grad_seconds", "vjp_seconds", "vjp_over_grad"):
        assert positive(eager["operations"][key]), key
    for name in ("grad", "vjp"):  # the per-operator profile behind the ratio
        profiled = eager["operations"]["profile"][name]
        assert profiled and all(e["op"].startswith("aten::") for e in profiled)
        shares = [e["share"] for e in profiled]
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    assert "aten::mm" in {e["op"] for e in eager["operations"]["profile"]["vjp"]}
    ops = eager["operations"]  # a VJP of the gradient costs about three gradients in FLOPs
    assert 2.5 < ops["vjp_over_grad_flops"] < 3.5
    assert ops["epoch_ratio_flop_floor"] > 1 + ops["vjp_over_grad_flops"]

    projection = results["projection"]
    assert positive(projection["seconds"]) and positive(projection["sort_based_seconds"])
    assert projection["max_abs_difference_to_sort_float64"] < 1e-6
    assert 0 < projection["support_fraction"] < 1

    memory = results["memory"]
    for key in ("theta_times_T_mb", "theta_times_sqrt_T_mb"):
        assert positive(memory[key]), key
    assert memory["sqrt_checkpointing"]["checkpoint_every"] == 4  # √16
    for name in ("every_step", "sqrt_checkpointing"):
        assert memory[name]["peak_growth_mb"] >= 0 and positive(memory[name]["seconds"])

    paper = results["paper_scale"]  # the paper preset's shape, measured on a 4-sequence chunk
    assert paper["sizes"]["n_train"] == 16384 and paper["sizes"]["vocab_size"] == 5000
    cpu = paper["measured_cpu"]
    assert cpu["chunk"] == 4 and cpu["vjp_flops"] > 2 * cpu["grad_flops"] > 0
    assert positive(cpu["grad_seconds"]) and positive(cpu["vjp_seconds"])
    gpu = paper["estimated_gpu"]
    assert gpu["checkpoint_every"] == 63  # √4000
    assert gpu["every_theta_stored_gb"] > 10 * gpu["stored_thetas_gb"] > 0
    assert positive(gpu["epoch_hours"]) and positive(gpu["activations_gb_per_chunk"])
    parallel = paper["data_parallel"]["processes"]  # P data-parallel processes, computed
    one, eight = parallel["1"], parallel["8"]
    assert one["sent_mb_per_step_per_process"] == 0 and one["sent_gb_per_epoch_per_process"] == 0
    theta_mb = paper["measured_cpu"]["params"] * 4 / 2**20  # 3 + (k−1)/k vectors per step
    assert math.isclose(eight["allreduce_mb_per_step"], (3 + 62 / 63) * theta_mb)
    assert math.isclose(eight["sent_mb_per_step_per_process"], 2 * 7 / 8 * (3 + 62 / 63) * theta_mb)
    assert one["memory_gb_per_process"] > eight["memory_gb_per_process"] > gpu["stored_thetas_gb"]
    assert one["epoch_hours"] > 4 * eight["epoch_hours"] > 0

    measured = results["data_parallel"]  # 2 processes × 1 thread against 1 × 2, here
    for name, processes, threads in [
        ("one_process_two_threads", 1, 2),
        ("two_processes_one_thread", 2, 1),
        ("one_process_one_thread", 1, 1),
    ]:
        case = measured[name]
        assert case["processes"] == processes and case["threads"] == threads, name
        assert positive(case["epoch_seconds"]) and case["load_average"] >= 0, name
    assert positive(measured["two_processes_one_thread"]["allreduce_ms"])

    table = (tmp_path / "bench.md").read_text()
    assert "Perceptron: epoch / conventional run" in table and "projection of 200 × 2048" in table
    for kind in ("perceptron", "transformer"):  # an online policy's run against a conventional one
        assert f"{kind}: online_greedy run / conventional run" in table
        assert set(results["online"][kind]) >= {"conventional_s", "online_softmax_per_conventional"}

    again = bench(tmp_path, "--only", "projection")  # one part again: the others are kept
    assert again["perceptron"] == perceptron and again["memory"] == memory
    assert again["projection"]["shape"] == [200, 2048]
