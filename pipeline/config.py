"""The configuration: validation with errors that name the setting, and the runs it defines.

A run ("experiment" in paths) is one model, data set, training setting and policy-optimisation
setting. `perceptron` and `transformer` are the paper's two; `transformer-eps<ε>` are the extra
policy step sizes of `transformer.policy.step_size_sweep`.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration has a key or value the pipeline cannot use."""


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return yaml.safe_load(path.read_text())


def _known_keys(schema: dict, root: dict) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root["$defs"][name]
    return sorted(schema.get("properties", {}))


def _schema_at(schema: dict, root: dict, path: list[Any]) -> dict:
    for key in path:
        if "$ref" in schema:
            schema = root["$defs"][schema["$ref"].split("/")[-1]]
        schema = schema.get("properties", {}).get(key, schema.get("items", {}))
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    return schema


def _describe(error: ValidationError, root: dict) -> list[str]:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        known = _known_keys(_schema_at(root, root, list(error.absolute_path)), root)
        unknown = sorted(set(error.instance) - set(known))
        lines = []
        for key in unknown:
            full = f"{where}.{key}" if where else key
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean `{where + '.' if where else ''}{close[0]}`?" if close else ""
            lines.append(
                f"unknown setting `{full}`.{hint} Known keys here: {', '.join(known)}. "
                "Fix the name in config.yaml, the preset (--configfile) or --config."
            )
        return lines
    if error.validator == "required":
        return [
            f"missing setting under `{where or '(top level)'}`: {error.message}. "
            "Add it (config.yaml lists every key with its default)."
        ]
    return [
        f"setting `{where}`: {error.message}. Fix its value in config.yaml, the preset or --config."
    ]


def typed_command_line_values(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """The config with strings turned into the integers, numbers and booleans the schema asks for.

    Snakemake's --config reads values nested in a mapping as strings (`--config
    'perceptron={resources: {processes: 2}}'` gives "2"); this converts them, in place. A string
    that does not parse stays a string, for validation to report.
    """
    root = load_schema(schema_path)

    def typed(value: Any, schema: dict) -> Any:
        if "$ref" in schema:
            schema = root["$defs"][schema["$ref"].split("/")[-1]]
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            for key in value:
                if key in properties:
                    value[key] = typed(value[key], properties[key])
            return value
        if isinstance(value, list):
            return [typed(item, schema.get("items", {})) for item in value]
        if isinstance(value, str):
            kind = schema.get("type")
            try:
                if kind == "integer":
                    return int(value)
                if kind == "number":
                    return float(value)
            except ValueError:
                return value
            if kind == "boolean" and value.lower() in ("true", "false"):
                return value.lower() == "true"
        return value

    return typed(config, root)


def validate_config(config: dict, schema_path: Path = SCHEMA_PATH) -> None:
    """Raise `ConfigError` listing every invalid, missing or unknown setting by its full name."""
    schema = load_schema(schema_path)
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    messages = [line for error in errors for line in _describe(error, schema)]
    if not messages:
        messages = [
            m for kind in ("perceptron", "transformer") for m in _process_errors(config, kind)
        ]
    if messages:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(messages))


def run_processes(resources: dict) -> int:
    """P, the processes of a training job: `resources.processes`, or when that is 0 (automatic)
    one per GPU of `resources.gpus`, at least one."""
    return resources.get("processes") or max(1, resources["gpus"])


def _process_errors(config: dict, kind: str) -> list[str]:
    """What keeps an experiment's training jobs from running in `resources.processes` processes."""
    resources, data = config[kind]["resources"], config[kind]["data"]
    processes, gpus = run_processes(resources), resources["gpus"]
    errors = []
    if gpus > 0 and processes > 1 and processes != gpus:
        errors.append(
            f"setting `{kind}.resources.processes` = {processes} with `{kind}.resources.gpus` = "
            f"{gpus}: each process uses one GPU of its own; set processes to {gpus} (or 0: one "
            "per GPU), or gpus to the number of processes"
        )
    sizes = {f"data.{key}": data[key] for key in ("n_train", "n_desired", "n_test")}
    for i, entry in enumerate(config[kind].get("scaling_sweep", [])):
        sizes[f"scaling_sweep[{i}].n_train"] = entry["n_train"]
    smallest = min(sizes, key=sizes.get)
    if processes > sizes[smallest]:
        errors.append(
            f"setting `{kind}.resources.processes` = {processes}: more processes than examples "
            f"to share among them (`{kind}.{smallest}` = {sizes[smallest]}); lower it"
        )
    return errors


def saved_epochs(epochs: int, save_every: int) -> list[int]:
    """Policy-optimisation epochs whose policy is saved: 0, every `save_every`, and the last."""
    return sorted(set(range(0, epochs + 1, save_every)) | {epochs})


def _format_number(x: float) -> str:
    return f"{x:g}"


def sweep_run_name(entry: dict) -> str:
    """The run of one Table 2 setting: transformer-T<steps>-N<n_train>-V<vocab_size>."""
    return f"transformer-T{entry['steps']}-N{entry['n_train']}-V{entry['vocab_size']}"


def scaling_sweep_runs(config: dict) -> list[str]:
    """The runs of the Table 2 sweep, in config order; a setting equal to the main
    Transformer run's (T, N, V and policy epochs) is that run rather than a copy of it."""
    main = config["transformer"]
    names = []
    for entry in main.get("scaling_sweep", []):
        same = (
            entry["steps"],
            entry["n_train"],
            entry["vocab_size"],
            entry.get("policy_epochs", main["policy"]["epochs"]),
        ) == (
            main["train"]["steps"],
            main["data"]["n_train"],
            main["data"]["vocab_size"],
            main["policy"]["epochs"],
        )
        names.append("transformer" if same else sweep_run_name(entry))
    return names


def run_names(config: dict) -> list[str]:
    """Every run the configuration defines: the paper's two, step-size variants, the sweep."""
    names = list(config["experiments"])
    if "transformer" in names:
        sweep = config["transformer"]["policy"].get("step_size_sweep", [])
        names += [f"transformer-eps{_format_number(eps)}" for eps in sweep]
        names += [n for n in scaling_sweep_runs(config) if n not in names]
    return names


def dataset_name(config: dict, settings: dict) -> str:
    """Directory under results/data/ of a run's data; runs with equal data settings share it."""
    if settings["kind"] == "perceptron":
        return "perceptron"
    if settings["data"] == config["transformer"]["data"]:
        return "tinystories"
    return f"tinystories-N{settings['data']['n_train']}-V{settings['data']['vocab_size']}"


def run_settings(config: dict, name: str) -> dict:
    """The settings of one run: its experiment block with `kind`, `name` and `data_name` added."""
    kind, _, variant = name.partition("-")
    if kind not in ("perceptron", "transformer"):
        raise ConfigError(f"unknown run `{name}`; runs of this configuration: {run_names(config)}")
    block = copy.deepcopy(config[kind])
    block.pop("scaling_sweep", None)
    block["policy"].pop("step_size_sweep", None)
    if variant.startswith("eps"):
        block["policy"]["step_size"] = float(variant[3:])
    elif variant:
        entries = config[kind].get("scaling_sweep", [])
        match = next(
            (e for e, run in zip(entries, scaling_sweep_runs(config), strict=True) if run == name),
            None,
        )
        if match is None:
            raise ConfigError(
                f"unknown run `{name}`; runs of this configuration: {run_names(config)}"
            )
        block["train"]["steps"] = match["steps"]
        block["data"]["n_train"] = match["n_train"]
        block["data"]["vocab_size"] = match["vocab_size"]
        block["policy"]["epochs"] = match.get("policy_epochs", block["policy"]["epochs"])
    block.update(kind=kind, name=name)
    block["data_name"] = dataset_name(config, block)
    return block


def dataset_settings(config: dict, name: str) -> dict:
    """The `transformer.data` block of a TinyStories data set directory name."""
    for run in run_names(config):
        settings = run_settings(config, run)
        if settings["kind"] == "transformer" and settings["data_name"] == name:
            return settings["data"]
    raise ConfigError(f"no run of this configuration uses the data set `{name}`")
