"""The run registry: every run of a configuration, its settings and its data set, named once.

Each test here failed before the registry: names decoded by regexes could disagree with the
settings that made them, data sets differing only in a non-numeric setting shared a directory,
a story file replaced by an older one kept its data, and some settings were silently accepted.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import (
    ConfigError,
    all_run_names,
    dataset_name,
    dataset_priority,
    job_priority,
    merged,
    registry,
    run_settings,
    validate_config,
)
from tests.conftest import ROOT, SMOKE, merged_config, snakemake

PRESETS = {
    "default": None,
    "smoke": ROOT / "workflow" / "presets" / "smoke.yaml",
    "paper": ROOT / "workflow" / "presets" / "paper.yaml",
}


def preset_config(preset: str, *overlays: dict) -> dict:
    """config.yaml with a preset and overlays merged in, validated (as the workflow reads it)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for overlay in [yaml.safe_load(PRESETS[preset].read_text())] if PRESETS[preset] else []:
        config = merged(config, overlay)
    for overlay in overlays:
        config = merged(config, overlay)
    validate_config(config)
    return config


# --- names ↔ settings ----------------------------------------------------------------------------

_STEP = re.compile(r"(?P<kind>perceptron|transformer)-eps(?P<eps>.+)")
_POINT = re.compile(r"transformer-T(?P<T>\d+)-N(?P<N>\d+)-V(?P<V>\d+)(-s(?P<seed>\d+))?")
_SEED = re.compile(r".*-s(?P<seed>\d+)")


def encoded(name: str, config: dict) -> dict:
    """What a run's name says of its settings (the naming rule of the config module's
    docstring), read independently of the code under test."""
    says: dict = {"kind": name.partition("-")[0], "seed": config["seed"]}
    if match := _STEP.fullmatch(name):
        says["step_size"] = float(match["eps"])
    elif match := _POINT.fullmatch(name):
        says |= {"steps": int(match["T"]), "n_train": int(match["N"]),
                 "vocab_size": int(match["V"])}  # fmt: skip
        if match["seed"] is not None:
            says["seed"] = int(match["seed"])
    elif match := _SEED.fullmatch(name):
        says["seed"] = int(match["seed"])
    return says


def round_trip_configs():
    yield from ((name, preset_config(name)) for name in PRESETS)
    # a step size %g would round (0.1234568): the name must still say the run's own step
    sweep = {"perceptron": {"policy": {"step_size_sweep": [0.12345678, 0.12345684, 0.002]}}}
    yield "step sizes close together", preset_config("smoke", sweep)


@pytest.mark.parametrize(("label", "config"), list(round_trip_configs()))
def test_name_settings_name_round_trip(label, config):
    """For every run: name → settings (kind, seed, step size, T/N/V the name encodes) → the
    registry's name for those settings is the name again, and no two runs share a name."""
    names = all_run_names(config)
    assert len(names) == len(set(names)), label
    for name in names:
        settings = run_settings(config, name)
        assert settings["name"] == name
        says = encoded(name, config)
        assert settings["kind"] == says["kind"] and settings["seed"] == says["seed"], name
        if "step_size" in says:
            assert settings["policy"]["step_size"] == says["step_size"], name
        if "steps" in says:
            assert settings["train"]["steps"] == says["steps"], name
            assert settings["data"]["n_train"] == says["n_train"], name
            assert settings["data"]["vocab_size"] == says["vocab_size"], name
        spec = registry(config)[name]
        assert spec.name == name and spec.kind == settings["kind"] and spec.seed == settings["seed"]
        assert spec.name_of() == name  # settings → name


def test_an_unknown_run_is_named_with_the_runs_there_are():
    config = preset_config("smoke")
    for name in ("perceptron-eps9", "perceptron-nothing-s0", "transformer-T1-N2-V3-s0", "x"):
        with pytest.raises(ConfigError, match=rf"unknown run `{re.escape(name)}`; runs of this"):
            run_settings(config, name)


# --- data set names ------------------------------------------------------------------------------

ALTERNATIVES = {
    "perceptron": {"dim": 17, "n_train": 300, "n_desired": 65, "n_test": 70,
                   "train_variance": 3.0000001, "desired_mean": 0.25},
    "transformer": {"source": "hub", "local_files": ["other/stories.parquet"],
                    "hub_dataset": "someone/Stories", "hub_split": "validation",
                    "hub_revision": "0123abc", "n_train": 65, "n_desired": 17,
                    "n_desired_base": 8, "n_test": 18, "vocab_size": 130, "seq_len": 17,
                    "perturbed_fraction": 0.25, "perturbation_ops": 3},
}  # fmt: skip


@pytest.mark.parametrize("kind", ["perceptron", "transformer"])
def test_data_sets_with_different_settings_have_different_names(kind, tmp_path):
    """Every data setting changed alone, and every pair of them changed together: each data
    block its own name (before: `hub_revision`, `source`, ... were left out of it)."""
    config = merged_config()
    main = run_settings(config, kind)
    alternatives = ALTERNATIVES[kind]
    assert set(alternatives) == set(main["data"]), "a data setting without an alternative"
    blocks = [main["data"]]
    for keys in itertools.chain(
        itertools.combinations(alternatives, 1), itertools.combinations(alternatives, 2)
    ):
        blocks.append({**main["data"], **{key: alternatives[key] for key in keys}})
    names = {}
    for block in blocks:
        name = dataset_name(config, {**main, "data": block})
        other = names.setdefault(name, block)
        assert other == block, f"{name} names both {other} and {block}"
    seeds = {dataset_name(config, {**main, "seed": s}) for s in (0, 1, 2)}
    assert len(seeds) == 3


def stories(path, count: int) -> None:
    pq.write_table(pa.table({"text": [f"Story {i} of {count}." for i in range(count)]}), path)


def test_a_story_file_replaced_by_an_older_one_changes_the_data_name(tmp_path):
    """`cp -p` of another stories file (an older modification time) onto the configured one:
    the data set's name changes, so its data job runs again (before: the same name)."""
    current, older = tmp_path / "stories.parquet", tmp_path / "archive.parquet"
    stories(older, 150)
    os.utime(older, (1_000_000, 1_000_000))  # long ago
    stories(current, 200)
    config = merged_config({"transformer": {"data": {"local_files": [str(current)]}}})
    before = run_settings(config, "transformer")["data_name"]
    assert before == run_settings(config, "transformer")["data_name"]  # stable
    shutil.copy2(older, current)  # cp -p: the older file's mtime comes along
    assert current.stat().st_mtime < 2_000_000
    after = run_settings(config, "transformer")["data_name"]
    assert after != before and after.startswith("tinystories")


def test_a_story_file_replaced_by_an_older_one_reruns_the_data_job(tmp_path):
    """The same through Snakemake: after `cp -p` of an older file, a dry run schedules the data
    job (before: "Nothing to be done", the old data kept)."""
    current, older = tmp_path / "stories.parquet", tmp_path / "archive.parquet"
    stories(older, 150)
    os.utime(older, (1_000_000, 1_000_000))
    stories(current, 200)
    overlay = tmp_path / "stories.yaml"
    overlay.write_text(f"transformer:\n  data:\n    local_files: [{current}]\n")
    config = merged_config({"transformer": {"data": {"local_files": [str(current)]}}})
    data = tmp_path / "results" / "data" / run_settings(config, "transformer")["data_name"]
    data.mkdir(parents=True)
    for name in ("train.parquet", "desired.parquet", "test.parquet", "vocab.json", "preview.md"):
        (data / name).write_text("built from the first file")
    target = [f"results/data/{data.name}/train.parquet", "--configfile", SMOKE, str(overlay)]
    later = current.stat().st_mtime + 100
    os.utime(current, (later, later))  # the same bytes, newer: the same data set
    done = snakemake(tmp_path, *target, "-n")
    assert "Nothing to be done" in done.stdout + done.stderr
    shutil.copy2(older, current)
    result = snakemake(tmp_path, "results/transformer/policy_history.parquet", "--configfile",
                       SMOKE, str(overlay), "-n")  # fmt: skip
    assert "rule tinystories_data:" in result.stdout, result.stdout[-2000:]
    assert f"results/data/{data.name}/" not in result.stdout.split("rule optimize_policy:")[1]


# --- settings refused ----------------------------------------------------------------------------


def test_a_sweep_step_equal_to_the_main_step_is_refused():
    """A `step_size_sweep` entry equal to `policy.step_size` would be a second run of the main
    run (before: scheduled, trained twice); the error names the setting and the fix."""
    policy = {"step_size": 0.01, "step_size_sweep": [0.02, 0.01]}
    config = merged_config({"perceptron": {"policy": policy}})
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert "`perceptron.policy.step_size_sweep`" in message and "0.01" in message
    assert "main run" in message
    twice = merged_config({"transformer": {"policy": {"step_size_sweep": [0.1, 0.1]}}})
    with pytest.raises(ConfigError, match=r"`transformer.policy.step_size_sweep` lists 0.1 twice"):
        validate_config(twice)


def test_a_scale_point_too_small_to_train_is_refused():
    """A scale point's N must give each of the job's processes a training example, as the
    Table 2 sweep's must (before: not checked for the points). One process trains at N = 2: a
    smoke run with that point completes, so the schema's minimum of 2 is the code's."""
    config = merged_config(
        {"transformer": {"resources": {"processes": 4}},
         "transformer_scale": {"points": [{"steps": 10, "n_train": 2, "vocab_size": 96}]}}
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"`transformer_scale.points.0.n_train` = 2"):
        validate_config(config)


def test_scale_runs_that_would_share_a_name_are_refused():
    """Two sweep settings with the same (T, N, V) and other policy epochs: their scale runs at
    seed 1 were both transformer-T20-N64-V128-s1, the second silently trained as the first."""
    sweep = [{"steps": 20, "n_train": 64, "vocab_size": 128},
             {"steps": 20, "n_train": 64, "vocab_size": 128, "policy_epochs": 7}]  # fmt: skip
    config = merged_config({"transformer": {"scaling_sweep": sweep}})
    with pytest.raises(ConfigError, match=r"`transformer.scaling_sweep.0` and `transformer.scal"):
        validate_config(config)
    with pytest.raises(ConfigError, match="would share the name `transformer-T20-N64-V128-s1`"):
        registry(config)


def test_a_quoted_seed_in_a_config_file_is_refused_but_one_from_the_command_line_is_not():
    """`online.seeds: ["0"]` in a file is a string, not a seed (before: silently seed 0);
    Snakemake hands `--config online='{seeds: [0]}'` over as strings too, and those still work."""
    config = merged_config({"online": {"seeds": ["0", 1]}})
    with pytest.raises(ConfigError, match=r"setting `online.seeds.0` = '0' is a quoted string"):
        validate_config(config, command_line={})
    command_line = {"online": {"seeds": ["0", "1"]}}
    config = merged_config(command_line)
    validate_config(config, command_line=command_line)
    assert config["online"]["seeds"] == [0, 1]
    exponent = merged_config({"perceptron": {"policy": {"step_size": "5e-6"}}})  # YAML 1.1
    validate_config(exponent, command_line={})
    assert exponent["perceptron"]["policy"]["step_size"] == 5e-6


def test_the_workflow_refuses_a_quoted_seed_file_and_takes_it_from_the_command_line(tmp_path):
    overlay = tmp_path / "seeds.yaml"
    overlay.write_text('online:\n  seeds: ["0"]\n')
    refused = snakemake(tmp_path, "-n", "--configfile", SMOKE, str(overlay), check=False)
    assert refused.returncode != 0
    assert "`online.seeds.0` = '0' is a quoted string" in refused.stdout + refused.stderr
    taken = snakemake(tmp_path, "-n", "--configfile", SMOKE, "--config", "online={seeds: [0]}")
    assert "online_policies_experiment" in taken.stdout, taken.stderr[-2000:]


def test_registry_data_names_are_those_of_the_runs():
    config = preset_config("default")
    specs = registry(config)
    assert set(specs) == set(all_run_names(config))
    for name, spec in specs.items():
        assert spec.data_name == run_settings(config, name)["data_name"]
        assert json.dumps(spec.settings, sort_keys=True) == json.dumps(
            run_settings(config, name), sort_keys=True
        )


def test_a_sweep_point_evaluates_only_what_table2_reads():
    """Table 2 reads a sweep point's conventional and near-optimal curves: only those two are
    evaluated (before: every saved epoch, 38 jobs of the default run); the main runs keep every
    saved epoch (the Learning Law reads them)."""
    config = preset_config("default")
    specs = registry(config)
    sweep = [spec for spec in specs.values() if spec.family == "sweep"]
    assert sweep, "the default config has Table 2 sweep points"
    for spec in sweep:
        assert spec.evaluated_policies == ["conventional", spec.policies[-1]]
    main = specs["transformer"]
    assert main.evaluated_policies == main.policies and len(main.policies) > 2


def test_the_longest_jobs_are_scheduled_first_and_evaluations_last():
    """The main Transformer run's data and optimisation outrank every other job (Snakemake's
    `priority:`); of the other long jobs the Transformer's come before the Perceptron's; no
    other data set and no evaluation is raised, so the short evaluations fill the run's end."""
    config = preset_config("default")
    specs = registry(config)
    main = specs["transformer"]
    assert dataset_priority(config, main.data_name) == job_priority(config, "transformer",
                                                                    "optimize")  # fmt: skip
    top = job_priority(config, "transformer", "optimize")
    others = [job_priority(config, name, stage) for name in specs if name != "transformer"
              for stage in ("optimize", "evaluate", "online")]  # fmt: skip
    assert top > max(others)
    assert all(job_priority(config, name, "evaluate") == 0 for name in specs)
    assert all(dataset_priority(config, spec.data_name) == 0 for spec in specs.values()
               if spec.data_name != main.data_name)  # fmt: skip
    sweep = next(name for name, spec in specs.items() if spec.family == "sweep")
    assert job_priority(config, sweep, "optimize") > job_priority(config, "perceptron",
                                                                  "optimize") > 0  # fmt: skip
    assert job_priority(config, sweep, "evaluate") == 0
    # the main run's online job is a long job like the other seeds' (before: 0, started last)
    assert job_priority(config, "transformer", "online") == job_priority(config, "transformer-s1",
                                                                         "online") > 0  # fmt: skip
