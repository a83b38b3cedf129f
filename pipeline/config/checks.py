"""Checks of the configuration the schema cannot state (they relate two settings), and
`validate_config`, which runs the schema's and these and names every setting at fault."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

from jsonschema import Draft202012Validator

from pipeline.config.datasets import format_number
from pipeline.config.runs import MAX_SAVED_POLICIES, OFFLINE_SELECTION_VARIANT, saved_policy_count
from pipeline.config.schema import (
    ABLATION_EXPERIMENTS,
    PATH_STUDIES,
    SCHEMA_PATH,
    ConfigError,
    _describe,
    _non_finite,
    ablation_key,
    apply_defaults,
    coerce_to_schema,
    load_schema,
    merged,
    variant_block,
)


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
    sizes = {f"{kind}.data.{key}": data[key] for key in ("n_train", "n_desired", "n_test")}
    for i, entry in enumerate(config[kind].get("scaling_sweep", [])):  # the Transformer's only
        sizes[f"{kind}.scaling_sweep[{i}].n_train"] = entry["n_train"]
    if kind == "transformer":  # the scale study's points train with the Transformer's processes
        scale = config["transformer_scale"]
        base = merged(data, scale["base"].get("data", {}))
        sizes |= {
            f"transformer_scale.base.data.{key}": base[key]
            for key in ("n_train", "n_desired", "n_test")
            if base[key] != data[key]
        }
        sizes |= {f"transformer_scale.points.{i}.n_train": point["n_train"]
                  for i, point in enumerate(scale["points"])}  # fmt: skip
    smallest = min(sizes, key=sizes.get)
    if processes > sizes[smallest]:
        errors.append(
            f"setting `{kind}.resources.processes` = {processes}: more processes than examples "
            f"to share among them (`{smallest}` = {sizes[smallest]}); lower it, or raise "
            f"`{smallest}` to at least {processes} (each process needs one)"
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


def _step_size_problems(config: dict, kind: str) -> list[str]:
    """Each step of `policy.step_size_sweep` is a run of its own: one equal to the main run's
    step would train the main run a second time, and one listed twice a run twice."""
    policy = config[kind]["policy"]
    key = f"{kind}.policy.step_size_sweep"
    problems = []
    for i, eps in enumerate(policy["step_size_sweep"]):
        if eps == policy["step_size"]:
            problems.append(
                f"setting `{key}` lists {format_number(eps)}, the main run's own "
                f"`{kind}.policy.step_size`: the main run is that run; drop it from the sweep."
            )
        elif eps in policy["step_size_sweep"][:i]:
            problems.append(f"setting `{key}` lists {format_number(eps)} twice; drop one.")
    return problems


def _scale_name_problems(config: dict) -> list[str]:
    """Two (T, N, V) settings of the sweep and `transformer_scale.points` with other policy
    epochs: their scale runs at a seed other than the main one would share one name."""
    scale = config["transformer_scale"]
    seeds = [s for s in scale["seeds"] if s != config["seed"]]
    entries = [
        (f"transformer.scaling_sweep.{i}", p)
        for i, p in enumerate(config["transformer"]["scaling_sweep"])
    ]
    entries += [(f"transformer_scale.points.{i}", p) for i, p in enumerate(scale["points"])]
    problems, seen = [], {}
    for key, point in entries:
        tnv = (point["steps"], point["n_train"], point["vocab_size"])
        first = seen.setdefault(tnv, (key, point))
        if seeds and first[1].get("policy_epochs") != point.get("policy_epochs"):
            problems.append(
                f"settings `{first[0]}` and `{key}` have the same (T, N, V) = {tnv} but other "
                f"policy epochs: their `transformer_scale` runs at seed {seeds[0]} would share "
                "one name; change one's T, N or V, or drop it."
            )
    return problems  # fmt: skip


def _minibatch_problems(config: dict) -> list[str]:
    """`minibatch_online`: the batches fit the training set, B > b, the evaluations divide T."""
    block = config.get("minibatch_online")
    if block is None:
        return []
    data, b, problems = config["transformer"]["data"], block["batch_size"], []
    n = data["n_train"]
    clean = n - int(round(data["perturbed_fraction"] * n))
    if block["steps"] % block["eval_every"]:
        problems.append(
            f"`minibatch_online.eval_every` = {block['eval_every']} does not divide "
            f"`minibatch_online.steps` = {block['steps']}: the curves' AR is read on an evenly "
            "spaced grid of steps; make steps a multiple of eval_every."
        )
    if block["warmup"] > block["steps"]:
        problems.append(
            f"`minibatch_online.warmup` = {block['warmup']} is longer than `minibatch_online."
            f"steps` = {block['steps']}: lower warmup."
        )
    if block["desired_batch"] is not None and block["desired_batch"] > data["n_desired"]:
        problems.append(
            f"`minibatch_online.desired_batch` = {block['desired_batch']} exceeds the "
            f"`transformer.data.n_desired` = {data['n_desired']} desired examples: lower it, or "
            "null for the whole desired set."
        )
    if "online_select" in block["policies"]:
        bad = [c for c in block["candidate_batch"] if not b < c <= n]
        if bad:
            problems.append(
                f"`minibatch_online.candidate_batch` {bad}: each B must exceed `minibatch_online."
                f"batch_size` = {b} and be at most `transformer.data.n_train` = {n}."
            )
    pools = {"the training set": n}
    if "clean_only" in block["references"]:
        pools["clean_only's clean examples"] = clean
    if "offline_selection" in block["references"]:
        pools["offline_selection's kept examples"] = int(round(block["offline_fraction"] * n))
        if OFFLINE_SELECTION_VARIANT not in config["transformer_ablation"]["definitions"]:
            problems.append(
                "`minibatch_online.references` lists offline_selection, whose scores come from "
                f"`transformer_ablation.definitions.{OFFLINE_SELECTION_VARIANT}`, which is not "
                "defined: define it (config.yaml has it) or drop offline_selection."
            )
    for pool, size in pools.items():
        if b > size:
            problems.append(
                f"`minibatch_online.batch_size` = {b} exceeds the {size} examples of {pool} "
                "that batches are drawn from: lower it (or `minibatch_online.references`, "
                "`offline_fraction`, `transformer.data.n_train`)."
            )
    return problems


def _cross_setting_problems(config: dict) -> list[str]:
    """Rules the schema cannot state: they relate two settings."""
    problems = [m for kind in ("perceptron", "transformer") for m in _process_errors(config, kind)]
    problems += [
        m
        for kind in ("perceptron", "transformer")
        for m in _validation_problems(config[kind], kind)
    ]
    problems += _desired_base_problems(config["transformer"], "transformer")
    problems += [
        m for kind in ("perceptron", "transformer") for m in _step_size_problems(config, kind)
    ]
    problems += _scale_name_problems(config)
    problems += _minibatch_problems(config)
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


def validate_config(
    config: dict, schema_path: Path = SCHEMA_PATH, command_line: dict | None = None
) -> None:
    """Coerce string values to the schema's types and fill in the schema's defaults (in place),
    then raise `ConfigError` listing every invalid, missing or unknown setting by its full
    name. `command_line`: Snakemake's `--config`, whose strings are converted where those of a
    config file are refused (`coerce_to_schema`)."""
    messages = coerce_to_schema(config, schema_path, command_line) + _non_finite(config, [])
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
