"""Shared fixtures: paths, the shared TinyStories copy, and a fake `snakemake` object for jobs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_STORIES = (ROOT / ".." / "shared" / "data" / "tinystories" / "stories.parquet").resolve()


@pytest.fixture(scope="session")
def stories_path() -> Path:
    if not SHARED_STORIES.exists():
        pytest.skip(f"the shared TinyStories copy is not at {SHARED_STORIES}")
    return SHARED_STORIES


def merged_config(*overlays: dict) -> dict:
    """config.yaml with the smoke preset and further overlays merged in, as Snakemake does."""

    def merge(base: dict, extra: dict) -> dict:
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = value
        return base

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    merge(config, yaml.safe_load((ROOT / "workflow" / "presets" / "smoke.yaml").read_text()))
    for overlay in overlays:
        merge(config, overlay)
    return config


class Namedlist(list):
    """A list whose items are also attributes, like Snakemake's input / output objects."""

    def __init__(self, **items):
        super().__init__(items.values())
        self.__dict__.update(items)


def fake_snakemake(config: dict, input: dict, output: dict, params: dict, log: str | None = None):
    """An object shaped like the `snakemake` object a rule's script receives."""
    return SimpleNamespace(
        config=config,
        input=Namedlist(**input),
        output=Namedlist(**output),
        params=SimpleNamespace(**params),
        log=[log] if log else [],
        threads=1,
    )
