"""A training job uses the threads its rule declares, and no more: torch's intra-op and inter-op
threads, and the OpenMP/BLAS environment (thread counts, OMP_WAIT_POLICY) that the libraries
read when they load — in one process and in each of the processes of a data-parallel job.

Each case runs in a fresh process whose environment has none of the variables, so what is read
back was set by the job itself (not by Snakemake, which sets the counts for its script jobs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.launch import launch
from pipeline.runtime import THREAD_VARIABLES, WAIT_POLICY
from tests.conftest import ROOT

CLEARED = (*THREAD_VARIABLES, "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
#: evaluate_policy's job with its training replaced by a probe of what torch and the environment
#: hold when the training would start; `torch_loaded_first` says whether torch was loaded before
#: the job could set the environment (then OpenMP would ignore the wait policy).
JOB = """
import json, os, sys
from types import SimpleNamespace
import yaml
from pipeline.jobs import training as jobs
from pipeline.config import merged, run_settings
from pipeline.runtime import THREAD_VARIABLES

def probe(spec):
    import torch
    print(json.dumps({
        "intra_op": torch.get_num_threads(),
        "inter_op": torch.get_num_interop_threads(),
        "environment": {k: os.environ.get(k) for k in (*THREAD_VARIABLES, "OMP_WAIT_POLICY")},
        "torch_loaded_first": torch_loaded_first,
    }))

jobs.evaluate_policy_run = probe
config = yaml.safe_load(open("config.yaml"))
config = merged(config, yaml.safe_load(open("workflow/presets/smoke.yaml")))
settings = run_settings(config, "transformer")
smk = SimpleNamespace(
    config={"device": "cpu", "dtype": "float32"},
    input=SimpleNamespace(data=["data/train.parquet"]),
    output=SimpleNamespace(steps="steps.parquet", examples="examples.parquet"),
    params=SimpleNamespace(
        settings=settings, seed=0, policy="conventional", device="cpu", dtype="float32"
    ),
    log=[],
    threads=int(sys.argv[1]),
)
torch_loaded_first = "torch" in sys.modules
jobs.evaluate_policy(smk)
"""


def clean_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return {**env, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("threads", [1, 2])
def test_one_process_job_sets_the_threads_it_declares(threads):
    result = subprocess.run(
        [sys.executable, "-c", JOB, str(threads)],
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert not seen["torch_loaded_first"]
    assert (seen["intra_op"], seen["inter_op"]) == (threads, threads)
    assert seen["environment"] == {
        **dict.fromkeys(THREAD_VARIABLES, str(threads)),
        "OMP_WAIT_POLICY": WAIT_POLICY,
    }


def test_each_process_of_a_data_parallel_job_sets_its_threads(tmp_path, monkeypatch):
    for key in CLEARED:
        monkeypatch.delenv(key, raising=False)
    spec = {"out": str(tmp_path), "device": "cpu"}
    launch("tests.distributed_entries:thread_probe", spec, 2, 1, False, [str(tmp_path)], None)
    for rank in (0, 1):
        seen = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert (seen["intra_op"], seen["inter_op"]) == (1, 1), rank
        assert seen["environment"] == {
            **dict.fromkeys(THREAD_VARIABLES, "1"),
            "OMP_WAIT_POLICY": WAIT_POLICY,
        }, rank
