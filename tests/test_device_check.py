"""The device check (`snakemake device_check`, pipeline/device_check.py) on the CPU, as CI runs it.

The code path a GPU takes differs from this one only in the device. The check must pass in
float32 against its float64 reference, must fail when the device computes something else, and
its projection of the paper run must agree with the bench's own FLOP count of the paper preset.
"""

from __future__ import annotations

import json
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

    # The projection against the bench's own count: FlopCounterMode over 4 paper-shape sequences
    # in a process of its own, composed into an epoch by the bench.
    bench = bench_paper_scale(seed=0, chunk=4)
    projected = report["paper"]["projected"]
    assert projected["epoch_flops"] == pytest.approx(
        bench["estimated_gpu"]["epoch_pflop"] * 1e15, rel=1e-9
    )
    epochs = yaml.safe_load(Path(PAPER).read_text())["transformer"]["policy"]["epochs"]
    assert projected["epochs"] == epochs
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
    from pipeline import device_check
    from pipeline.device_check import DeviceCheckFailed, device_check_job
    from pipeline.models.transformer import Transformer

    losses = Transformer.losses

    def wrong_in_float32(self, theta, batch):
        out = losses(self, theta, batch)
        return out * 1.001 if theta.dtype == torch.float32 else out

    monkeypatch.setattr(Transformer, "losses", wrong_in_float32)
    monkeypatch.setattr(device_check, "return_freed_memory", lambda: None)  # keep pytest's malloc
    outputs = {"json": str(tmp_path / "device_check.json"), "md": str(tmp_path / "check.md")}
    smk = fake_snakemake(default_config(device="cpu"), {}, outputs, {}, str(tmp_path / "log"))
    with pytest.raises(DeviceCheckFailed, match=r"device_check\.tolerance = 0\.0001"):
        device_check_job(smk)
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert not report["passed"] and "FAILED" in (tmp_path / "check.md").read_text()
    models = report["precision"]["models"]
    assert all(d < 1e-4 for d in models["perceptron"]["max_relative_difference"].values())
    wrong = models["transformer"]["max_relative_difference"]
    # the losses are off by the 0.1 % put in (float32 round-off beside it is 1e-7) ...
    for name in ("example loss", "desired loss", "test loss", "train loss"):
        assert wrong[f"evaluation: {name}"] == pytest.approx(1e-3, rel=1e-3), name
    # ... and every quantity computed from them is beyond the tolerance but the projected policy:
    # one small step (ε/T = 0.1 times ∂J/∂γ) barely moves it
    failed = {name for name, d in wrong.items() if d > 1e-4}
    assert failed == QUANTITIES - {"policy step: projected γ"}
    assert report["precision"]["failed"] == [
        f"transformer {name}: {wrong[name]:.3g}" for name in wrong if name in failed
    ]


def test_device_check_is_one_small_gpu_job_on_slurm_with_the_paper_preset(tmp_path):
    jobs, _ = planned_jobs(tmp_path, PAPER, targets=("device_check",))
    assert [job.name for job in jobs] == ["device_check"]
    call = sbatch(jobs[0])
    # transformer.resources of the paper preset: 1 GPU, 4 threads, 64 GB; 30 minutes
    assert " --gpus=1" in call and "--cpus-per-task=4" in call and " --mem 64000" in call, call
    assert " -t 30" in call, call
