"""The execution profiles, and the sbatch calls profiles/slurm makes for the paper preset.

A dry run does not submit, so the sbatch command line of each job is rebuilt by the SLURM
plugin's own functions (as its executor calls them) from the threads and resources the dry run
prints for the job.
"""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import pytest
import yaml
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string

from tests.conftest import ROOT, SMOKE, snakemake

PAPER = str(ROOT / "workflow" / "presets" / "paper.yaml")
TRAINING_RULES = {"optimize_policy", "evaluate_policy", "evaluate_online"}
# on the run's device, in one process whatever its count
ONE_PROCESS_TRAINING = {"online_flops", "online_frontier_points"}


def profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.yaml").read_text())


class Resources(dict):
    """Job resources as the plugin reads them: .get() and attributes."""

    __getattr__ = dict.__getitem__


def planned_jobs(
    workdir, *presets: str, targets: tuple[str, ...] = ()
) -> tuple[list[SimpleNamespace], str]:
    """Every job of a dry run with profiles/slurm (of `targets`, or `all`): rule, threads,
    resources."""
    # --cores: a dry run caps threads at the local cores; SLURM jobs are not capped.
    result = snakemake(
        workdir, *targets, "--profile", str(ROOT / "profiles" / "slurm"), "--configfile", *presets,
        "--dry-run", "--cores", "64",
    )  # fmt: skip
    output = result.stdout + result.stderr
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        match = re.match(r"(?:local)?rule (\w+):", block)
        if not match or match.group(1) == "all":
            continue
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        run = re.search(r"^\s+wildcards: .*\brun=([\w.-]+)", block, re.M)
        resources = Resources()
        line = re.search(r"^\s+resources: (.*)$", block, re.M)
        for item in line.group(1).split(", ") if line else []:
            key, value = item.split("=", 1)
            resources[key] = int(value) if value.isdigit() else value
        jobs.append(
            SimpleNamespace(
                name=match.group(1),
                run=run.group(1) if run else None,
                threads=int(threads.group(1)) if threads else 1,
                resources=resources,
            )
        )
    return jobs, output


def sbatch(job) -> str:
    params = dict(
        run_uuid="test", slurm_logfile="slurm.log", comment_str=f"rule_{job.name}",
        account="", partition="", workdir="/work",
    )  # fmt: skip
    return get_submit_command(job, params) + set_gres_string(job)


def test_paper_preset_submits_the_training_rules_with_a_gpu(tmp_path):
    jobs, output = planned_jobs(tmp_path, PAPER)
    assert "workflow specific profile" in output  # profiles/default is picked up
    names = {job.name for job in jobs}
    assert names >= TRAINING_RULES and "tinystories_data" in names and "figure5b" in names
    shown = set()
    for job in jobs:
        call = sbatch(job)
        if job.name not in shown:
            shown.add(job.name)
            print(f"{job.name}: {call}", file=sys.stderr)
        assert re.search(r" --mem \d+", call) and re.search(r" -t \d+", call), call
        training = job.name in TRAINING_RULES | ONE_PROCESS_TRAINING
        if training and job.run.startswith("transformer"):
            # transformer.resources of the paper preset: 4 threads, 64 GB, 48 h, 1 GPU
            assert " --gpus=1" in call and " --mem 64000" in call and " -t 2880" in call, call
            assert "--cpus-per-task=4" in call, call
        elif training:
            # perceptron.resources: 1 thread, 2 GB, 1 h, no GPU
            assert "--gpus" not in call and " --mem 2000" in call and " -t 60" in call, call
            assert "--cpus-per-task=1" in call, call
        else:
            assert "--gpus" not in call and "gres" not in call, call
            assert "--cpus-per-task=" in call and " --ntasks=1" in call, call


def test_paper_preset_on_eight_gpus_of_one_node_submits_eight_tasks(tmp_path):
    """`transformer.resources.gpus: 8` (processes follow): one job of 8 SLURM tasks, one GPU,
    4 CPUs and 64 GB each, which pipeline/launch.py starts with srun (the `mpi` resource keeps
    the plugin from wrapping the job in `srun -n1`)."""
    overlay = tmp_path / "gpus.yaml"
    overlay.write_text("transformer: {resources: {gpus: 8}}\n")
    jobs, _ = planned_jobs(tmp_path, PAPER, str(overlay))
    training = [j for j in jobs if j.name in TRAINING_RULES and j.run.startswith("transformer")]
    assert {j.name for j in training} == TRAINING_RULES
    shown = set()
    for job in training:
        call = sbatch(job)
        if job.name not in shown:
            shown.add(job.name)
            print(f"{job.name} (8 GPUs): {call}", file=sys.stderr)
        assert " --gpus=8" in call and " --ntasks-per-gpu=1" in call and " --ntasks=8" in call
        assert "--cpus-per-task=4" in call and " --mem 512000" in call, call
        assert job.resources["mpi"] == "srun" and job.threads == 32
    for job in jobs:
        if job.name in TRAINING_RULES and job.run == "perceptron":
            assert "mpi" not in job.resources and " --ntasks=1" in sbatch(job)
        if job.name in ONE_PROCESS_TRAINING and job.run.startswith("transformer"):
            call = sbatch(job)
            assert " --gpus=1" in call and " --mem 64000" in call and "mpi" not in job.resources


def test_no_gpu_request_when_gpus_is_zero(tmp_path):
    jobs, _ = planned_jobs(tmp_path, SMOKE)
    assert {job.name for job in jobs} >= TRAINING_RULES
    for job in jobs:
        assert job.resources.get("gpu", 0) == 0, (job.name, job.resources)
        assert "--gpus" not in sbatch(job)


def test_slurm_profile_is_complete_and_sets_no_placeholder_account():
    slurm = profile("slurm")
    assert slurm["executor"] == "slurm" and slurm["rerun-incomplete"] is True
    for key in ["jobs", "latency-wait", "retries", "default-resources"]:
        assert key in slurm, key
    # A literal placeholder would be submitted (and rejected): they stay comments. Uncommented,
    # those lines are valid YAML that adds exactly the partition and the account, as
    # placeholders; as the profile stands, a job's sbatch call carries neither.
    assert not {"slurm_account", "slurm_partition"} & set(slurm["default-resources"])
    text = (ROOT / "profiles" / "slurm" / "config.yaml").read_text()
    uncommented = yaml.safe_load(
        re.sub(r"^(\s*)# (slurm_(?:partition|account):)", r"\1\2", text, flags=re.M)
    )
    added = {
        key: value
        for key, value in uncommented["default-resources"].items()
        if key not in slurm["default-resources"]
    }
    assert set(added) == {"slurm_partition", "slurm_account"}
    assert all(re.fullmatch(r"<\w+>", value) for value in added.values()), added
    job = SimpleNamespace(
        name="figure4a", threads=1, resources=Resources(slurm["default-resources"])
    )
    call = sbatch(job)
    assert " --mem 2000" in call and " -t 30" in call and "<" not in call, call


@pytest.mark.parametrize("name", ["local", "default"])
def test_local_and_default_profiles_rerun_incomplete_jobs(name):
    config = profile(name)
    assert config["rerun-incomplete"] is True
    if name == "local":
        assert config["cores"] == "all" and config["keep-going"] is False
