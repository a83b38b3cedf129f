"""Bench part 5 `data_parallel` (pipeline/bench/__init__.py): a policy epoch of the Transformer
in 2 processes × 1 thread (gloo, started by pipeline.launch as a training job's processes are)
against 1 process × 2 threads, on the same cores, and 1 process × 1 thread for scale.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pipeline.bench import DATA_PARALLEL_CASES
from pipeline.bench.measure import bench_run, initial, seconds, split_sizes
from pipeline.bench.timing import policy_epoch
from pipeline.config import run_settings, with_steps
from pipeline.distributed import all_reduce_sum, barrier, is_main, world_size
from pipeline.launch import launch
from pipeline.policy.optimize import conventional_policy


# -- 5. data-parallel processes against threads, measured -------------------------------------
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
                entry = "pipeline.bench.data_parallel:data_parallel_epochs"
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
        "sizes": {**split_sizes(whole), "steps": steps, "params": whole.model.num_params},
        **results,
        "speedup_of_processes": one / two,
        "repeats": repeats,
    }
