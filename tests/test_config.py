"""The configuration check: values as Snakemake and YAML hand them over, bounds, cross-setting
rules, and the policy names the DAG is built from (dry runs only: no job runs here)."""

from __future__ import annotations

import math
import resource
import subprocess
import sys

import pytest
import yaml

from pipeline.config import (
    MAX_SAVED_POLICIES,
    ConfigError,
    coerce_to_schema,
    load_schema,
    merged,
    policy_name,
    run_names,
    run_settings,
    saved_epochs,
    validate_config,
)
from pipeline.models.transformer import TransformerShape
from tests.conftest import ROOT, SMOKE, merged_config, snakemake


def config_error(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    return str(err.value)


# --- defaults ------------------------------------------------------------------------------------


def _optional_defaults(schema: dict, root: dict, path: tuple = ()) -> dict[tuple, object]:
    """Every setting with a `default` in the schema, by its path, found by walking the schema."""
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    found = {}
    for key, part in schema.get("properties", {}).items():
        resolved = part
        while "$ref" in resolved:
            resolved = root["$defs"][resolved["$ref"].split("/")[-1]]
        if "default" in resolved:
            found[(*path, key)] = resolved["default"]
        found |= _optional_defaults(resolved, root, (*path, key))
    return found


def test_validation_fills_in_every_default_of_the_schema_and_runs_carry_them():
    """A config without the optional settings gets the schema's defaults at validation, and
    every run's settings (ablation variants and sweep runs too) read them plainly."""
    schema = load_schema()
    defaults = _optional_defaults(schema, schema)
    assert ("perceptron", "policy", "selection") in defaults
    assert ("transformer", "train", "compile") in defaults
    config = merged(
        yaml.safe_load((ROOT / "config.yaml").read_text()),
        yaml.safe_load((ROOT / "workflow" / "presets" / "smoke.yaml").read_text()),
    )
    left_out = [p for p, value in defaults.items() if value != []]  # keep the smoke's sweep
    for path in left_out:  # leave every optional setting out
        node = config
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    validate_config(config)
    for path in left_out:
        node = config
        for key in path:
            node = node[key]
        assert node == defaults[path], path
    assert config["perceptron"]["policy"]["step_size_sweep"] == []
    runs = run_names(config) + ["perceptron-validation-s1"]
    assert any(r.startswith("transformer-T") for r in runs)  # a sweep run
    for run in runs:
        settings = run_settings(config, run)
        assert settings["train"]["compile"] is False and settings["resources"]["processes"] == 0
        selection = "validation" if run == "perceptron-validation-s1" else "last"
        assert settings["policy"]["selection"] == selection, run
        assert settings["policy"]["validation_fraction"] == 0.25


# --- values as strings (`--config` nesting, YAML 1.1 floats) ----------------------------------


def test_nested_config_strings_are_coerced_to_the_schemas_types():
    """`--config perceptron='{train: {eta: 0.2}}'` hands Snakemake's config '0.2', a string."""
    config = merged_config(
        {
            "perceptron": {"train": {"eta": "0.2", "steps": "30", "compile": "true"}},
            "transformer": {"policy": {"step_size_sweep": ["0.1", "2"]}},
            "scaling_law": {"t0": "null", "L0": "0.05"},
            "seed": 3.0,  # `--config seed=3e0` arrives as a float
        }
    )
    validate_config(config)
    train = config["perceptron"]["train"]
    assert (train["eta"], train["steps"], train["compile"]) == (0.2, 30, True)
    assert type(train["steps"]) is int and type(config["seed"]) is int
    assert config["transformer"]["policy"]["step_size_sweep"] == [0.1, 2.0]
    assert config["scaling_law"]["t0"] is None and config["scaling_law"]["L0"] == 0.05
    assert config["transformer"]["data"]["hub_split"] == "train"  # strings stay strings


def test_yaml_11_exponent_floats_are_numbers():
    """PyYAML reads `5e-6` (no dot) as a string; the schema says number, so it is one."""
    config = merged_config({"perceptron": {"policy": {"step_size": "5e-6"}}})
    validate_config(config)
    assert config["perceptron"]["policy"]["step_size"] == 5e-6
    config = merged_config({"transformer": {"resources": {"mem_mb": "1e4"}}})
    validate_config(config)
    assert config["transformer"]["resources"]["mem_mb"] == 10000


def test_a_string_that_is_no_number_names_the_setting_and_the_spelling():
    message = config_error(merged_config({"perceptron": {"train": {"eta": "fast"}}}))
    assert "`perceptron.train.eta` = 'fast' is not a number" in message
    assert "5.0e-6" in message
    assert message.count("perceptron.train.eta") == 1  # no second, raw schema message
    message = config_error(merged_config({"perceptron": {"train": {"steps": "2.5"}}}))
    assert "`perceptron.train.steps` = '2.5' is not a whole number" in message


def test_coercion_leaves_unknown_keys_to_the_schema():
    config = {"perceptron": {"train": {"etta": "0.2"}}}
    assert coerce_to_schema(config) == []
    assert config["perceptron"]["train"]["etta"] == "0.2"


def test_nested_config_on_the_command_line_passes(tmp_path):
    """The form the error messages recommend: a nested value through --config."""
    result = snakemake(
        tmp_path,
        "results/perceptron/summary.json",
        "--configfile",
        SMOKE,
        "--config",
        "perceptron={train: {eta: 0.2}, policy: {step_size: 5e-6}}",
        "--dry-run",
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


# --- values no run can use ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "nan", ".inf"])
def test_nan_and_infinity_are_refused(value):
    message = config_error(merged_config({"perceptron": {"train": {"eta": value}}}))
    assert "`perceptron.train.eta`" in message and "not a finite number" in message
    assert "too large" not in message


def test_n_head_must_divide_n_embd():
    message = config_error(merged_config({"transformer": {"model": {"n_embd": 16, "n_head": 3}}}))
    assert "`transformer.model.n_head` = 3 does not divide `transformer.model.n_embd` = 16" in (
        message
    )
    assert "1, 2, 4, 8, 16" in message
    with pytest.raises(ValueError, match="n_head = 3 does not divide n_embd = 16"):
        TransformerShape(vocab_size=32, seq_len=8, n_embd=16, n_head=3)


def test_counts_have_a_maximum():
    message = config_error(merged_config({"perceptron": {"policy": {"epochs": 1_000_000_000}}}))
    assert "setting `perceptron.policy.epochs`: 1000000000 is greater than the maximum" in message


def test_too_many_saved_policies_names_both_settings():
    config = merged_config({"perceptron": {"policy": {"epochs": 50_000, "save_every": 10}}})
    message = config_error(config)
    assert "`perceptron.policy.epochs` = 50000 with `perceptron.policy.save_every` = 10" in message
    assert f"at most {MAX_SAVED_POLICIES}" in message and "save_every to at least 51" in message
    with pytest.raises(ConfigError, match="saves 5001 policies"):
        saved_epochs(50_000, 10)


def test_sweep_epochs_are_checked_too():
    sweep = [{"steps": 10, "n_train": 32, "vocab_size": 96, "policy_epochs": 5000}]
    config = merged_config({"transformer": {"scaling_sweep": sweep}})
    assert "`transformer.scaling_sweep.0.policy_epochs` = 5000" in config_error(config)


def test_huge_epochs_fail_the_dry_run_at_once(tmp_path):
    """It used to build the list of saved epochs in full and grow past 20 GB."""

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
         str(tmp_path), "--cores", "1", "--configfile", SMOKE, "--dry-run",
         "--config", "perceptron={policy: {epochs: 1000000000, save_every: 1}}"],
        capture_output=True, text=True, timeout=120, preexec_fn=limit_memory,
    )  # fmt: skip
    assert result.returncode != 0
    assert "`perceptron.policy.epochs`: 1000000000 is greater than the maximum" in (
        result.stdout + result.stderr
    )


# --- policy names and the DAG ------------------------------------------------------------------


def test_saved_epochs_and_their_names():
    assert saved_epochs(10, 4) == [0, 4, 8, 10]
    assert saved_epochs(10_000, 5_000) == [0, 5_000, 10_000]
    assert [policy_name(e) for e in (0, 25, 10_000)] == ["epoch0000", "epoch0025", "epoch10000"]


def test_ten_thousand_epochs_build_a_dag(tmp_path):
    result = snakemake(
        tmp_path,
        "results/perceptron/summary.json",
        "--configfile",
        SMOKE,
        "--config",
        "perceptron={policy: {epochs: 10000, save_every: 5000}}",
        "--dry-run",
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "dumps/epoch10000/steps.parquet" in output


def test_target_of_an_unsaved_epoch_fails_at_dag_build(tmp_path):
    target = "results/perceptron/dumps/epoch0003/steps.parquet"
    result = snakemake(tmp_path, target, "--configfile", SMOKE, "--dry-run", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "run `perceptron` saves no policy `epoch0003`" in output
    assert "conventional, epoch0000, epoch0002, epoch0004" in output
