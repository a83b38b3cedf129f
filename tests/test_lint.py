"""Static checks, as CI runs them: ruff (lint and format), `snakemake --lint`, and the layers of
the package (`lint-imports`, with the contracts of pyproject.toml's `[tool.importlinter]`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

#: import-linter's command line, in the Python running the tests
LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def run(*command: str, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package and contracts under `root` (its `pipeline/` first on the
    path, so that an installed copy elsewhere is not the one analysed)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return run(sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo", cwd=root, env=env)


def test_ruff_check_is_clean():
    result = run(sys.executable, "-m", "ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakemake_lint_finds_nothing(tmp_path):
    """The workflow on the default config (in a scratch working directory)."""
    result = run(
        sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path), "--lint",
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Lints for" not in output, output[-6000:]


def test_the_package_keeps_its_layers():
    """Every import of pipeline/ (in functions too) goes down the layers of pyproject.toml."""
    result = lint_imports(ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "BROKEN" not in output, output[-6000:]
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken\.", output), output[-6000:]


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [  # up a layer at the top of a module, up to plots inside a function, between siblings
        ("data/synthetic.py", "from pipeline.experiment import Run  # noqa: F401\n",
         "pipeline.data is not allowed to import pipeline.experiment"),
        ("metrics.py", "def _upward():\n    from pipeline.plots import style  # noqa: F401\n",
         "pipeline.metrics is not allowed to import pipeline.plots"),
        ("jobs/summary.py", "from pipeline.bench import report  # noqa: F401\n",
         "pipeline.jobs is not allowed to import pipeline.bench"),
    ],
)  # fmt: skip
def test_an_upward_import_breaks_the_contract(tmp_path, module, line, broken):
    """A copy of the package with one import that goes up (or between independent siblings)
    fails `lint-imports` with the same contracts, naming the two layers."""
    shutil.copytree(
        ROOT / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    path = tmp_path / "pipeline" / module
    path.write_text(path.read_text() + "\n" + line)
    result = lint_imports(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "BROKEN" in output and broken in output, output[-6000:]
