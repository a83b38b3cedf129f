"""The bench (pipeline/bench/): its cost model against what the engine actually computes and
sends, and `python -m pipeline.bench --quick` against bounds a broken measurement would break."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import pipeline.policy.adjoint as adjoint
from pipeline.bench import cost
from pipeline.bench.cli import load_config
from pipeline.config import run_settings
from pipeline.data.synthetic import random_token_splits
from pipeline.experiment import Run, build_model
from pipeline.policy.adjoint import policy_gradient
from pipeline.policy.flops import count_flops
from pipeline.policy.optimize import conventional_policy
from tests.conftest import ROOT

STEPS, N, K = 16, 8, 4


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny() -> tuple[Run, torch.Tensor, torch.Tensor]:
    """A one-layer Transformer on 8 random sequences, T = 16, its θ_0 and conventional policy."""
    settings = run_settings(load_config(ROOT / "config.yaml", "smoke"), "transformer")
    settings["train"]["steps"] = STEPS
    settings["data"].update(n_train=N, n_desired=K, n_test=K, seq_len=8, vocab_size=32)
    settings["model"].update(n_embd=8, n_head=2)
    splits = random_token_splits(settings["data"], 0)
    cpu = torch.device("cpu")
    model = build_model(settings, cpu)
    train, desired, test = (splits[s] for s in ("train", "desired", "test"))
    run = Run(settings, model, train, desired, test, cpu, torch.float32)
    theta0 = model.init_params(torch.Generator().manual_seed(0))
    return run, theta0, conventional_policy(run)


@pytest.mark.parametrize("k", [1, 4])
def test_epoch_flops_match_the_counted_adjoint(tiny, k):
    """The cost model's epoch FLOPs, from one gradient's and one VJP's count, against
    FlopCounterMode over a whole `policy_gradient` (counting recomputation as every step of
    a segment would be 5 % off at k = 4; the only uncounted term is the loss at θ_0)."""
    run, theta0, policy = tiny
    weights = policy[0]
    grad = count_flops(lambda: run.model.weighted_grad(theta0, run.train, weights))
    vjp = count_flops(lambda: run.model.weighted_grad_vjp(theta0, run.train, weights, theta0))
    counted = count_flops(
        lambda: policy_gradient(run.model, theta0, run.train, run.desired, policy, run.eta, k)
    )
    modelled = cost.policy_epoch_flops(grad / N, vjp / N, N, K, STEPS, k)
    assert modelled == pytest.approx(counted, rel=0.01)
    assert 2.5 < vjp / grad < 3.5  # a VJP of the gradient: about three gradients


@pytest.mark.parametrize("k", [1, 4])
def test_allreduce_volume_and_stored_thetas_are_the_engines_buffers(tiny, k, monkeypatch):
    """The bytes of every |θ|-sized buffer the adjoint hands to an all-reduce, and the θ-sized
    rows it allocates, against `allreduce_bytes_per_step` and `stored_theta_vectors`."""
    run, theta0, policy = tiny
    params = theta0.numel()
    reduced, allocated = [], []

    def recorder(reduce):
        def wrapped(x, *args):
            if x.numel() >= params:  # skip the scalars and loss vectors
                reduced.append(x.numel() * x.element_size())
            return reduce(x, *args)

        return wrapped

    monkeypatch.setattr(adjoint, "all_reduce_sum", recorder(adjoint.all_reduce_sum))
    monkeypatch.setattr(adjoint, "all_reduce_mean", recorder(adjoint.all_reduce_mean))
    new_empty = torch.Tensor.new_empty

    def recording_new_empty(self, *size, **kwargs):
        shape = size[0] if len(size) == 1 and not isinstance(size[0], int) else size
        if len(shape) == 2 and shape[1] == params:
            allocated.append(shape[0])
        return new_empty(self, *size, **kwargs)

    monkeypatch.setattr(torch.Tensor, "new_empty", recording_new_empty)
    policy_gradient(run.model, theta0, run.train, run.desired, policy, run.eta, k)
    assert sum(reduced) == pytest.approx(STEPS * cost.allreduce_bytes_per_step(params, k))
    assert sum(allocated) == cost.stored_theta_vectors(STEPS, k)


def test_cost_model_takes_measured_throughput():
    """A device check passes its measured TFLOP/s and GB/s: twice the throughput halves the
    compute, a slower link lengthens only the communication."""
    args = (1000, 400, 512, 20, 64, 1e6, 1e15)
    assumed = cost.data_parallel_estimate(*args)["processes"]
    fast = cost.data_parallel_estimate(*args, tflops=2 * cost.GPU_ASSUMED_TFLOPS)["processes"]
    slow = cost.data_parallel_estimate(*args, gbps=lambda p: 1.0)["processes"]
    assert fast["1"]["epoch_hours"] == pytest.approx(assumed["1"]["epoch_hours"] / 2)
    assert slow["1"]["epoch_hours"] == assumed["1"]["epoch_hours"]  # one process sends nothing
    assert slow["8"]["communication_seconds_per_epoch"] == pytest.approx(
        assumed["8"]["communication_seconds_per_epoch"] * cost.NODE_ASSUMED_GBPS
    )


def bench(out, *args: str) -> dict:
    command = [sys.executable, "-m", "pipeline.bench", "--quick", "--threads", "1"]
    result = subprocess.run(
        [*command, "--out", str(out), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "bench.json").read_text())


def test_quick_bench_figures_within_what_the_engine_allows(tmp_path):
    parts = ["perceptron", "transformer", "projection", "memory", "paper_scale", "data_parallel"]
    parts += ["online"]
    results = bench(tmp_path, "--only", *parts)  # contention: the test below
    assert results["machine"]["torch_threads"] == 1  # --threads reached torch

    perceptron = results["perceptron"]
    # An epoch runs T training steps and T VJPs, each at least a step: at least 2 conventional runs.
    assert 2 <= perceptron["epoch_ratio"] < 30
    full = perceptron["full"]  # E epochs of the real loop cannot be much faster than E epochs
    assert full["epochs"] == 4 and full["seconds"] > 0.3 * 4 * perceptron["epoch_seconds"]

    transformer = results["transformer"]
    assert transformer["compiled"] is None  # skipped by --quick: compiling takes minutes
    ops = transformer["eager"]["operations"]
    assert 2.5 < ops["vjp_over_grad_flops"] < 3.5
    assert 2 <= transformer["epoch_ratio"] < 30
    for name in ("grad", "vjp"):  # the per-operator profile behind the ratio
        shares = [e["share"] for e in ops["profile"][name]]
        assert shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-9
    assert "aten::mm" in {e["op"] for e in ops["profile"]["vjp"]}

    projection = results["projection"]  # against the sorting projection in float64
    assert projection["shape"] == [200, 2048]
    assert projection["max_abs_difference_to_sort_float64"] < 1e-6
    assert 0 < projection["support_fraction"] < 1

    memory = results["memory"]
    assert memory["sqrt_checkpointing"]["checkpoint_every"] == 4  # √16

    paper = results["paper_scale"]  # the paper preset merged in, measured on a 4-sequence chunk
    assert paper["sizes"]["n_train"] == 16384 and paper["sizes"]["vocab_size"] == 5000
    assert paper["measured_cpu"]["chunk"] == 4
    assert paper["estimated_gpu"]["checkpoint_every"] == 63  # √4000
    parallel = paper["data_parallel"]["processes"]  # compute-bound: 8 GPUs ≥ 4× faster than one
    assert parallel["1"]["epoch_hours"] > 4 * parallel["8"]["epoch_hours"]
    assert parallel["1"]["sent_gb_per_epoch_per_process"] == 0

    for name, processes, threads in [  # as each process read them back
        ("one_process_two_threads", 1, 2),
        ("two_processes_one_thread", 2, 1),
        ("one_process_one_thread", 1, 1),
    ]:
        case = results["data_parallel"][name]
        assert (case["processes"], case["threads"]) == (processes, threads), name

    table = (tmp_path / "bench.md").read_text()
    assert "Perceptron: epoch / conventional run" in table and "projection of 200 × 2048" in table
    for kind in ("perceptron", "transformer"):  # an online policy's run against a conventional one
        assert f"{kind}: online_greedy run / conventional run" in table
        online = results["online"][kind]  # a conventional run plus one JVP over N per step
        for rule in ("online_greedy", "online_positive", "online_softmax"):
            # wall times of sub-second runs: a loose floor (0.65 seen with a conventional run
            # slowed by the machine)
            assert 0.5 <= online[f"{rule}_per_conventional"] < 20, (kind, rule)

    again = bench(tmp_path, "--only", "projection")  # one part again: the others are kept
    assert again["perceptron"] == perceptron and again["memory"] == memory


def test_contention_runs_each_wait_policy_in_a_fresh_process(tmp_path, monkeypatch):
    """Each layout's process reads back the threads and the wait policy it was started with
    (OpenMP reads the policy once, when torch loads: a process reused across policies would
    time the first policy twice), and the bench.md table has a row per measurement."""
    from pipeline.bench import contention, report

    monkeypatch.setattr(contention, "LAYOUTS", {"2 threads": (1, 2)})
    config = load_config(ROOT / "config.yaml", "smoke")
    workloads = {"perceptron": run_settings(config, "perceptron")}
    workloads["perceptron"]["train"]["steps"] = 20
    result = contention.bench_contention(workloads, {"perceptron": 1}, 0, 1, tmp_path)
    seen = {(r["wait_policy"], r["threads"], r["omp_wait_policy"]) for r in result["rows"]}
    assert seen == {("default", 2, None), ("passive", 2, contention.WAIT_POLICY)}
    assert all(len(r["load_idle"]) == len(r["load_busy"]) == 1 for r in result["rows"])
    table = report.contention_table(result)
    assert sum(line.startswith("| perceptron | 2 threads |") for line in table) == 2
    # `--only contention`: bench.md opens with the contention table, no empty goal table
    machine = {"processor": "x", "cores_available": 2, "torch_threads": 1, "torch": "2"}
    page = report.markdown({"contention": result, "machine": machine})
    assert page.startswith("Contention (median of 1;") and "| quantity |" not in page


def test_an_interrupted_contention_bench_measures_only_the_layouts_missing(tmp_path, monkeypatch):
    """Each finished layout is kept (with its rows in partial.md) as soon as it ends; a second
    run with the same settings measures only what the first did not finish, one with other
    settings measures everything, and a finished bench leaves no partial files."""
    from pipeline.bench import contention

    record = {"idle": [2.0], "busy": [3.0], "load_idle": [0.1], "load_busy": [1.0]}
    measured = {"processes": 1, "threads": 1, "omp_wait_policy": None}
    measured["times"] = {"perceptron": {**record, "competitor_share": [0.9]}}
    calls, armed = [], [True]

    def run_layout(case, processes, threads, scratch):
        calls.append((processes, threads, case["wait_policy"]))
        if len(calls) == 3 and armed[0]:  # the third layout of the first run is interrupted
            raise KeyboardInterrupt
        return measured

    monkeypatch.setattr(contention, "_run_layout", run_layout)
    workloads = {"perceptron": {"train": {"steps": 5}, "data": {"n_train": 8}}}
    with pytest.raises(KeyboardInterrupt):
        contention.bench_contention(workloads, {"perceptron": 1}, 0, 1, tmp_path)
    partial = (tmp_path / "contention" / "partial.md").read_text()
    assert partial.count("| perceptron | 1 thread |") == 2 and "| 1.50 |" in partial

    calls.clear()
    armed[0] = False
    result = contention.bench_contention(workloads, {"perceptron": 1}, 0, 1, tmp_path)
    total = len(contention.LAYOUTS) * len(contention.WAIT_POLICIES)
    assert len(calls) == total - 2 and len(result["rows"]) == total
    assert not (tmp_path / "contention").exists()

    calls.clear()
    contention.bench_contention(workloads, {"perceptron": 1}, 1, 1, tmp_path)
    assert len(calls) == total
