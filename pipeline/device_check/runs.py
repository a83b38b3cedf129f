"""The runs of the device check: a preset's settings, the run on the CPU from the bench's
generators (pipeline/bench/measure.py), and the same run moved to a device and dtype."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from pipeline.bench.measure import bench_run
from pipeline.config import merged, run_settings
from pipeline.experiment import Run, build_model
from pipeline.models.base import Batch

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "workflow" / "presets"
CPU = torch.device("cpu")


# -- settings and runs ----------------------------------------------------------------------------
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
