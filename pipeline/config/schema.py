"""The configuration's schema: reading it, values given as strings converted to the types it
declares, its defaults filled in, its errors described by the setting's full name; and the
merging of partial experiment blocks (ablation variants) that checks and runs share."""

from __future__ import annotations

import copy
import difflib
import functools
import math
from pathlib import Path
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

#: The experiments with an ablation block `<experiment>_ablation` (docs/perceptron-fidelity.md).
ABLATION_EXPERIMENTS = ("perceptron", "transformer")
#: The studies whose paths are ablation variants over seeds (`<study>.<experiment>.paths`).
PATH_STUDIES = ("policy_frontier", "optimum_k")


def ablation_key(experiment: str) -> str:
    """The configuration block of an experiment's ablation: perceptron_ablation, …"""
    return f"{experiment}_ablation"


class ConfigError(ValueError):
    """The configuration has a key or value the pipeline cannot use."""


@functools.cache
def _schema(path: Path) -> dict:
    """The schema, parsed once per process (`run_settings` needs it on every call); not to be
    modified: `load_schema` gives a copy that may be."""
    return yaml.safe_load(path.read_text())


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return copy.deepcopy(_schema(Path(path)))


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


#: The most policies one run may save: each is evaluated by a training job of its own, and the
_NULL_WORDS = {"null", "Null", "NULL", "~", ""}
_BOOLEAN_WORDS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
                  "FALSE": False}  # fmt: skip


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    return schema


def _types(schema: dict) -> list[str]:
    declared = schema.get("type", [])
    return [declared] if isinstance(declared, str) else list(declared)


def _parse_scalar(value: object, types: list[str]) -> tuple[object, str | None]:
    """`value` as the first of the schema's `types` it parses as, or (value, what it is not).

    Strings come from `--config` (Snakemake hands nested values over as strings) and from YAML
    1.1, which reads `5e-6` (no dot) as a string; integral floats (`--config seed=1e3`) become
    integers where the schema wants one.
    """
    if isinstance(value, float) and "integer" in types and value.is_integer():
        return int(value), None
    if not isinstance(value, str) or "string" in types:
        return value, None
    text = value.strip()
    if "null" in types and text in _NULL_WORDS:
        return None, None
    if "boolean" in types:
        if text in _BOOLEAN_WORDS:
            return _BOOLEAN_WORDS[text], None
        return value, "true or false"
    if "integer" in types or "number" in types:
        try:
            number = float(text)
        except ValueError:  # YAML spellings such as .inf and .nan
            parsed = yaml.safe_load(text) if text else None
            number = parsed if isinstance(parsed, float) else None
        if number is not None and "integer" in types and number.is_integer():
            return int(number), None
        if number is not None and "number" in types:
            return number, None
        if "number" in types:
            return value, "a number (write e.g. 0.2, 5.0e-6 or 1.0e+6)"
        return value, "a whole number (write e.g. 100)"
    return value, None


def _given_on_command_line(command_line: dict | None, path: list[str]) -> bool:
    """Whether the setting at `path` (or a block or list holding it) is one of `--config`'s;
    every setting counts as one when the origin is unknown (`command_line` None)."""
    node: object = command_line
    if command_line is None:
        return True
    for key in path:
        if isinstance(node, list):
            return True  # the whole list came from --config
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _quoted_in_file(value: object, types: list[str]) -> str | None:
    """The type a string of a config file was meant to be, when only its quotes keep it from
    being that type (`seeds: ["0"]`); None for any other string. Exponents without a dot
    (`5e-6`) are strings in YAML 1.1 even unquoted: those are converted, as from --config."""
    if not isinstance(value, str) or "string" in types:
        return None
    try:
        read = yaml.safe_load(value)
    except yaml.YAMLError:
        return None
    if isinstance(read, bool):
        return "true or false" if "boolean" in types else None
    if isinstance(read, int | float):
        return "a whole number" if "integer" in types else "a number" if "number" in types else None
    return "null" if read is None and value.strip() and "null" in types else None


def coerce_to_schema(
    config: dict, schema_path: Path = SCHEMA_PATH, command_line: dict | None = None
) -> list[str]:
    """Convert, in place, values given as strings to the type the schema declares for them.

    `command_line` is Snakemake's `--config` (nested values arrive from it as strings): a string
    elsewhere, from a config file, is refused where only its quotes keep it from being the
    declared type (`online.seeds: ["0"]`), since a string is not a seed. With `command_line`
    None (the origin unknown) every string is converted. Returns one message per value that
    does not parse as its type; keys the schema does not know are left to the validation.
    """
    root = load_schema(schema_path)
    problems: list[str] = []

    def visit(node: object, schema: dict, path: list[str]) -> object:
        schema = _resolve(schema, root)
        if isinstance(node, dict):
            properties = schema.get("properties", {})
            for key in node:
                if key in properties:
                    node[key] = visit(node[key], properties[key], [*path, str(key)])
            return node
        if isinstance(node, list):
            items = schema.get("items", {})
            for i, item in enumerate(node):
                node[i] = visit(item, items, [*path, str(i)])
            return node
        types = _types(schema)
        quoted = _quoted_in_file(node, types)
        if quoted is not None and not _given_on_command_line(command_line, path):
            problems.append(
                f"setting `{'.'.join(path)}` = {node!r} is a quoted string in a config file, "
                f"not {quoted}: write it without quotes ({node})."
            )
            return node
        value, expected = _parse_scalar(node, types)
        if expected is not None:
            problems.append(f"setting `{'.'.join(path)}` = {node!r} is not {expected}.")
        return value

    visit(config, root, [])
    for kind in ABLATION_EXPERIMENTS:  # variants: partial experiment blocks, typed as that block
        ablation = config.get(ablation_key(kind), {})
        for part in ("base", "definitions"):
            blocks = ablation.get(part, {}) if isinstance(ablation, dict) else {}
            if not isinstance(blocks, dict):
                continue
            items = {"": blocks} if part == "base" else blocks
            for name, block in items.items():
                path = [ablation_key(kind), part] + ([str(name)] if name else [])
                visit(block, root["properties"][kind], path)
    return problems


def apply_defaults(config: dict, schema: dict | None = None, root: dict | None = None) -> dict:
    """Fill in, in place, the schema's `default` of every optional setting the config leaves out
    (`policy.selection`, `train.compile`, …), so that code reads every setting plainly.

    `schema` is the part of the schema `config` is an instance of (the whole schema by default);
    parts of the wrong type are left alone for the validation to name. Returns `config`.
    """
    root = root if root is not None else _schema(SCHEMA_PATH)
    schema = _resolve(schema if schema is not None else root, root)
    if isinstance(config, dict):
        for key, part in schema.get("properties", {}).items():
            part = _resolve(part, root)
            if key not in config and "default" in part:
                config[key] = copy.deepcopy(part["default"])
            if key in config:
                apply_defaults(config[key], part, root)
    elif isinstance(config, list) and isinstance(schema.get("items"), dict):
        for item in config:
            apply_defaults(item, schema["items"], root)
    return config


def _non_finite(node: object, path: list[str]) -> list[str]:
    """Messages for NaN and infinite numbers, which every bound of the schema lets through."""
    if isinstance(node, dict):
        return [m for key, value in node.items() for m in _non_finite(value, [*path, str(key)])]
    if isinstance(node, list):
        return [m for i, value in enumerate(node) for m in _non_finite(value, [*path, str(i)])]
    if isinstance(node, float) and not math.isfinite(node):
        return [f"setting `{'.'.join(path)}` = {node} is not a finite number; give a finite value."]
    return []


def variant_block(config: dict, kind: str, variant: str) -> dict:
    """An ablation variant's experiment block: the main one, the ablation's `base` merged onto
    it, then the variant's definition."""
    ablation = config[ablation_key(kind)]
    base = merged(config[kind], ablation["base"])
    return merged(base, ablation["definitions"][variant])


def merged(base: dict, overrides: dict) -> dict:
    """A deep copy of `base` with the nested dict `overrides` merged in (as Snakemake merges
    config files: dicts key by key, anything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
