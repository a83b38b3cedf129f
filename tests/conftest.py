"""Shared fixtures: paths, the shared TinyStories copy, and a fake `snakemake` object for jobs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_STORIES = (ROOT / ".." / "shared" / "data" / "tinystories" / "stories.parquet").resolve()
SMOKE = str(ROOT / "workflow" / "presets" / "smoke.yaml")


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the workflow in `workdir` (targets before --configfile, which takes several files)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
    result = subprocess.run(
        [*command, "--directory", str(workdir), "--cores", "2", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def in_ci() -> bool:
    """CI sets CI (`.ci/run` sets CI=true): there every test must run, none be skipped."""
    return bool(os.environ.get("CI"))


FRESH_INSTALL = pytest.StashKey()  # tests/test_cluster.py's background install


def _uses_fresh_install(item) -> bool:
    return "fresh_venv" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config, items) -> None:
    """The tests of the fresh install (tests/test_cluster.py) last: their install and SLURM run
    start in the background at collection and take the cores the other tests leave idle."""
    items.sort(key=_uses_fresh_install)


def pytest_collection_finish(session) -> None:
    """Start the README's fresh install (tests/test_cluster.py) now if a selected test needs it,
    and after it the SLURM run if a selected test is marked `cluster`, so that both run while
    the tests before them do."""
    if session.config.option.collectonly:
        return
    if any(map(_uses_fresh_install, session.items)):
        from tests.test_cluster import FreshInstall, cluster_unavailable, fresh_install_unavailable

        cluster = any(item.get_closest_marker("cluster") for item in session.items)
        if fresh_install_unavailable() is None:
            session.config.stash[FRESH_INSTALL] = FreshInstall(
                cluster=cluster and cluster_unavailable() is None
            )


def pytest_unconfigure(config) -> None:
    if (install := config.stash.get(FRESH_INSTALL, None)) is not None:
        install.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI a skipped test fails: a missing input must not hide an end-to-end test."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI (CI={os.environ['CI']!r}), where every test must run: {reason}"
        )


@pytest.fixture(autouse=True)
def restore_environment():
    """Undo what a test's in-process job set in os.environ (a job sets OMP_NUM_THREADS=1 and
    friends for what it loads): left there it leaks into every later test's subprocesses, where
    e.g. `nproc` then reports 1 core and .ci/slurm.sh built a 1-CPU node on which the Perceptron's
    2-task jobs pended forever."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def stories_path() -> Path:
    """The shared TinyStories copy the end-to-end tests train on: without it they fail under CI
    and are skipped elsewhere (a developer without ../shared can still run the unit tests)."""
    if not SHARED_STORIES.exists():
        message = (
            f"the shared TinyStories copy is not at {SHARED_STORIES}: the end-to-end tests "
            "(the smoke run) need it; put stories.parquet there"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return SHARED_STORIES


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, stories_path) -> Path:
    """The whole smoke DAG (`rule all` of the smoke preset), run once for the whole session.

    Tests read its outputs and must not modify them. The directory also holds `stories.yaml`,
    the overlay that points the data stage at the shared TinyStories copy.
    """
    workdir = tmp_path_factory.mktemp("smoke")
    overlay = workdir / "stories.yaml"
    overlay.write_text(
        yaml.safe_dump({"transformer": {"data": {"local_files": [str(stories_path)]}}})
    )
    snakemake(workdir, "--configfile", SMOKE, str(overlay))
    return workdir


def assert_drawn(path: Path) -> None:
    """A figure file with a figure in it: a PDF with a page, or a PNG of at least 200 × 200
    pixels of which between 0.5 % and 90 % are not white (drawn, neither blank nor filled:
    a heat map fills about 55 %)."""
    path = Path(path)
    if path.suffix == ".pdf":
        data = path.read_bytes()
        assert data.startswith(b"%PDF") and b"/Type /Page" in data, f"{path}: no PDF page"
        return
    from matplotlib.image import imread

    image = imread(path)[..., :3]
    ink = float((image < 0.95).any(axis=-1).mean())
    assert min(image.shape[:2]) >= 200, f"{path}: {image.shape[1]} × {image.shape[0]} pixels"
    assert 0.005 < ink < 0.9, f"{path}: {ink:.1%} of the pixels drawn"


def report_html(result: subprocess.CompletedProcess, report: Path) -> str:
    """The HTML of a `snakemake --report` run, its \\uXXXX escapes decoded; fails if docutils
    could not render a caption (it then says `(ERROR/` or `(SEVERE/` and shows it garbled)."""
    assert "(ERROR/" not in result.stderr and "(SEVERE/" not in result.stderr, result.stderr
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), Path(report).read_text())


def caption_title(name: str) -> str:
    """The first line of the bold title of `workflow/report/<name>.rst`, as the report shows it
    (the report keeps the caption's line breaks; a title ends before any template field)."""
    caption = (ROOT / "workflow" / "report" / f"{name}.rst").read_text()
    title = caption.split("**")[1].splitlines()[0].split("{{")[0].strip()
    assert title, f"workflow/report/{name}.rst has no bold title to look for"
    return title


def copy_of_smoke_run(smoke_run: Path, dest: Path, *, trained_only: bool = False) -> Path:
    """A copy of the smoke run in `dest`: file times and Snakemake's records kept, so that nothing
    reruns. With `trained_only`, what is computed from the trained runs (statistics, tables,
    figures, the at-a-glance page) is dropped, so the next run draws it again without retraining.
    """
    shutil.copytree(smoke_run, dest, symlinks=True, dirs_exist_ok=True)
    if trained_only:
        results = dest / "results"
        for path in [
            results / "figures",
            results / "tables",
            *results.glob("at_a_glance.*"),
            *results.glob("*/learning_law"),
            *results.glob("*/summary.json"),
        ]:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return dest


@pytest.fixture(scope="session")
def perceptron_data(tmp_path_factory):
    """(config, split paths): the smoke preset's Perceptron data, written by the data job."""
    from pipeline.jobs import training as jobs

    config = merged_config()
    out = tmp_path_factory.mktemp("perceptron_data")
    paths = {split: str(out / f"{split}.parquet") for split in ("train", "desired", "test")}
    params = {"settings": config["perceptron"]["data"], "seed": 0}
    jobs.perceptron_data(fake_snakemake(config, {}, paths, params))
    return config, paths


def merged_config(*overlays: dict) -> dict:
    """config.yaml with the smoke preset and further overlays merged in, as Snakemake does."""
    from pipeline.config import apply_defaults, merged

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    smoke = yaml.safe_load((ROOT / "workflow" / "presets" / "smoke.yaml").read_text())
    for overlay in (smoke, *overlays):
        config = merged(config, overlay)
    return apply_defaults(config)  # as validate_config does (tests validate bad ones themselves)


class Namedlist(list):
    """A list whose items are also attributes, like Snakemake's input / output objects."""

    def __init__(self, **items):
        super().__init__(items.values())
        self.__dict__.update(items)


def fake_snakemake(config: dict, input: dict, output: dict, params: dict, log: str | None = None):
    """An object shaped like the `snakemake` object a rule's script receives (the training
    rules' `device` and `dtype` params taken from `config` unless given)."""
    params = {"device": config.get("device"), "dtype": config.get("dtype"), **params}
    return SimpleNamespace(
        config=config,
        input=Namedlist(**input),
        output=Namedlist(**output),
        params=SimpleNamespace(**params),
        log=[log] if log else [],
        threads=1,
    )


@pytest.fixture
def one_thread():
    """One torch thread, as the suite's jobs use: tiny tensors gain nothing from more, and a
    timing or FLOP count should not depend on how many the machine has."""
    import torch  # here: conftest does not load torch for the tests that do not use it

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
