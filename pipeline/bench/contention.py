"""Bench part `contention`: training jobs on an idle machine and beside one CPU-bound competitor.

For each layout — 1 thread, 2 threads, 2 processes × 1 thread (gloo, started by
pipeline.launch as a training job's processes are) — and each OpenMP wait policy (libgomp's
default, which spins at barriers before sleeping, and the one the jobs set, `WAIT_POLICY`), one
fresh process (or P, through pipeline.launch) sets the thread environment before torch loads,
then times E policy epochs of the Perceptron and one of the Transformer, alternately alone and
with a busy loop (`python -c "while True: pass"`, pinned to no core) that it starts before and
kills after each timed busy run. Reports the median of the repeats and busy / idle, with the load
average before each measurement (on a shared machine it explains a lot).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.bench.report import contention_table
from pipeline.launch import launch
from pipeline.runtime import WAIT_POLICY, set_thread_environment, set_torch_threads

log = logging.getLogger("pipeline.bench")

#: Layouts: name → (processes, threads per process), in the table's order.
LAYOUTS = {
    "1 thread": (1, 1),
    "2 threads": (1, 2),
    "2 processes × 1 thread": (2, 1),
}
#: Wait policies: name → OMP_WAIT_POLICY (None: unset, libgomp's default).
WAIT_POLICIES = {"default": None, "passive": WAIT_POLICY}
#: The goal of issue 20: beside one busy process, at most this times the idle time (a fair share
#: of 2 cores is 2×).
GOAL_RATIO = 2.5
BUSY_LOOP = "while True: pass"


def busy_competitor() -> subprocess.Popen:
    """One CPU-bound process that never ends, on whichever core the OS gives it (started, and
    given a moment to reach its loop)."""
    competitor = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    time.sleep(0.2)
    return competitor


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_epochs(spec: dict, workload: str) -> float:
    """Wall seconds of the workload's policy epochs on this process's share (all processes)."""
    # here, not at the top: `__main__` below sets the thread environment before torch loads
    from pipeline.bench import timing
    from pipeline.bench.measure import bench_run, initial
    from pipeline.distributed import barrier
    from pipeline.policy.optimize import conventional_policy

    settings = spec["workloads"][workload]
    run = bench_run(settings, spec["seed"])
    theta0 = initial(run, spec["seed"])
    policy = conventional_policy(run)
    run.model.weighted_grad(theta0, run.train, policy[0])  # the libraries' one-off set-up
    barrier()
    start = time.perf_counter()
    for epoch in range(spec["epochs"][workload]):
        policy, _ = timing.policy_epoch(run, theta0, policy, epoch)
    barrier()
    return time.perf_counter() - start


def measure_layout(spec: dict) -> None:
    """Entry of each process of one layout (`pipeline.launch`, or the one process): every
    workload idle and busy, `spec["repeats"]` times; the first process starts and stops the
    competitor and writes the times to `spec["out"]`."""
    # here, not at the top: `__main__` below sets the thread environment before torch loads
    import torch

    from pipeline.distributed import barrier, is_main, world_size

    keys = ("idle", "busy", "load_idle", "load_busy", "competitor_share")
    times = {workload: {key: [] for key in keys} for workload in spec["workloads"]}
    for _ in range(spec["repeats"]):
        for workload, record in times.items():
            for state in ("idle", "busy"):
                record[f"load_{state}"].append(os.getloadavg()[0])
                competitor = busy_competitor() if state == "busy" and is_main() else None
                try:
                    used = cpu_seconds(competitor.pid) if competitor else 0.0
                    record[state].append(_timed_epochs(spec, workload))
                    if competitor is not None:  # the share of a core the competitor had
                        used = cpu_seconds(competitor.pid) - used
                        record["competitor_share"].append(used / record[state][-1])
                finally:
                    if competitor is not None:
                        competitor.kill()
                        competitor.wait()
                barrier()
    if is_main():
        result = {
            "processes": world_size(),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "times": times,
        }
        Path(spec["out"]).write_text(json.dumps(result))


def _run_layout(spec: dict, processes: int, threads: int, scratch: Path) -> dict:
    """One layout in a fresh process (or P), with the spec's wait policy set before torch."""
    if processes > 1:
        launch(
            "pipeline.bench.contention:measure_layout",
            spec,
            processes,
            threads,
            False,
            [spec["out"]],
            None,
        )
    else:
        path = scratch / "spec.json"
        path.write_text(json.dumps({**spec, "threads": threads}))
        subprocess.run([sys.executable, "-m", "pipeline.bench.contention", str(path)], check=True)
    return json.loads(Path(spec["out"]).read_text())


def _row(workload: str, layout: str, policy_name: str, measured: dict, record: dict) -> dict:
    """One table row: the medians of the repeats and busy / idle."""
    idle, busy = (statistics.median(record[state]) for state in ("idle", "busy"))
    return {
        "workload": workload,
        "layout": layout,
        "wait_policy": policy_name,
        "processes": measured["processes"],
        "threads": measured["threads"],
        "omp_wait_policy": measured["omp_wait_policy"],
        "idle_seconds": idle,
        "busy_seconds": busy,
        "ratio": busy / idle,
        "load_idle": record["load_idle"],
        "load_busy": record["load_busy"],
        "competitor_share": statistics.median(record["competitor_share"]),
    }


def bench_contention(
    workloads: dict[str, dict],
    epochs: dict[str, int],
    seed: int,
    repeats: int,
    out: Path,
) -> dict:
    """Every layout × wait policy (`LAYOUTS`, `WAIT_POLICIES`) on the workloads (run settings,
    each timed over `epochs[name]` policy epochs): medians of `repeats`, busy / idle.

    Each finished layout is kept in `out/contention/` (with the spec it measured) and its rows
    in `out/contention/partial.md` as soon as it ends, so an interrupted bench loses only the
    layout it was in: run again with the same settings, it measures only the layouts missing.
    The directory is removed once every layout is in the result."""
    spec = {"workloads": workloads, "epochs": epochs, "seed": seed, "repeats": repeats}
    spec["device"] = "cpu"
    kept = out / "contention"
    kept.mkdir(parents=True, exist_ok=True)
    sizes = {
        name: {
            "steps": s["train"]["steps"],
            "n_train": s["data"]["n_train"],
            "policy_epochs": epochs[name],
        }
        for name, s in workloads.items()
    }
    result = {"rows": [], "sizes": sizes, "repeats": repeats, "goal_ratio": GOAL_RATIO}
    scratch = Path(tempfile.mkdtemp(dir=out))
    try:
        for layout, (processes, threads) in LAYOUTS.items():
            for policy_name, wait_policy in WAIT_POLICIES.items():
                case = {**spec, "wait_policy": wait_policy}
                path = kept / f"{layout}-{policy_name}.json".replace(" ", "_").replace("×", "x")
                earlier = json.loads(path.read_text()) if path.exists() else None
                if earlier is not None and earlier["spec"] == json.loads(json.dumps(case)):
                    log.info("contention: %s, %s wait kept from %s", layout, policy_name, path)
                    measured = earlier["measured"]
                else:
                    measured = _run_layout(
                        {**case, "out": str(scratch / "out.json")}, processes, threads, scratch
                    )
                    path.write_text(json.dumps({"spec": case, "measured": measured}))
                for workload, record in measured["times"].items():
                    result["rows"].append(_row(workload, layout, policy_name, measured, record))
                (kept / "partial.md").write_text("\n".join(contention_table(result)) + "\n")
    finally:
        for path in scratch.iterdir():
            path.unlink()
        scratch.rmdir()
    shutil.rmtree(kept)
    return result


if __name__ == "__main__":  # one process of a one-process layout: the environment before torch
    layout_spec = json.loads(Path(sys.argv[1]).read_text())
    set_thread_environment(layout_spec["threads"], layout_spec["wait_policy"])
    set_torch_threads(layout_spec["threads"])
    measure_layout(layout_spec)
