"""The device check (`snakemake device_check`, pipeline/device_check/) on the CPU, as CI runs it.

The code path a GPU takes differs from this one only in the device. The check must pass in
float32 against its float64 reference, must fail when the device computes something else, and
its projection of the paper run must agree with a FLOP and memory count of its own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from pipeline.config import merged, run_settings
from pipeline.experiment import build_model
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
    from pipeline.config import validate_config

    config = merged(yaml.safe_load((ROOT / "config.yaml").read_text()), overrides)
    validate_config(config)
    return config


def test_device_check_target_passes_on_cpu_and_its_projection_matches_a_count(tmp_path):
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

    # The projection against a count of its own: FlopCounterMode (as the bench counts) over one
    # paper-shape sequence, times the sequences of a paper epoch. Per step of T: the training
    # gradient over N, again in the backward pass (θ checkpointed every k = √T > 1 steps), the
    # desired gradient over K, and one VJP over N.
    paper = merged(default_config(), yaml.safe_load(Path(PAPER).read_text()))
    settings = run_settings(paper, "transformer")
    model = build_model(settings, torch.device("cpu"))
    theta = model.init_params(torch.Generator().manual_seed(0))
    one = {"tokens": torch.randint(1, settings["data"]["vocab_size"], (1, 64))}
    weights = torch.ones(1)
    flops = {}
    for name, fn in {
        "grad": lambda: model.weighted_grad(theta, one, weights),
        "vjp": lambda: model.weighted_grad_vjp(theta, one, weights, theta),
    }.items():
        with FlopCounterMode(display=False) as counter:
            fn()
        flops[name] = counter.get_total_flops()
    steps, data = settings["train"]["steps"], settings["data"]
    n, k = data["n_train"], data["n_desired"]
    assert settings["policy"]["checkpoint_every"] == 0  # θ kept every round(√T) steps
    every = round(math.sqrt(steps))
    recomputed = steps - math.ceil(steps / every)  # all but each segment's stored first θ
    epoch_flops = flops["grad"] * ((steps + recomputed) * n + steps * k) + flops["vjp"] * n * steps
    projected = report["paper"]["projected"]
    assert projected["epoch_flops"] == pytest.approx(epoch_flops, rel=1e-3)
    assert projected["epochs"] == settings["policy"]["epochs"]
    # Its time from the measured times per sequence (the projection goes through FLOPs and
    # throughput), and one projection of T rows per epoch
    measured, timed = report["paper"]["measured"], report["paper"]["sequences"]
    projection = measured["projection"]
    epoch_seconds = (
        ((steps + recomputed) * n + steps * k) / timed * measured["training_step"]["seconds"]
        + steps * n / timed * measured["vjp"]["seconds"]
        + projection["seconds"] * steps / projection["rows"]
    )
    assert projected["epoch_seconds"] == pytest.approx(epoch_seconds, rel=1e-3)
    # Memory, counted by hand: θ_t stored every k steps and the k of one segment (float32), γ,
    # ∂J/∂γ and the projected step (T × N each), the measured activations of a chunk
    every = projected["checkpoint_every"]
    theta_gb = theta.numel() * 4 / 2**30
    stored = (math.ceil(steps / every) + 1 + every + 1) * theta_gb
    expected = stored + 3 * steps * n * 4 / 2**30 + projected["activations_gb_per_chunk"]
    assert projected["memory_gb"] == pytest.approx(expected, rel=1e-9)
    # The activations of a chunk (1024), extrapolated from peaks over 2 and 4 sequences: more
    # than its logits alone (kept for the double backward), less than twice the peak over 4
    # sequences scaled to the chunk (which counts the |θ|-sized buffers 256 times)
    chunk, seq_len = settings["train"]["chunk_size"], data["seq_len"]
    logits_gb = chunk * (seq_len - 1) * data["vocab_size"] * 4 / 2**30
    scaled_gb = measured["peak_memory_mb"]["vjp"] / 1024 * chunk / timed
    assert logits_gb < projected["activations_gb_per_chunk"] < 2 * scaled_gb


def test_device_check_fails_when_the_device_computes_something_else(tmp_path, monkeypatch):
    """A Transformer whose float32 losses are 0.1 % off (a wrong kernel on the device; the
    float64 reference is right): the job writes its report, then fails naming the setting."""
    from pipeline.device_check import DeviceCheckFailed, device_check_job, projection
    from pipeline.models.transformer import Transformer

    losses = Transformer.losses

    def wrong_in_float32(self, theta, batch):
        out = losses(self, theta, batch)
        return out * 1.001 if theta.dtype == torch.float32 else out

    monkeypatch.setattr(Transformer, "losses", wrong_in_float32)
    monkeypatch.setattr(projection, "return_freed_memory", lambda: None)  # keep pytest's malloc
    outputs = {"json": str(tmp_path / "device_check.json"), "md": str(tmp_path / "check.md")}
    # The small θ_0 and η = 0.02 (transformer_ablation's todays_reading), where the 0.1 % shows
    # as itself: with PyTorch's init the N(0, 1) embeddings dwarf T steps of updates (θ_T moves
    # by less than the tolerance relative to max|θ_T|), and at η = 0.1 from a small θ_0 the
    # training amplifies it (the example losses differ by more than 0.1 %)
    todays_reading = default_config()["transformer_ablation"]["definitions"]["todays_reading"]
    config = default_config(device="cpu", transformer=todays_reading)
    params = {  # as rule device_check passes them
        "device": config["device"],
        "dtype": config["dtype"],
        "check": config["device_check"],
        "experiments": {kind: config[kind] for kind in ("perceptron", "transformer")},
        "seed": config["seed"],
    }
    smk = fake_snakemake(config, {}, outputs, params, str(tmp_path / "log"))
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
