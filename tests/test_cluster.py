"""What a new user does, on a real SLURM cluster.

A fresh virtual environment from the README's install command; its snakemake then runs the smoke
preset to the figures through profiles/slurm on a single-node SLURM cluster that .ci/slurm.sh
brings up on this machine (root and apt-get needed: CI has both; skipped without them). The same
fresh environment runs the smoke preset locally (on the session's trained runs) and builds the
report, as docs/usage.md says.
Slow (minutes): `pytest -m "not slow"` skips.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import FRESH_INSTALL, ROOT, SHARED_STORIES, SMOKE, copy_of_smoke_run

pytestmark = pytest.mark.slow
FIGURES = ["figure2", "figure4a", "figure4b", "figure5a", "figure5b"]
SLURM_SCRIPT = (ROOT / ".ci" / "slurm.sh").read_text()
SLURM_FIGURES = re.search(r"^FIGURES=\((.*)\)$", SLURM_SCRIPT, re.M)[1].split()  # its targets


def cluster_unavailable() -> str | None:
    """Why .ci/slurm.sh cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root: .ci/slurm.sh installs Slurm with apt-get and starts its daemons"
    if not shutil.which("apt-get"):
        return "needs Debian's apt-get to install Slurm"
    return None


def readme_install_command(venv: Path) -> str:
    """The README's set-up command for the main job, without its snakemake run, into `venv`."""
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("python3.11 -m venv .venv &&"))
    steps = [step for step in line.split(" && ") if "snakemake" not in step]
    assert any("pip install" in step for step in steps), line
    return re.sub(r"(?<![\w/])\.venv\b", str(venv), " && ".join(steps))


def fresh_install_unavailable() -> str | None:
    """Why the README's install cannot be tried here, or None."""
    if not shutil.which("python3.11"):
        return "the README's install command needs python3.11 on PATH"
    if not SHARED_STORIES.exists():
        return f"the shared TinyStories copy is not at {SHARED_STORIES}"
    return None


class FreshInstall:
    """The README's install into a new directory, started in the background when the session
    has selected a test that needs it (tests/conftest.py, at the end of collection): it took 79 s
    on 2 idle cores, which the tests that run before these now hide.

    With `cluster` (the SLURM test is selected and can run here), the same background job then
    runs .ci/slurm.sh with the new venv's snakemake: about 2 minutes, mostly spent waiting for
    the SLURM plugin's status checks, which the tests before it now hide too. Everything runs
    niced in pytest's session (a new session would be a scheduler autogroup of its own, where
    nice does not count against the tests): it takes what the foreground tests leave idle.
    """

    def __init__(self, cluster: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fresh-install-"))
        self.venv = self.directory / "venv"
        self.command = readme_install_command(self.venv)
        # files, not pipes: a full pipe would stall pip; the return codes tell each stage's end
        self.log, self.returncode = self.directory / "install.log", self.directory / "install.rc"
        self.cluster_log = self.directory / "slurm.log"
        self.cluster_returncode = self.directory / "slurm.rc" if cluster else None
        stages = f"({self.command}) > {self.log} 2>&1; echo $? > {self.returncode}"
        if cluster:  # more time than alone: the foreground tests come first
            slurm = f"bash {ROOT / '.ci' / 'slurm.sh'} {self.venv / 'bin' / 'snakemake'}"
            stages += (
                f"; [ $(cat {self.returncode}) = 0 ] && SLURM_CI_TIMEOUT=900 {slurm}"
                f" > {self.cluster_log} 2>&1; echo $? > {self.cluster_returncode}"
            )
        self.start = time.monotonic()
        self.process = subprocess.Popen(
            ["nice", "-n", "10", "bash", "-c", stages], cwd=ROOT, process_group=0
        )

    def _wait_for(self, returncode: Path, timeout: float) -> int:
        """The return code a stage wrote, once it has (or the background job ended without it)."""
        deadline = time.monotonic() + timeout
        while not (written := returncode.exists() and returncode.read_text().strip()):
            # `echo $? >` creates the file, then writes: wait for the number
            ended = self.process.poll() is not None
            assert not ended or returncode.exists(), (
                f"the background job ended ({self.process.returncode}) before writing {returncode}"
            )
            assert time.monotonic() < deadline, f"no {returncode} after {timeout:.0f} s"
            time.sleep(0.5)
        return int(written)

    def wait(self) -> Path:
        """The venv, once the install has ended well (its output on failure)."""
        status = self._wait_for(self.returncode, 900)
        assert status == 0, f"{self.command}\n{self.log.read_text()[-6000:]}"
        print(f"\n[fresh venv] `{self.command}`: {time.monotonic() - self.start:.0f} s")
        return self.venv

    def cluster_run(self) -> tuple[int, str]:
        """The return code and output of .ci/slurm.sh, once it has ended."""
        assert self.cluster_returncode is not None, "the SLURM run was not started at collection"
        status = self._wait_for(self.cluster_returncode, 1500)
        return status, self.cluster_log.read_text()

    def close(self) -> None:
        """Stop the background job if it still runs (SIGTERM first: .ci/slurm.sh then stops the
        daemons it started) and remove the directory."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def fresh_install(request) -> FreshInstall:
    if reason := fresh_install_unavailable():
        pytest.skip(reason)
    return request.config.stash[FRESH_INSTALL]  # started at collection


@pytest.fixture(scope="module")
def fresh_venv(fresh_install) -> Path:
    return fresh_install.wait()


@pytest.mark.cluster
def test_fresh_install_runs_the_smoke_preset_through_slurm(fresh_venv, fresh_install, capsys):
    """.ci/slurm.sh with the fresh venv's snakemake, run in the background since collection."""
    if reason := cluster_unavailable():
        pytest.skip(reason)
    start = time.monotonic()
    returncode, output = fresh_install.cluster_run()
    assert returncode == 0, output[-8000:]
    summary = [
        x for x in output.splitlines() if x.startswith(("SLURM job ids", "  job ", "[slurm"))
    ]
    with capsys.disabled():  # the job ids and times in the test output, passed or not
        print(f"\n[slurm] .ci/slurm.sh: waited {time.monotonic() - start:.0f} s", *summary,
              sep="\n")  # fmt: skip
    job_ids = re.search(r"^SLURM job ids: ([\d ]+)$", output, re.M)
    assert job_ids and len(job_ids.group(1).split()) > len(SLURM_FIGURES), output[-3000:]
    assert "OK: " in output


def test_fresh_install_runs_the_smoke_preset_and_builds_the_report(fresh_venv, smoke_run, tmp_path):
    """The README's install (no test extra), then exactly `snakemake --cores all --configfile
    workflow/presets/smoke.yaml` and docs/usage.md's report command with the same preset.

    The trained runs come from the session's smoke run (the fresh install trains through SLURM
    above), so this run draws every statistic, table and figure again and trains nothing.
    """
    copy_of_smoke_run(smoke_run, tmp_path, trained_only=True)
    overlay = str(tmp_path / "stories.yaml")
    where = ["-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    snakemake = str(fresh_venv / "bin" / "snakemake")
    logs = []
    for args in (
        ["--cores", "all", "--configfile", SMOKE, overlay],
        ["--report", "results/report.html", "--configfile", SMOKE, overlay],
    ):
        result = subprocess.run(
            [snakemake, *args, *where], capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"snakemake {' '.join(args)}:\n{result.stderr[-5000:]}"
        logs.append(result.stderr)
    assert "rule learning_law" in logs[0] and "rule figure5b" in logs[0], logs[0][-3000:]
    assert "rule optimize_policy" not in logs[0], "the copied trained runs were trained again"
    for figure in FIGURES:
        assert (tmp_path / "results" / "figures" / f"{figure}.png").stat().st_size > 1000
    html = (tmp_path / "results" / "report.html").read_text()
    assert "figure5b.png" in html and "at_a_glance.csv" in html
