"""The configuration: validation with errors that name the setting, and the runs it defines.

A run ("experiment" in paths) is one model, data set, seed, training setting and
policy-optimisation setting. `perceptron` and `transformer` are the paper's two;
`<experiment>-eps<ε>` are the extra policy step sizes of `<experiment>.policy.step_size_sweep`,
`transformer-T<T>-N<N>-V<V>` the Table 2 sweep, `<experiment>-<variant>-s<seed>` the runs of an
experiment's ablation (`perceptron_ablation`, `transformer_ablation`; the Perceptron's seeds study
`perceptron_seeds` reuses its ablation's runs), `transformer-T<T>-N<N>-V<V>-s<seed>` the points of
the scaling extension `transformer_scale`, and `transformer-s<seed>` the online-policy
comparison's Transformer at another seed (`online.seeds`).
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


#: The online policies (pipeline/policy/online.py), in table order: results/<run>/dumps/<name>/.
ONLINE_POLICIES = ["online_greedy", "online_positive", "online_softmax"]
#: The online policies with a τ chosen on the held-out desired examples (`online.tau_grid`).
TAU_RULES = ["online_greedy", "online_softmax"]

#: The experiments with an ablation block `<experiment>_ablation` (README "Fidelity").
ABLATION_EXPERIMENTS = ("perceptron", "transformer")


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
#: DAG lists them all.
MAX_SAVED_POLICIES = 1000

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


def coerce_to_schema(config: dict, schema_path: Path = SCHEMA_PATH) -> list[str]:
    """Convert, in place, values given as strings to the type the schema declares for them.

    Returns one message per value that does not parse as that type; keys the schema does not
    know are left to the validation, which names them.
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
        value, expected = _parse_scalar(node, _types(schema))
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


def saved_policy_count(epochs: int, save_every: int) -> int:
    """How many policies `saved_epochs` returns, without listing them."""
    return epochs // save_every + 1 + (1 if epochs % save_every else 0)


def _least_save_every(epochs: int) -> int:
    every = max(1, math.ceil(epochs / (MAX_SAVED_POLICIES - 1)))
    while saved_policy_count(epochs, every) > MAX_SAVED_POLICIES:
        every += 1
    return every


def run_processes(resources: dict) -> int:
    """P, the processes of a training job: `resources.processes`, or when that is 0 (automatic)
    one per GPU of `resources.gpus`, at least one."""
    return resources["processes"] or max(1, resources["gpus"])


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
    for i, entry in enumerate(config[kind].get("scaling_sweep", [])):  # the Transformer's only
        sizes[f"scaling_sweep[{i}].n_train"] = entry["n_train"]
    smallest = min(sizes, key=sizes.get)
    if processes > sizes[smallest]:
        errors.append(
            f"setting `{kind}.resources.processes` = {processes}: more processes than examples "
            f"to share among them (`{kind}.{smallest}` = {sizes[smallest]}); lower it"
        )
    return errors


def validation_split(n_desired: int, fraction: float) -> tuple[int, int]:
    """(examples J is computed on, held-out examples) of a desired set of K = `n_desired` with
    `policy.selection: validation`: round(fraction · K) held out, at least one on each side."""
    held_out = min(max(1, round(fraction * n_desired)), n_desired - 1)
    return n_desired - held_out, held_out


def _validation_problems(block: dict, name: str) -> list[str]:
    """`selection: validation` needs a desired set that leaves each process examples on both
    sides of the split (J's and the held-out part)."""
    policy = block["policy"]
    if policy["selection"] != "validation":
        return []
    k, processes = block["data"]["n_desired"], run_processes(block["resources"])
    fraction = policy["validation_fraction"]
    parts = validation_split(k, fraction) if k >= 2 else (k, 0)
    if min(parts) >= processes:
        return []
    least = next(n for n in range(2, 10**9) if min(validation_split(n, fraction)) >= processes)
    return [
        f"`{name}.policy.selection: validation` holds out part of the desired set, but "
        f"`{name}.data.n_desired` = {k} with `validation_fraction` = {fraction:g} leaves "
        f"{parts[0]} example(s) for J and {parts[1]} held out, for {processes} process(es) "
        f"that each need one of both: raise n_desired to at least {least}, or use "
        "`selection: last`."
    ]


def _desired_base_problems(block: dict, name: str) -> list[str]:
    """`data.n_desired_base` draws the other splits as with that many desired stories: at most
    n_desired of them (the Transformer's only)."""
    data = block["data"]
    if data["n_desired_base"] <= data["n_desired"]:
        return []
    return [
        f"`{name}.data.n_desired_base` = {data['n_desired_base']} exceeds `{name}.data.n_desired` "
        f"= {data['n_desired']}: the base draw's desired stories are part of the desired set; "
        "lower it to at most n_desired (0: draw as n_desired itself)."
    ]


def _cross_setting_problems(config: dict) -> list[str]:
    """Rules the schema cannot state: they relate two settings."""
    problems = [m for kind in ("perceptron", "transformer") for m in _process_errors(config, kind)]
    problems += [
        m
        for kind in ("perceptron", "transformer")
        for m in _validation_problems(config[kind], kind)
    ]
    problems += _desired_base_problems(config["transformer"], "transformer")
    for kind in ABLATION_EXPERIMENTS:
        ablation = config[ablation_key(kind)]
        for variant in ablation["variants"]:
            if variant in ablation["definitions"]:
                block = variant_block(config, kind, variant)
                name = f"{ablation_key(kind)}.definitions.{variant}"
                problems += _validation_problems(block, name)
                if kind == "transformer" and block["data"] != config["transformer"]["data"]:
                    problems += _desired_base_problems(block, name)  # the main block's: above
    for kind in ("perceptron", "transformer"):
        policy = config[kind]["policy"]
        runs = [(f"{kind}.policy.epochs", policy["epochs"])]
        if kind == "transformer":
            runs += [
                (f"transformer.scaling_sweep.{i}.policy_epochs", entry["policy_epochs"])
                for i, entry in enumerate(config[kind]["scaling_sweep"])
                if "policy_epochs" in entry
            ]
        every = policy["save_every"]
        for key, epochs in runs:
            count = saved_policy_count(epochs, every)
            if count > MAX_SAVED_POLICIES:
                problems.append(
                    f"`{key}` = {epochs} with `{kind}.policy.save_every` = {every} saves {count} "
                    f"policies, each evaluated by a job of its own; at most {MAX_SAVED_POLICIES}: "
                    f"raise save_every to at least {_least_save_every(epochs)} "
                    "or lower the epochs."
                )
    model = config["transformer"]["model"]
    if model["n_embd"] % model["n_head"]:
        divisors = [d for d in range(1, model["n_embd"] + 1) if model["n_embd"] % d == 0]
        problems.append(
            f"`transformer.model.n_head` = {model['n_head']} does not divide "
            f"`transformer.model.n_embd` = {model['n_embd']} (each head gets n_embd / n_head "
            f"dimensions); use one of {', '.join(map(str, divisors[:12]))}"
            f"{', …' if len(divisors) > 12 else ''}."
        )
    return problems


def validate_config(config: dict, schema_path: Path = SCHEMA_PATH) -> None:
    """Coerce string values to the schema's types and fill in the schema's defaults (in place),
    then raise `ConfigError` listing every invalid, missing or unknown setting by its full
    name."""
    messages = coerce_to_schema(config, schema_path) + _non_finite(config, [])
    flagged = {m.split("`")[1] for m in messages}  # settings already explained above
    schema = load_schema(schema_path)
    apply_defaults(config, schema)
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    errors = [e for e in errors if ".".join(str(p) for p in e.absolute_path) not in flagged]
    messages += [line for error in errors for line in _describe(error, schema)]
    if not messages:
        messages = _cross_setting_problems(config) + _ablation_messages(config, schema)
    if messages:
        raise ConfigError(
            "invalid configuration:\n  - "
            + "\n  - ".join(messages)
            + "\nFix it in config.yaml, the preset (--configfile) or --config (nested values "
            "as YAML: --config perceptron='{train: {eta: 0.05}}')."
        )


def at_grid_end(tau: float, grid: list[float]) -> bool:
    """Whether τ was chosen at an end of a grid of several candidates (a wider grid might choose
    further out): logged by the online job, marked * in the online tables."""
    return len(grid) > 1 and tau in (min(grid), max(grid))


def with_steps(settings: dict, steps: int) -> dict:
    """A run's settings with T = `steps`, everything else shared."""
    return {**settings, "train": {**settings["train"], "steps": steps}}


def policy_name(epoch: int) -> str:
    """The name of the policy saved at a policy-optimisation epoch: epoch0025, epoch10000."""
    return f"epoch{epoch:04d}"


def _undefined_variants(config: dict, key: str, variants: list[str], kind: str) -> list[str]:
    """Messages for the variants listed at `key` that `<kind>_ablation.definitions` lacks."""
    definitions = config[ablation_key(kind)]["definitions"]
    messages = []
    for name in variants:
        if name not in definitions:
            close = difflib.get_close_matches(name, list(definitions), n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            messages.append(
                f"setting `{key}` lists `{name}`, which `{ablation_key(kind)}.definitions` "
                f"does not define.{hint} Known variants: {', '.join(definitions)}."
            )
    return messages


def _ablation_messages(config: dict, schema: dict) -> list[str]:
    """Errors of the ablations' variants: each listed variant must be defined, and the block it
    makes must be valid (errors named `<experiment>_ablation.definitions.<variant>...`)."""
    messages = []
    for kind in ABLATION_EXPERIMENTS:
        key = ablation_key(kind)
        ablation = config[key]
        messages += _undefined_variants(config, f"{key}.variants", ablation["variants"], kind)
        block_schema = {**schema["properties"][kind], "$defs": schema["$defs"]}
        for name, overrides in ablation["definitions"].items():
            if "step_size_sweep" in (overrides.get("policy") or {}):
                messages.append(
                    f"setting `{key}.definitions.{name}.policy.step_size_sweep`: a variant is "
                    "one run per seed; define one variant per step size instead "
                    "(policy: {step_size: ...})."
                )
            block = variant_block(config, kind, name)
            for error in Draft202012Validator(block_schema).iter_errors(block):
                error.path.appendleft(kind)  # described as the experiment's setting, then renamed
                messages += [
                    line.replace(f"`{kind}", f"`{key}.definitions.{name}")
                    for line in _describe(error, schema)
                ]
    for study in PATH_STUDIES:
        for kind in ABLATION_EXPERIMENTS:
            key = f"{study}.{kind}.paths"
            messages += _undefined_variants(config, key, config[study][kind]["paths"], kind)
    for kind in ABLATION_EXPERIMENTS:
        paths = config["policy_frontier"][kind]["paths"]
        messages += [
            f"setting `policy_frontier.law_paths` lists `{path}`, which is not one of "
            f"`policy_frontier.{kind}.paths` ({', '.join(paths)}): add it there or drop it."
            for path in config["policy_frontier"]["law_paths"]
            if path not in paths
        ]
    seeds = config["perceptron_seeds"]
    messages += _undefined_variants(
        config, "perceptron_seeds.variants", seeds["variants"], "perceptron"
    )
    return messages


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


def saved_epochs(epochs: int, save_every: int) -> list[int]:
    """Policy-optimisation epochs whose policy is saved: 0, every `save_every`, and the last."""
    count = saved_policy_count(epochs, save_every)
    if count > MAX_SAVED_POLICIES:
        raise ConfigError(
            f"{epochs} policy epochs with save_every = {save_every} saves {count} policies; "
            f"at most {MAX_SAVED_POLICIES}"
        )
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
    for entry in main["scaling_sweep"]:
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


def step_size_runs(config: dict, kind: str) -> list[str]:
    """The runs of an experiment's `policy.step_size_sweep`: <kind>-eps<ε>, one per step size."""
    sweep = config[kind]["policy"]["step_size_sweep"]
    return [f"{kind}-eps{_format_number(eps)}" for eps in sweep]


def run_names(config: dict) -> list[str]:
    """The runs of `rule all`: the paper's two, their step-size variants, the Table 2 sweep."""
    names = [e for e in config["experiments"] if e in ("perceptron", "transformer")]
    for kind in list(names):
        names += [n for n in step_size_runs(config, kind) if n not in names]
    if "transformer" in names:
        names += [n for n in scaling_sweep_runs(config) if n not in names]
    return names


def ablation_runs(
    config: dict,
    kind: str = "perceptron",
    variants: list[str] | None = None,
    seeds: list[int] | None = None,
) -> list[tuple[str, int, str]]:
    """(variant, seed, run) of an experiment's ablation, in table order (variants, then seeds);
    `variants` and `seeds` default to the ablation block's.

    The run is `<kind>-<variant>-s<seed>`, or `<kind>` itself where the variant at that seed is
    the main run (same settings, the main seed): the main run is not done twice."""
    ablation = config[ablation_key(kind)]
    out = []
    for variant in ablation["variants"] if variants is None else variants:
        same = has_main_settings(config, kind, variant)
        for seed in ablation["seeds"] if seeds is None else seeds:
            run = kind if same and seed == config["seed"] else f"{kind}-{variant}-s{seed}"
            out.append((variant, seed, run))
    return out


def has_main_settings(config: dict, kind: str, variant: str) -> bool:
    """Whether an ablation variant's settings are the main run's (its run at the main seed is
    the main run)."""
    return variant_block(config, kind, variant) == config[kind]


def main_variant(config: dict, kind: str) -> str | None:
    """The first variant of the experiment's ablation with the main run's settings, or None:
    the variant the at-a-glance page judges."""
    variants = config[ablation_key(kind)]["variants"]
    return next((v for v in variants if has_main_settings(config, kind, v)), None)


def online_seeds(config: dict) -> list[int]:
    """The seeds of the online-policy comparison: `online.seeds`, or the ablation's."""
    return list(config["online"]["seeds"] or config["perceptron_ablation"]["seeds"])


def online_runs(config: dict, kind: str) -> list[tuple[int, str]]:
    """(seed, run) of the online-policy comparison of experiment `kind`: the main run at the
    main seed; at another seed the Perceptron ablation's `perceptron-default-s<seed>` and for
    the Transformer `transformer-s<seed>` (its data and θ_0 drawn with that seed)."""
    out = []
    for seed in online_seeds(config):
        if seed == config["seed"]:
            out.append((seed, kind))
        else:
            out.append((seed, f"{kind}-default-s{seed}" if kind == "perceptron" else
                        f"{kind}-s{seed}"))  # fmt: skip
    return out


def warm_start_run(config: dict, settings: dict) -> str:
    """The run whose online job (`results/<run>/online/costs.json`) gives the τ of a warm start
    (`policy.init: online_*`): the online comparison's run with the same data, model, training
    and held-out split, so that no τ is searched twice; without one, the run itself."""

    def key(block: dict) -> tuple:
        split = block["policy"]["validation_fraction"]
        return block["data_name"], block["model"], block["train"], split

    for _, run in online_runs(config, settings["kind"]):
        if key(run_settings(config, run)) == key(settings):
            return run
    return settings["name"]


def online_near_optimal_runs(config: dict, kind: str) -> list[tuple[int, str]]:
    """The (seed, run) of `online_runs` whose near-optimal policy the comparison shows: every
    one for the experiments of `online.optimise_other_seeds`, else the main seed's alone."""
    runs = online_runs(config, kind)
    if kind in config["online"]["optimise_other_seeds"]:
        return runs
    return [(seed, run) for seed, run in runs if seed == config["seed"]]


def perceptron_seeds_runs(config: dict) -> list[tuple[str, int, str]]:
    """(variant, seed, run) of `perceptron_seeds`: Perceptron ablation variants over more seeds,
    the same run names as the ablation's (its seeds are shared)."""
    block = config["perceptron_seeds"]
    return ablation_runs(config, "perceptron", block["variants"], block["seeds"])


#: The studies whose paths are ablation variants over seeds (`<study>.<experiment>.paths`).
PATH_STUDIES = ("policy_frontier", "optimum_k")


def study_runs(config: dict, study: str, kind: str) -> list[tuple[str, int, str]]:
    """(path, seed, run) of `policy_frontier` or `optimum_k` for one experiment: its paths are
    ablation variants, so the run names (and runs) are the ablation's."""
    block = config[study][kind]
    return ablation_runs(config, kind, block["paths"], block["seeds"])


def scale_run_name(point: dict, seed: int) -> str:
    """A run of `transformer_scale`: transformer-T<steps>-N<n_train>-V<vocab_size>-s<seed>."""
    return f"{sweep_run_name(point)}-s{seed}"


def scale_runs(config: dict) -> list[tuple[dict, int, str]]:
    """(point, seed, run) of `transformer_scale`: the Table 2 sweep's settings and the extra
    points, each over the block's seeds (points, then seeds)."""
    block = config["transformer_scale"]
    main = config["transformer"]
    sweep = main["scaling_sweep"]
    shared = dict(zip(map(sweep_run_name, sweep), scaling_sweep_runs(config), strict=True))
    out = []
    for point in list(sweep) + list(block["points"]):
        same_as_sweep = point in sweep and _scale_point_block(
            main, block["base"], point
        ) == _at_sweep_point(copy.deepcopy(main), point)
        for seed in block["seeds"]:
            run = scale_run_name(point, seed)
            if seed == config["seed"] and same_as_sweep:
                run = shared[sweep_run_name(point)]  # the sweep's own run (or the main run)
            out.append((point, seed, run))
    return out


def _scale_point_block(block: dict, base: dict, point: dict) -> dict:
    """The transformer block of a `transformer_scale` point: `block` with the study's `base`
    merged in, then the point's (T, N, V) and, if the point gives them, its policy epochs (a
    point's own setting is the more specific one)."""
    return _at_sweep_point(merged(block, base), point)


def all_run_names(config: dict) -> list[str]:
    """Every run the configuration defines: those of `rule all`, the ablations', the Perceptron
    seeds', the scale extension's and the online comparison's."""
    names = run_names(config)
    extra = [r for kind in ABLATION_EXPERIMENTS for _, _, r in ablation_runs(config, kind)]
    extra += [r for _, _, r in perceptron_seeds_runs(config)]
    extra += [r for _, _, r in scale_runs(config)]
    extra += [
        r for study in PATH_STUDIES for kind in ABLATION_EXPERIMENTS
        for _, _, r in study_runs(config, study, kind)
    ]  # fmt: skip
    extra += [r for kind in ("perceptron", "transformer") for _, r in online_runs(config, kind)]
    return names + [r for r in dict.fromkeys(extra) if r not in names]


def dataset_name(config: dict, settings: dict) -> str:
    """Directory under results/data/ of a run's data; runs with equal data and seed share it."""
    if settings["kind"] == "perceptron":
        name = "perceptron"
        if settings["seed"] != config["seed"]:
            name += f"-s{settings['seed']}"
        main = config["perceptron"]["data"]
        for key, value in sorted(settings["data"].items()):
            if value != main[key]:
                name += f"-{key}{_format_number(value)}"
        return name
    main = config["transformer"]["data"]
    seed = f"-s{settings['seed']}" if settings["seed"] != config["seed"] else ""
    if settings["data"] == main:
        return "tinystories" + seed
    name = f"tinystories-N{settings['data']['n_train']}-V{settings['data']['vocab_size']}"
    for key, value in sorted(settings["data"].items()):  # other sizes, e.g. n_desired
        if key not in ("n_train", "vocab_size") and isinstance(value, int | float):
            name += f"-{key}{_format_number(value)}" if value != main[key] else ""
    return name + seed


def _unknown_run(config: dict, name: str) -> ConfigError:
    """The error for a run name the configuration does not define, listing those it does."""
    return ConfigError(f"unknown run `{name}`; runs of this configuration: {all_run_names(config)}")


_ABLATION_RUN = re.compile(r"(?P<variant>[a-z][a-z0-9_]*)-s(?P<seed>\d+)")
_STEP_SIZE_RUN = re.compile(r"eps(?P<eps>[0-9][0-9.e+-]*)")
_SCALE_RUN = re.compile(r"T(?P<steps>\d+)-N(?P<n_train>\d+)-V(?P<vocab_size>\d+)-s(?P<seed>\d+)")


def run_settings(config: dict, name: str) -> dict:
    """The settings of one run: its experiment block with `kind`, `name`, `seed` and
    `data_name` added."""
    kind, _, variant = name.partition("-")
    if kind not in ("perceptron", "transformer"):
        raise _unknown_run(config, name)
    root = _schema(SCHEMA_PATH)  # a validated config has every default; one read directly may not
    block = apply_defaults(copy.deepcopy(config[kind]), root["properties"][kind], root)
    block.pop("scaling_sweep", None)  # the Transformer's only
    block["policy"].pop("step_size_sweep")
    seed = config["seed"]
    step_size = _STEP_SIZE_RUN.fullmatch(variant)
    ablation = _ABLATION_RUN.fullmatch(variant)
    scale = _SCALE_RUN.fullmatch(variant) if kind == "transformer" else None
    if step_size is not None and variant in {
        name.partition("-")[2] for name in step_size_runs(config, kind)
    }:
        block["policy"]["step_size"] = float(step_size["eps"])
    elif kind == "transformer" and re.fullmatch(r"s\d+", variant):  # online_runs()
        if name not in all_run_names(config):
            raise _unknown_run(config, name)
        seed = int(variant[1:])
    elif ablation is not None:
        if ablation["variant"] not in config[ablation_key(kind)]["definitions"]:
            raise _unknown_run(config, name)
        block = apply_defaults(
            variant_block(config, kind, ablation["variant"]), root["properties"][kind], root
        )
        block.pop("scaling_sweep", None)
        block["policy"].pop("step_size_sweep")
        seed = int(ablation["seed"])
    elif scale is not None:
        match = next((p for p, s, run in scale_runs(config) if run == name), None)
        if match is None:
            raise _unknown_run(config, name)
        block = _scale_point_block(block, config["transformer_scale"]["base"], match)
        seed = int(scale["seed"])
    elif kind == "perceptron" and variant:
        raise _unknown_run(config, name)
    elif variant:
        entries = config[kind]["scaling_sweep"]
        match = next(
            (e for e, run in zip(entries, scaling_sweep_runs(config), strict=True) if run == name),
            None,
        )
        if match is None:
            raise _unknown_run(config, name)
        block = _at_sweep_point(block, match)
    block.update(kind=kind, name=name, seed=seed)
    block["data_name"] = dataset_name(config, block)
    return block


def _at_sweep_point(block: dict, point: dict) -> dict:
    """An experiment block at a (T, N, V[, policy epochs]) point of a scaling sweep."""
    block["train"]["steps"] = point["steps"]
    block["data"]["n_train"] = point["n_train"]
    block["data"]["vocab_size"] = point["vocab_size"]
    block["policy"]["epochs"] = point.get("policy_epochs", block["policy"]["epochs"])
    return block


def dataset_run(config: dict, name: str) -> dict:
    """The settings of a run that uses the data set `name` (its `data` block and `seed` define
    the data set: every run using it has the same)."""
    for run in all_run_names(config):
        settings = run_settings(config, run)
        if settings["data_name"] == name:
            return settings
    raise ConfigError(f"no run of this configuration uses the data set `{name}`")
