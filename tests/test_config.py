"""The configuration check: values as Snakemake and YAML hand them over, bounds, cross-setting
rules, and the policy names the DAG is built from (dry runs only: no job runs here)."""

from __future__ import annotations

import math
import re
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
        assert settings["train"]["compile"] == "policy" and settings["resources"]["processes"] == 0
        selection = "validation" if run == "perceptron-validation-s1" else "last"
        assert settings["policy"]["selection"] == selection, run
        assert settings["policy"]["validation_fraction"] == 0.25


# --- values as strings (`--config` nesting, YAML 1.1 floats) ----------------------------------


def test_nested_config_strings_are_coerced_to_the_schemas_types():
    """`--config perceptron='{train: {eta: 0.2}}'` hands Snakemake's config '0.2', a string."""
    config = merged_config(
        {
            "perceptron": {"train": {"eta": "0.2", "steps": "30"}},
            "transformer": {"policy": {"step_size_sweep": ["0.1", "2"]}},
            "scaling_law": {"t0": "null", "L0": "0.05"},
            "seed": 3.0,  # `--config seed=3e0` arrives as a float
        }
    )
    validate_config(config)
    train = config["perceptron"]["train"]
    assert (train["eta"], train["steps"]) == (0.2, 30)
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
    """An epoch the run does not save, here without the zero padding (`epoch2` rather than
    `epoch0002`: a bare MissingRuleException before), fails listing the run's policies."""
    target = "results/perceptron/dumps/epoch2/steps.parquet"
    result = snakemake(tmp_path, target, "--configfile", SMOKE, "--dry-run", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "run `perceptron` saves no policy `epoch2`" in output
    assert "conventional, epoch0000, epoch0002, epoch0004" in output


# --- no setting accepted and ignored --------------------------------------------------------


#: Top-level settings the rules hand to their jobs whole, as `params` (so that a change reruns
#: the jobs); the experiments' blocks reach the jobs through `run_settings`.
WHOLE_PARAMS = (
    "device", "dtype", "learning_law", "scaling_law", "device_check", "minibatch_online",
)  # fmt: skip
# blocks the rules pass in parts, each part as it is spelled in a rule's params
PART_PARAMS = {
    ("perceptron_ablation", "transformer_ablation"): [
        'config[f"{w.experiment}_ablation"]["variants"]',
        'config[f"{w.experiment}_ablation"]["seeds"]',
        'config[f"{w.experiment}_ablation"]["definitions"]',
    ],
    ("perceptron_seeds",): ['config["perceptron_seeds"]["variants"]'],
    ("transformer_scale",): ['config["transformer_scale"]["target_steps"]'],
    ("online",): ['config["online"]["tau_grid"]'],
    ("policy_frontier",): [
        'config["policy_frontier"]["near_optimal_gap"]',
        'config["policy_frontier"]["law_paths"]',
    ],
}


def what_the_jobs_get(config: dict) -> dict:
    """What the configuration hands to the jobs: the runs of `rule all` and of the ablation with
    the settings of each (the `settings` param of every training, data and analysis rule), and
    the settings the rules pass whole."""
    from pipeline.config import all_run_names, run_names, run_settings

    return {
        "all": run_names(config),
        "runs": {run: run_settings(config, run) for run in all_run_names(config)},
        "experiments": config["experiments"],
        **{key: config[key] for key in WHOLE_PARAMS},
        **{key: config[key] for keys in PART_PARAMS for key in keys},
    }


def other_values(value: object, schema: dict) -> list[object]:
    """Other values a setting could take under its schema, the likeliest valid first."""
    if "enum" in schema:
        return [v for v in schema["enum"] if v != value]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if value is None:
        if "array" in types:
            return [[1]]
        return [1 if "integer" in types else 0.5]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, value * 2, schema.get("minimum", 1)]
    if isinstance(value, float):
        return [value * 0.5, value * 2, value + 0.5]
    if isinstance(value, str):
        return [value + "-other"]
    if isinstance(value, list):
        items = schema.get("items", {})
        extra = {"integer": 7, "number": 0.3, "string": "other.parquet"}
        item_type = items.get("type")
        grown = [value + [items["enum"][-1]]] if "enum" in items else []
        if item_type in extra:
            grown.append(value + [extra[item_type]])
        return [*grown, value[:-1]]
    raise AssertionError(f"no other value for {value!r}")


def setting_leaves(config: dict, schema: dict, root: dict, path: tuple = ()):
    """(path, value, schema) of every setting the schema defines: object properties (optional
    ones at their default), the entries of a list of blocks, and the variants of the ablation."""
    from pipeline.config.schema import _resolve

    schema = _resolve(schema, root)
    if schema.get("type") == "object" or "properties" in schema:
        properties = dict(schema.get("properties", {}))
        if isinstance(schema.get("additionalProperties"), dict):  # ablation variants
            properties |= {name: schema["additionalProperties"] for name in config}
        for key, sub in properties.items():
            sub_resolved = _resolve(sub, root)
            if key in config:
                yield from setting_leaves(config[key], sub, root, (*path, key))
            elif "default" in sub_resolved:
                yield (*path, key), sub_resolved["default"], sub_resolved
        return
    if schema.get("type") == "array" and schema.get("items", {}).get("type") == "object":
        for i, entry in enumerate(config):
            yield from setting_leaves(entry, schema["items"], root, (*path, i))
        return
    if path[-2:-1] in {("definitions",)}:  # a variant's free-form blocks: its perceptron ones
        return
    yield path, config, schema


def with_value(config: dict, path: tuple, value: object) -> dict:
    import copy

    out = copy.deepcopy(config)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = copy.deepcopy(value)
    return out


def test_every_setting_reaches_a_job():
    """Each setting of the schema, given another valid value, changes what some job gets (its
    params, so Snakemake reruns it): none is accepted and then ignored. The ablation's variant
    blocks are partial `perceptron` blocks: their keys are checked as the `perceptron` ones."""
    import yaml

    from pipeline.config import load_schema

    schema = load_schema()
    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    # every key of every variant block, so the variants' own settings are walked too
    definitions = base["perceptron_ablation"]["definitions"]
    definitions["every"] = {k: base["perceptron"][k] for k in ("data", "model", "policy")}
    definitions["every"] = {**definitions["every"], "train": base["perceptron"]["train"]}
    definitions["every"]["policy"] = {
        k: v for k, v in base["perceptron"]["policy"].items() if k != "step_size_sweep"
    }
    base["perceptron_ablation"]["variants"].append("every")
    validate_config(base)
    reference = what_the_jobs_get(base)
    leaves = list(setting_leaves(base, schema, schema))
    perceptron = schema["properties"]["perceptron"]
    variant = base["perceptron_ablation"]["definitions"]["every"]
    leaves += [
        (("perceptron_ablation", "definitions", "every", *path), value, sub)
        for path, value, sub in setting_leaves(variant, perceptron, schema)
        if path != ("policy", "step_size_sweep")  # refused in a variant (its own test)
    ]
    assert len(leaves) > 90  # the walk found the settings (not an empty loop)
    # what_the_jobs_get is what the rules pass: the whole settings are params of some rule, and
    # no job reads the configuration past its params (Snakemake reruns on params, not config)
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    for key in WHOLE_PARAMS:
        assert re.search(rf'^\s+\w+=config\["{key}"\]', rules, re.MULTILINE), key
    for parts in PART_PARAMS.values():
        assert all(part in rules for part in parts), parts
    package = [p for p in (ROOT / "pipeline").rglob("*.py") if "smk.config" in p.read_text()]
    assert not package, f"jobs reading the configuration instead of their params: {package}"
    ignored, refused = [], []
    for path, value, sub in leaves:
        for candidate in other_values(value, sub):
            changed = with_value(base, path, candidate)
            try:
                validate_config(changed)
            except ConfigError:
                continue
            if what_the_jobs_get(changed) == reference:
                ignored.append((".".join(map(str, path)), value, candidate))
            break
        else:
            refused.append(".".join(map(str, path)))
    assert not ignored, f"settings accepted and ignored: {ignored}"
    assert not refused, f"no other valid value found for: {refused}"


def test_the_perceptron_step_size_sweep_adds_runs():
    from pipeline.config import all_run_names, run_names, run_settings

    config = merged_config({"perceptron": {"policy": {"step_size_sweep": [0.5, 0.1]}}})
    validate_config(config)
    names = run_names(config)
    assert "perceptron-eps0.5" in names and "perceptron-eps0.1" in names
    assert run_settings(config, "perceptron-eps0.5")["policy"]["step_size"] == 0.5
    assert run_settings(config, "perceptron-eps0.5")["data_name"] == "perceptron"
    assert set(names) <= set(all_run_names(config))  # `rule all` asks for run_names' summaries


def test_scale_study_base_epochs_give_runs_of_their_own_and_a_points_epochs_win():
    """`transformer_scale.base` changes every point's run; where it changes nothing (the smoke
    preset), the point's run at the main seed is the sweep's own, and a point's policy_epochs
    beats the base's."""
    from pipeline.config import apply_defaults, scale_runs

    default = apply_defaults(yaml.safe_load((ROOT / "config.yaml").read_text()))
    validate_config(default)
    runs = {(p["steps"], seed): run for p, seed, run in scale_runs(default)}
    assert runs[(150, 0)] == "transformer-T150-N256-V1024-s0"  # not the main run: 8 epochs
    assert run_settings(default, runs[(150, 0)])["policy"]["epochs"] == 8
    assert run_settings(default, "transformer")["policy"]["epochs"] == 20
    assert run_settings(default, runs[(450, 2)])["policy"]["epochs"] == 8

    smoke = merged_config()
    validate_config(smoke)
    assert [run for _, _, run in scale_runs(smoke)] == [
        "transformer-T10-N32-V96", "transformer-T10-N32-V96-s1",
        "transformer", "transformer-T20-N64-V128-s1",
    ]  # fmt: skip
    assert run_settings(smoke, "transformer-T10-N32-V96-s1")["policy"]["epochs"] == 1
    assert run_settings(smoke, "transformer-T20-N64-V128-s1")["policy"]["epochs"] == 2

    wider = merged_config({"transformer_scale": {"base": {"policy": {"epochs": 3}}}})
    names = [run for _, _, run in scale_runs(wider)]
    # T10's own epochs beat the base, so its run is the sweep's; T20 (the main run's) gets 3
    assert names[0] == "transformer-T10-N32-V96" and names[2] == "transformer-T20-N64-V128-s0"
    assert run_settings(wider, names[1])["policy"]["epochs"] == 1
    assert run_settings(wider, names[2])["policy"]["epochs"] == 3


def test_a_step_size_sweep_in_an_ablation_variant_is_refused():
    config = merged_config(
        {"perceptron_ablation": {"definitions": {"default": {"policy": {"step_size_sweep": [1]}}}}}
    )
    message = config_error(config)
    assert "perceptron_ablation.definitions.default.policy.step_size_sweep" in message


# --- caught when the DAG is built, not when a job runs ----------------------------------------


def test_validation_selection_with_too_small_a_desired_set_is_refused():
    """`selection: validation` with K = 1 failed only in the job; with 2 processes K = 3 leaves
    one held-out example for two processes. Both are now configuration errors."""
    config = merged_config(
        {"perceptron": {"data": {"n_desired": 1}, "policy": {"selection": "validation"}}}
    )
    message = config_error(config)
    assert "`perceptron.policy.selection: validation`" in message
    assert "`perceptron.data.n_desired` = 1" in message and "at least 2" in message
    config = merged_config(
        {
            "transformer": {
                "data": {"n_desired": 3},
                "policy": {"selection": "validation"},
                "resources": {"processes": 2},
            }
        }
    )
    assert "leaves 2 example(s) for J and 1 held out, for 2 process(es)" in config_error(config)
    config = merged_config(
        {"perceptron_ablation": {"definitions": {"validation": {"data": {"n_desired": 1}}}}}
    )
    assert "`perceptron_ablation.definitions.validation.data.n_desired` = 1" in config_error(config)


def test_device_cuda_without_a_gpu_stops_the_dry_run(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = snakemake(
        tmp_path, "--configfile", SMOKE, "--config", "device=cuda", "-n", check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "setting `device: cuda` but PyTorch sees no CUDA device" in output
    assert "Traceback" not in output
