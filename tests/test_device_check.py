"""The device check (`snakemake device_check`, pipeline/device_check.py) on the CPU, as CI runs it.

The code path a GPU takes differs from this one only in the device. The check must pass in
float32 against its float64 reference, must fail when the device computes something else, and
its projection of the paper run must agree with the bench's own FLOP count of the paper preset.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT, fake_snakemake, snakemake
from tests.test_profiles import PAPER, planned_jobs, sbatch

QUANTITIES = {
    "training: θ_T",
    "policy gradient: J",
    "policy gradient: ∂J/∂γ",
    "policy step: projected γ",
    "evaluation: desired loss",
    "evaluation: test loss",
    "evaluation: train loss",
    "evaluation: example loss",
    "evaluation: contribution CT",
}


def default_config(**overrides) -> dict:
    """config.yaml (the default configuration the target runs with), validated, plus overrides."""
    from pipeline.config import merged, validate_config

    config = merged(yaml.safe_load((ROOT / "config.yaml").read_text()), overrides)
    validate_config(config)
    return config


def test_device_check_target_passes_on_cpu_and_projects_the_bench_flop_count(tmp_path):
    from pipeline.bench import bench_paper_scale

    result = snakemake(tmp_path, "device_check", "--config", "device=cpu")
    assert "Largest relative difference from the float64 CPU reference" in result.stderr
    report = json.loads((tmp_path / "results" / "device_check.json").read_text())
    assert (
        (tmp_path / "results" / "device_check.md")
        .read_text()
        .startswith("# Device check: cpu (CPU), float32: passed")
    )
    precision = report["precision"]
    tolerance = default_config()["device_check"]["tolerance"]
    assert report["passed"] and precision["tolerance"] == tolerance and not precision["failed"]
    for kind in ("perceptron", "transformer"):
        differences = precision["models"][kind]["max_relative_difference"]
        assert set(differences) == QUANTITIES
        # float32 against float64: every quantity differs (the device side really ran in
        # float32), and by round-off only
        assert all(0 < d < tolerance for d in differences.values()), (kind, differences)
    assert precision["largest_relative_difference"] == max(
        d for m in precision["models"].values() for d in m["max_relative_difference"].values()
    )

    # The projection against the bench's own count: FlopCounterMode over 8 paper-shape sequences
    # in a process of its own, composed into an epoch by the bench.
    bench = bench_paper_scale(seed=0, chunk=8)
    projected = report["paper"]["projected"]
    assert projected["epoch_flops"] == pytest.approx(
        bench["estimated_gpu"]["epoch_pflop"] * 1e15, rel=1e-9
    )
    epochs = yaml.safe_load(Path(PAPER).read_text())["transformer"]["policy"]["epochs"]
    assert projected["epochs"] == epochs
    assert projected["run_seconds"] == pytest.approx(epochs * projected["epoch_seconds"])
    # Both measured the same CPU (timings are noisy on a shared machine: a factor of 10 still
    # catches a projection off by a unit, N or T).
    bench_epoch_seconds = bench["measured_cpu"]["cpu_epoch_hours"] * 3600
    assert 0.1 < projected["epoch_seconds"] / bench_epoch_seconds < 10
    # Memory: the same model, each with the activations it measured
    bench_memory = bench["data_parallel"]["processes"]["1"]["memory_gb_per_process"]
    assert 0.5 < projected["memory_gb"] / bench_memory < 2


def test_device_check_fails_when_the_device_computes_something_else(tmp_path, monkeypatch):
    """A Transformer whose float32 losses are 0.1 % off (a wrong kernel on the device; the
    float64 reference is right): the job writes its report, then fails naming the setting."""
    from pipeline.device_check import DeviceCheckFailed, device_check_job
    from pipeline.models.transformer import Transformer

    losses = Transformer.losses

    def wrong_in_float32(self, theta, batch):
        out = losses(self, theta, batch)
        return out * 1.001 if theta.dtype == torch.float32 else out

    monkeypatch.setattr(Transformer, "losses", wrong_in_float32)
    outputs = {"json": str(tmp_path / "device_check.json"), "md": str(tmp_path / "check.md")}
    smk = fake_snakemake(default_config(device="cpu"), {}, outputs, {}, str(tmp_path / "log"))
    with pytest.raises(DeviceCheckFailed, match=r"device_check\.tolerance = 0\.0001"):
        device_check_job(smk)
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert not report["passed"] and "FAILED" in (tmp_path / "check.md").read_text()
    models = report["precision"]["models"]
    assert all(d < 1e-4 for d in models["perceptron"]["max_relative_difference"].values())
    wrong = models["transformer"]["max_relative_difference"]
    assert wrong["evaluation: example loss"] > 5e-4  # the 0.1 % itself
    assert {name for name, d in wrong.items() if d > 1e-4} <= QUANTITIES
    assert all(re.match(r"transformer ", f) for f in report["precision"]["failed"])


def test_device_check_is_one_small_gpu_job_on_slurm_with_the_paper_preset(tmp_path):
    jobs, _ = planned_jobs(tmp_path, PAPER, targets=("device_check",))
    assert [job.name for job in jobs] == ["device_check"]
    call = sbatch(jobs[0])
    # transformer.resources of the paper preset: 1 GPU, 4 threads, 64 GB; 30 minutes
    assert " --gpus=1" in call and "--cpus-per-task=4" in call and " --mem 64000" in call, call
    assert " -t 30" in call, call
