"""The run registry: every run a configuration defines, built once as `{name: RunSpec}`.

A run ("experiment" in paths) is one model, data set, seed, training setting and
policy-optimisation setting. `perceptron` and `transformer` are the paper's two;
`<experiment>-eps<ε>` are the extra policy step sizes of `<experiment>.policy.step_size_sweep`,
`transformer-T<T>-N<N>-V<V>` the Table 2 sweep, `<experiment>-<variant>-s<seed>` the runs of an
experiment's ablation (`perceptron_ablation`, `transformer_ablation`; the Perceptron's seeds study
`perceptron_seeds` and the optimum's studies reuse its ablation's runs),
`transformer-T<T>-N<N>-V<V>-s<seed>` the points of the scaling extension `transformer_scale`, and
`transformer-s<seed>` the online-policy comparison's Transformer at another seed
(`online.seeds`). A setting equal to the main run's (or the sweep's) is that run, not a copy.

This module is the only code that makes a run's name (`run_name`) and the only code that finds a
run's settings from it: by looking the name up in the registry, never by decoding it.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import PurePosixPath

from pipeline.config.datasets import dataset_name, format_number, story_file_versions
from pipeline.config.schema import (
    ABLATION_EXPERIMENTS,
    PATH_STUDIES,
    SCHEMA_PATH,
    ConfigError,
    _schema,
    ablation_key,
    apply_defaults,
    merged,
    variant_block,
)

#: The online policies (pipeline/policy/online.py), in table order: results/<run>/dumps/<name>/.
ONLINE_POLICIES = ["online_greedy", "online_positive", "online_softmax"]
#: The online policies with a τ chosen on the held-out desired examples (`online.tau_grid`).
TAU_RULES = ["online_greedy", "online_softmax"]
#: The most policies one run may save: each is evaluated by a training job of its own, and the
#: DAG lists them all.
MAX_SAVED_POLICIES = 1000
KINDS = ("perceptron", "transformer")


def saved_policy_count(epochs: int, save_every: int) -> int:
    """How many policies `saved_epochs` returns, without listing them."""
    return epochs // save_every + 1 + (1 if epochs % save_every else 0)


def saved_epochs(epochs: int, save_every: int) -> list[int]:
    """Policy-optimisation epochs whose policy is saved: 0, every `save_every`, and the last."""
    count = saved_policy_count(epochs, save_every)
    if count > MAX_SAVED_POLICIES:
        raise ConfigError(
            f"{epochs} policy epochs with save_every = {save_every} saves {count} policies; "
            f"at most {MAX_SAVED_POLICIES}"
        )
    return sorted(set(range(0, epochs + 1, save_every)) | {epochs})


def policy_name(epoch: int) -> str:
    """The name of the policy saved at a policy-optimisation epoch: epoch0025, epoch10000."""
    return f"epoch{epoch:04d}"


def at_grid_end(tau: float, grid: list[float]) -> bool:
    """Whether τ was chosen at an end of a grid of several candidates (a wider grid might choose
    further out): logged by the online job, marked * in the online tables."""
    return len(grid) > 1 and tau in (min(grid), max(grid))


def with_steps(settings: dict, steps: int) -> dict:
    """A run's settings with T = `steps`, everything else shared."""
    return {**settings, "train": {**settings["train"], "steps": steps}}


# --- names ---------------------------------------------------------------------------------------

#: What makes a run, beside its experiment and seed: the main run, a step size of the sweep, a
#: Table 2 setting, an ablation variant, a scale point, or the main settings at another seed.
FAMILIES = ("main", "step_size", "sweep", "ablation", "scale", "online")


def point_label(point: dict) -> str:
    """A (T, N, V) setting as it appears in a name: T<steps>-N<n_train>-V<vocab_size>."""
    return f"T{point['steps']}-N{point['n_train']}-V{point['vocab_size']}"


def run_name(kind: str, family: str, label: str = "", seed: int | None = None) -> str:
    """The name of a run: the one place that makes one (module docstring)."""
    names = {
        "main": lambda: kind,
        "step_size": lambda: f"{kind}-eps{label}",
        "sweep": lambda: f"{kind}-{label}",
        "ablation": lambda: f"{kind}-{label}-s{seed}",
        "scale": lambda: f"{kind}-{label}-s{seed}",
        "online": lambda: f"{kind}-s{seed}",
    }
    return names[family]()


@dataclass(frozen=True)
class RunSpec:
    """One run: its name, experiment, seed, what made it (`family`, `label`: a variant, a step
    size, a (T, N, V) setting) and its settings (the experiment block with `kind`, `name`, `seed`
    and `data_name`; shared by every lookup, not to be modified)."""

    name: str
    kind: str
    seed: int
    family: str
    label: str
    settings: dict

    @property
    def data_name(self) -> str:
        return self.settings["data_name"]

    @property
    def directory(self) -> PurePosixPath:
        """results/<run>/: the run's policies, history, dumps and tables."""
        return PurePosixPath("results") / self.name

    @property
    def data_directory(self) -> PurePosixPath:
        """results/data/<data set>/: the run's data (shared by runs with the same)."""
        return PurePosixPath("results") / "data" / self.data_name

    def name_of(self, config: dict) -> str:
        """The name this run's kind, family, label and seed give (settings → name)."""
        return run_name(self.kind, self.family, self.label, self.seed)


def _block(config: dict, kind: str, variant: str | None = None) -> dict:
    """An experiment block with every default (a config read directly may lack some), without
    the keys that define further runs rather than this one."""
    root = _schema(SCHEMA_PATH)
    raw = config[kind] if variant is None else variant_block(config, kind, variant)
    block = apply_defaults(copy.deepcopy(raw), root["properties"][kind], root)
    block.pop("scaling_sweep", None)  # the Transformer's only
    block["policy"].pop("step_size_sweep", None)
    return block


def _at_sweep_point(block: dict, point: dict) -> dict:
    """An experiment block at a (T, N, V[, policy epochs]) point of a scaling sweep."""
    block["train"]["steps"] = point["steps"]
    block["data"]["n_train"] = point["n_train"]
    block["data"]["vocab_size"] = point["vocab_size"]
    block["policy"]["epochs"] = point.get("policy_epochs", block["policy"]["epochs"])
    return block


def _scale_point_block(block: dict, base: dict, point: dict) -> dict:
    """The transformer block of a `transformer_scale` point: `block` with the study's `base`
    merged in, then the point's (T, N, V) and, if the point gives them, its policy epochs (a
    point's own setting is the more specific one)."""
    return _at_sweep_point(merged(block, base), point)


# --- the runs of each study, in table order ------------------------------------------------------


def _sweep_identity(config: dict, entry: dict) -> tuple[str, str]:
    """(family, label) of a Table 2 setting: the main run when T, N, V and the policy epochs
    are the main run's, else a sweep run of its own."""
    main = config["transformer"]
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
    return ("main", "") if same else ("sweep", point_label(entry))


def sweep_run_name(entry: dict) -> str:
    """The run of one Table 2 setting: transformer-T<steps>-N<n_train>-V<vocab_size>."""
    return run_name("transformer", "sweep", point_label(entry))


def scaling_sweep_runs(config: dict) -> list[str]:
    """The runs of the Table 2 sweep, in config order; a setting equal to the main
    Transformer run's (T, N, V and policy epochs) is that run rather than a copy of it."""
    return [
        run_name("transformer", *_sweep_identity(config, entry))
        for entry in config["transformer"]["scaling_sweep"]
    ]


def step_size_runs(config: dict, kind: str) -> list[str]:
    """The runs of an experiment's `policy.step_size_sweep`: <kind>-eps<ε>, one per step size."""
    sweep = config[kind]["policy"]["step_size_sweep"]
    return [run_name(kind, "step_size", format_number(eps)) for eps in sweep]


def run_names(config: dict) -> list[str]:
    """The runs of `rule all`: the paper's two, their step-size variants, the Table 2 sweep."""
    names = [e for e in config["experiments"] if e in KINDS]
    for kind in list(names):
        names += [n for n in step_size_runs(config, kind) if n not in names]
    if "transformer" in names:
        names += [n for n in scaling_sweep_runs(config) if n not in names]
    return names


def has_main_settings(config: dict, kind: str, variant: str) -> bool:
    """Whether an ablation variant's settings are the main run's (its run at the main seed is
    the main run)."""
    return variant_block(config, kind, variant) == config[kind]


def _ablation_identity(config: dict, kind: str, variant: str, seed: int) -> tuple[str, str, int]:
    """(family, label, seed) of a variant's run at a seed: the main run where the variant has
    the main settings at the main seed (the main run is not done twice)."""
    if seed == config["seed"] and has_main_settings(config, kind, variant):
        return "main", "", seed
    return "ablation", variant, seed


def ablation_runs(
    config: dict,
    kind: str = "perceptron",
    variants: list[str] | None = None,
    seeds: list[int] | None = None,
) -> list[tuple[str, int, str]]:
    """(variant, seed, run) of an experiment's ablation, in table order (variants, then seeds);
    `variants` and `seeds` default to the ablation block's."""
    ablation = config[ablation_key(kind)]
    return [
        (variant, seed, run_name(kind, *_ablation_identity(config, kind, variant, seed)))
        for variant in (ablation["variants"] if variants is None else variants)
        for seed in (ablation["seeds"] if seeds is None else seeds)
    ]


def main_variant(config: dict, kind: str) -> str | None:
    """The first variant of the experiment's ablation with the main run's settings, or None:
    the variant the at-a-glance page judges."""
    variants = config[ablation_key(kind)]["variants"]
    return next((v for v in variants if has_main_settings(config, kind, v)), None)


def online_seeds(config: dict) -> list[int]:
    """The seeds of the online-policy comparison: `online.seeds`, or the ablation's."""
    return list(config["online"]["seeds"] or config["perceptron_ablation"]["seeds"])


def _online_identity(config: dict, kind: str, seed: int) -> tuple[str, str, int]:
    """The main run at the main seed; at another seed the Perceptron ablation's
    `perceptron-default-s<seed>` and for the Transformer `transformer-s<seed>`."""
    if seed == config["seed"]:
        return "main", "", seed
    return ("ablation", "default", seed) if kind == "perceptron" else ("online", "", seed)


def online_runs(config: dict, kind: str) -> list[tuple[int, str]]:
    """(seed, run) of the online-policy comparison of experiment `kind` (its data and θ_0 drawn
    with that seed)."""
    return [(s, run_name(kind, *_online_identity(config, kind, s))) for s in online_seeds(config)]


def online_near_optimal_runs(config: dict, kind: str) -> list[tuple[int, str]]:
    """The (seed, run) of `online_runs` whose near-optimal policy the comparison shows: every
    one for the experiments of `online.optimise_other_seeds`, else the main seed's alone."""
    runs = online_runs(config, kind)
    if kind in config["online"]["optimise_other_seeds"]:
        return runs
    return [(seed, run) for seed, run in runs if seed == config["seed"]]


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


def perceptron_seeds_runs(config: dict) -> list[tuple[str, int, str]]:
    """(variant, seed, run) of `perceptron_seeds`: Perceptron ablation variants over more seeds,
    the same run names as the ablation's (its seeds are shared)."""
    block = config["perceptron_seeds"]
    return ablation_runs(config, "perceptron", block["variants"], block["seeds"])


def study_runs(config: dict, study: str, kind: str) -> list[tuple[str, int, str]]:
    """(path, seed, run) of `policy_frontier` or `optimum_k` for one experiment: its paths are
    ablation variants, so the run names (and runs) are the ablation's."""
    block = config[study][kind]
    return ablation_runs(config, kind, block["paths"], block["seeds"])


def _scale_identity(config: dict, point: dict, seed: int) -> tuple[str, str, int]:
    """A `transformer_scale` point at a seed: the sweep's own run (or the main run) where the
    point is a sweep setting that the study's `base` leaves unchanged, at the main seed."""
    main, block = config["transformer"], config["transformer_scale"]
    sweep = main["scaling_sweep"]
    unchanged = _scale_point_block(main, block["base"], point) == _at_sweep_point(
        copy.deepcopy(main), point
    )
    if seed == config["seed"] and point in sweep and unchanged:
        return (*_sweep_identity(config, point), seed)
    return "scale", point_label(point), seed


def scale_run_name(point: dict, seed: int) -> str:
    """A run of `transformer_scale`: transformer-T<steps>-N<n_train>-V<vocab_size>-s<seed>."""
    return run_name("transformer", "scale", point_label(point), seed)


def scale_runs(config: dict) -> list[tuple[dict, int, str]]:
    """(point, seed, run) of `transformer_scale`: the Table 2 sweep's settings and the extra
    points, each over the block's seeds (points, then seeds)."""
    block = config["transformer_scale"]
    points = list(config["transformer"]["scaling_sweep"]) + list(block["points"])
    return [
        (point, seed, run_name("transformer", *_scale_identity(config, point, seed)))
        for point in points
        for seed in block["seeds"]
    ]


# --- the registry --------------------------------------------------------------------------------


#: The blocks that define runs beyond the main ones. A partial config (experiment blocks with a
#: preset merged in, as the benchmark and the device check pass) has only the main runs.
_STUDY_BLOCKS = (*map(ablation_key, KINDS), "perceptron_seeds", "transformer_scale",
                 *PATH_STUDIES, "online")  # fmt: skip


def _identities(config: dict) -> list[tuple[str, str, str, int, dict]]:
    """(kind, family, label, seed, block) of every run, those of `rule all` first, then the
    ablations', the Perceptron seeds', the scale extension's, the optimum's, the online
    comparison's, and last the runs no target asks for but a rule may (the main runs, every
    step size and sweep setting)."""
    seed = config["seed"]
    out = []

    def main(kind: str) -> None:
        out.append((kind, "main", "", seed, _block(config, kind)))

    def steps(kind: str) -> None:
        for eps in config[kind]["policy"].get("step_size_sweep", []):
            block = _block(config, kind)
            block["policy"]["step_size"] = eps
            out.append((kind, "step_size", format_number(eps), seed, block))

    def sweep() -> None:
        for entry in config["transformer"].get("scaling_sweep", []):
            family, label = _sweep_identity(config, entry)
            out.append(("transformer", family, label, seed,
                        _at_sweep_point(_block(config, "transformer"), entry)))  # fmt: skip

    def ablation(kind: str, variants: list[str], seeds: list[int]) -> None:
        definitions = config[ablation_key(kind)]["definitions"]
        for variant in (v for v in variants if v in definitions):  # else unknown when asked
            for s in seeds:
                family, label, s = _ablation_identity(config, kind, variant, s)
                out.append((kind, family, label, s, _block(config, kind, variant)))

    kinds = [k for k in KINDS if k in config]  # a config of one experiment block: its runs
    listed = [e for e in config.get("experiments", []) if e in kinds]
    for kind in listed:
        main(kind)
    for kind in listed:
        steps(kind)
    if "transformer" in listed:
        sweep()
    if "experiments" in config and all(key in config for key in _STUDY_BLOCKS):  # a full one
        _study_identities(config, ablation, out)
    for kind in kinds:
        main(kind)
        steps(kind)
    if "transformer" in kinds:
        sweep()
    return out


def _study_identities(config: dict, ablation, out: list) -> None:
    """The runs of the ablations, the seeds, scale and optimum studies and the online
    comparison, appended to `out` (`ablation` appends a variant's runs)."""
    for kind in ABLATION_EXPERIMENTS:
        ablation(kind, config[ablation_key(kind)]["variants"], config[ablation_key(kind)]["seeds"])
    seeds_block = config["perceptron_seeds"]
    ablation("perceptron", seeds_block["variants"], seeds_block["seeds"])
    scale = config["transformer_scale"]
    for point, s, _ in scale_runs(config):
        family, label, s = _scale_identity(config, point, s)
        block = _block(config, "transformer")
        block = _scale_point_block(block, scale["base"], point) if family == "scale" else (
            _at_sweep_point(block, point))  # fmt: skip
        out.append(("transformer", family, label, s, block))
    for study in PATH_STUDIES:
        for kind in ABLATION_EXPERIMENTS:
            ablation(kind, config[study][kind]["paths"], config[study][kind]["seeds"])
    for kind in KINDS:
        for s in online_seeds(config):
            family, label, s = _online_identity(config, kind, s)
            if family == "ablation":
                ablation(kind, [label], [s])
            else:
                out.append((kind, family, label, s, _block(config, kind)))


def _build(config: dict) -> dict[str, RunSpec]:
    specs: dict[str, RunSpec] = {}
    for kind, family, label, seed, block in _identities(config):
        name = run_name(kind, family, label, seed)
        settings = {**block, "kind": kind, "name": name, "seed": seed}
        settings["data_name"] = dataset_name(config, settings)
        if name in specs:
            if specs[name].settings != settings:
                raise ConfigError(
                    f"two runs of this configuration would share the name `{name}` with "
                    f"different settings ({specs[name].family} {specs[name].label!r} and "
                    f"{family} {label!r}); rename one of them"
                )
            continue
        specs[name] = RunSpec(name, kind, seed, family, label, settings)
    return specs


_CACHE: OrderedDict[tuple, dict[str, RunSpec]] = OrderedDict()


def registry(config: dict) -> dict[str, RunSpec]:
    """`{name: RunSpec}` of every run of `config`, built once per configuration and version of
    its story files (a replaced file renames the data sets that read it)."""
    key = (json.dumps(config, sort_keys=True, default=str), story_file_versions(config))
    if key not in _CACHE:
        _CACHE[key] = _build(config)
        while len(_CACHE) > 16:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]


def all_run_names(config: dict) -> list[str]:
    """Every run the configuration defines: those of `rule all`, the ablations', the Perceptron
    seeds', the scale extension's, the optimum's and the online comparison's."""
    return list(registry(config))


def _unknown_run(config: dict, name: str) -> ConfigError:
    """The error for a run name the configuration does not define, listing those it does."""
    return ConfigError(f"unknown run `{name}`; runs of this configuration: {all_run_names(config)}")


def run_spec(config: dict, name: str) -> RunSpec:
    """The registry's entry of one run, or an error listing the runs there are."""
    spec = registry(config).get(name)
    if spec is None:
        raise _unknown_run(config, name)
    return spec


def run_settings(config: dict, name: str) -> dict:
    """The settings of one run: its experiment block with `kind`, `name`, `seed` and
    `data_name` added (a copy the caller may change)."""
    return copy.deepcopy(run_spec(config, name).settings)


def data_names(config: dict, kind: str) -> list[str]:
    """The data sets of an experiment's runs, each once."""
    return list(dict.fromkeys(s.data_name for s in registry(config).values() if s.kind == kind))


def dataset_run(config: dict, name: str) -> dict:
    """The settings of a run that uses the data set `name` (its `data` block and `seed` define
    the data set: every run using it has the same)."""
    for spec in registry(config).values():
        if spec.data_name == name:
            return copy.deepcopy(spec.settings)
    raise ConfigError(f"no run of this configuration uses the data set `{name}`")
