"""Conda environments: every rule that runs code has one that exists, and the env files list
every third-party package the jobs need (the dependencies of pyproject.toml, the imports)."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SMOKE

PAPER = str(ROOT / "workflow" / "presets" / "paper.yaml")
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
# Run on the submitting host, not inside jobs: not needed in the jobs' environments.
HOST_ONLY = {"snakemake", "snakemake-executor-plugin-slurm"}
# PyPI name -> the conda-forge names that provide it (the first is what the env files use).
CONDA_NAMES = {
    "torch": ["pytorch"],
    "matplotlib": ["matplotlib-base", "matplotlib"],
    "seaborn": ["seaborn-base", "seaborn"],
}
# Import name -> PyPI name, where they differ.
DIST_NAMES = {"yaml": "pyyaml"}
TRAINING_RULES = {"optimize_policy", "evaluate_policy", "evaluate_online", "online_flops",
                  "online_frontier_points", "minibatch_run"}  # fmt: skip

# Lists each rule's conda env, script and declared resources, through Snakemake's API (in a
# subprocess: loading a workflow changes sys.path, the environment and logging).
PROBE = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (
    ConfigSettings, OutputSettings, ResourceSettings, StorageSettings)

root, workdir, *configfiles = sys.argv[1:]
with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=[Path(c) for c in configfiles]),
        storage_settings=StorageSettings(),
        snakefile=Path(root) / "Snakefile",
        workdir=Path(workdir),
    )._workflow
    rules = {
        rule.name: {
            "conda": rule.conda_env,
            "basedir": str(rule.basedir),
            "runs_code": not rule.norun,
            "resources": sorted(k for k in rule.resources if not k.startswith("_")),
            "threads": rule.resources["_cores"] if isinstance(rule.resources["_cores"], int)
            else None,
        }
        for rule in workflow.rules
    }
print("RULES=" + json.dumps(rules))
"""


def workflow_rules(tmp_path: Path, *configfiles: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT), str(tmp_path), *configfiles],
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [x for x in result.stdout.splitlines() if x.startswith("RULES=")]
    assert result.returncode == 0 and line, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(line[0].removeprefix("RULES="))


def requirement_name(spec: str) -> tuple[str, str]:
    """('pandas', '>=2.1') from 'pandas>=2.1' (a PyPI or a conda spec; extras such as
    `snakemake[reports]` dropped)."""
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$", spec.split("#")[0])
    return match.group(1).lower(), match.group(2).replace(" ", "")


def env_packages(path: Path) -> dict[str, str]:
    """Every package of an env file, conda and pip, with its version constraint."""
    packages = {}
    for dep in yaml.safe_load(path.read_text())["dependencies"]:
        for spec in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, version = requirement_name(spec)
            packages[name] = version.lstrip("=") if version.startswith("=") else version
    return packages


def project_dependencies() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return dict(requirement_name(spec) for spec in pyproject["project"]["dependencies"])


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_every_rule_that_runs_code_has_an_existing_conda_env(tmp_path, preset):
    rules = workflow_rules(tmp_path, SMOKE if preset == "smoke" else PAPER)
    code_rules = {name: rule for name, rule in rules.items() if rule["runs_code"]}
    assert code_rules.keys() >= TRAINING_RULES
    for name, rule in code_rules.items():
        assert rule["conda"], f"rule {name} runs code but has no conda: directive"
        env = (Path(rule["basedir"]) / rule["conda"]).resolve()
        assert env.is_file(), f"rule {name}: conda env {rule['conda']} is not at {env}"
        assert env.parent == ROOT / "envs", f"rule {name}: {env} is outside envs/"
        # The CUDA build when the preset asks for GPUs (paper: resources.gpus = 1), else CPU;
        # the device check runs where the training jobs run.
        cuda = preset == "paper" and name in TRAINING_RULES | {"device_check"}
        expected = "pipeline-cuda.yaml" if cuda else "pipeline.yaml"
        assert env.name == expected, f"rule {name} on the {preset} preset uses {env.name}"


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_every_rule_that_runs_code_declares_its_resources(tmp_path, preset):
    rules = workflow_rules(tmp_path, SMOKE if preset == "smoke" else PAPER)
    for name, rule in rules.items():
        if rule["runs_code"]:
            assert {"mem_mb", "runtime"} <= set(rule["resources"]), f"rule {name}: {rule}"
    for name in TRAINING_RULES:
        # GPUs per run, from its experiment's `resources.gpus` (0: the plugin adds no flag).
        assert {"gpu", "mem_mb", "runtime"} <= set(rules[name]["resources"]), rules[name]


def test_env_files_list_every_project_dependency_with_its_version():
    assert [p.name for p in ENV_FILES] == ["pipeline-cuda.yaml", "pipeline.yaml"]
    needed = {k: v for k, v in project_dependencies().items() if k not in HOST_ONLY}
    for path in ENV_FILES:
        packages = env_packages(path)
        for name, version in needed.items():
            provided = [n for n in CONDA_NAMES.get(name, [name]) if n in packages]
            assert provided, f"{path.name} lacks {name} (conda: {CONDA_NAMES.get(name, [name])})"
            assert packages[provided[0]] == version, (
                f"{path.name}: {provided[0]}{packages[provided[0]]}, pyproject: {name}{version}"
            )
        assert packages["python"] == "3.11", f"{path.name}: python must match the host's 3.11"


def test_env_files_pick_the_right_pytorch_build_from_conda_forge():
    for path in ENV_FILES:
        env = yaml.safe_load(path.read_text())
        assert env["channels"][0] == "conda-forge" and "defaults" not in env["channels"]
    assert "pytorch-cpu" in env_packages(ROOT / "envs" / "pipeline.yaml")
    cuda = env_packages(ROOT / "envs" / "pipeline-cuda.yaml")
    assert "pytorch-gpu" in cuda and "pytorch-cpu" not in cuda


def test_every_third_party_import_is_a_project_dependency():
    """What the jobs import (pipeline/, workflow/scripts/) is declared, hence in the envs."""
    declared = set(project_dependencies())
    local = {"pipeline", "tests"}
    files = [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "workflow" / "scripts").glob("*.py")]
    missing = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in local:
                    continue
                dist = DIST_NAMES.get(top, top.replace("_", "-")).lower()
                if dist not in declared:
                    missing.setdefault(dist, str(path.relative_to(ROOT)))
    assert not missing, f"imported but not in [project.dependencies]: {missing}"
