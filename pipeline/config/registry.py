"""The run registry: `{name: RunSpec}` of every run a configuration defines, built once per
configuration (runs.py makes the names and lists each study's runs). It is the only code that
finds a run's settings, data set, paths and policies from its name: by looking it up, never by
decoding it. An unknown name is an error that lists the runs there are.
"""

from __future__ import annotations

import copy
import json
from collections import OrderedDict
from dataclasses import dataclass

from pipeline.config.datasets import dataset_name, format_number, story_file_versions
from pipeline.config.runs import (
    KINDS,
    OFFLINE_SELECTION_VARIANT,
    _ablation_identity,
    _at_sweep_point,
    _online_identity,
    _scale_identity,
    _scale_point_block,
    _sweep_identity,
    online_runs,
    online_seeds,
    policy_name,
    run_name,
    saved_epochs,
    scale_runs,
)
from pipeline.config.schema import (
    ABLATION_EXPERIMENTS,
    PATH_STUDIES,
    SCHEMA_PATH,
    ConfigError,
    _schema,
    ablation_key,
    apply_defaults,
    variant_block,
)


@dataclass(frozen=True)
class RunSpec:
    """One run: its name, experiment, seed, what made it (`family`, `label`: a variant, a step
    size, a (T, N, V) setting) and its settings (the experiment block with `kind`, `name`, `seed`
    and `data_name`; shared by every lookup, not to be modified). Its files: pipeline/paths.py,
    from `name` and `data_name`."""

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
    def policies(self) -> list[str]:
        """The policies of the run's optimisation: the conventional one and every saved epoch
        after 0 (results/<run>/dumps/<policy>/)."""
        policy = self.settings["policy"]
        epochs = saved_epochs(policy["epochs"], policy["save_every"])
        return ["conventional"] + [policy_name(e) for e in epochs if e > 0]

    @property
    def near_optimal(self) -> str:
        """The near-optimal policy: the last epoch's, or with `policy.selection: validation` the
        one chosen on the held-out part of the desired set (`selected`)."""
        return "selected" if self.settings["policy"]["selection"] == "validation" else (
            self.policies[-1])  # fmt: skip

    @property
    def evaluated_policies(self) -> list[str]:
        """The policies the run's summary evaluates: the optimisation's and the selected; of a
        Table 2 sweep point only the two its table reads, the conventional and the near-optimal
        (every epoch's test AR is in its history all the same)."""
        if self.family == "sweep":
            return ["conventional", self.near_optimal]
        return self.policies + (["selected"] if self.near_optimal == "selected" else [])

    def name_of(self) -> str:
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
    minibatch = config.get("minibatch_online", {})
    for s in minibatch.get("seeds", []):  # minibatch_runs'
        family, label, s = _online_identity(config, "transformer", s)
        out.append(("transformer", family, label, s, _block(config, "transformer")))
    if "offline_selection" in minibatch.get("references", []):  # offline_selection_run
        ablation("transformer", [OFFLINE_SELECTION_VARIANT], minibatch["seeds"])


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


# --- scheduling ----------------------------------------------------------------------------------

#: Snakemake `priority:` of a training job by its stage (higher starts first among ready jobs).
#: The main Transformer run's data set and policy optimisation, the longest job, start first:
#: started last, it ran alone for its final hour with the second core idle (docs/performance.md).
#: The other long jobs follow, longest first, and every evaluation (a minute or two each) comes
#: after them: short jobs last pack the end of the run on both cores (longest processing time
#: first), where the optimisation's evaluations at a high priority left a Perceptron
#: optimisation to run alone at the end.
CRITICAL_PATH_PRIORITY = {"data": 100, "optimize": 100}
LONG_JOB_PRIORITY = {("transformer", "online"): 50, ("transformer", "optimize"): 40,
                     ("perceptron", "optimize"): 30, ("perceptron", "online"): 20}  # fmt: skip


def _is_critical(config: dict, spec: RunSpec) -> bool:
    return (spec.kind, spec.family, spec.seed) == ("transformer", "main", config["seed"])


def job_priority(config: dict, run: str, stage: str) -> int:
    """The scheduling priority of run `run`'s job at `stage` (optimize | evaluate | online)."""
    spec = run_spec(config, run)
    if _is_critical(config, spec) and stage in CRITICAL_PATH_PRIORITY:
        return CRITICAL_PATH_PRIORITY[stage]
    return LONG_JOB_PRIORITY.get((spec.kind, stage), 0)


def dataset_priority(config: dict, name: str) -> int:
    """The scheduling priority of building data set `name`: first that of the critical path."""
    critical = any(spec.data_name == name and _is_critical(config, spec)
                   for spec in registry(config).values())  # fmt: skip
    return CRITICAL_PATH_PRIORITY["data"] if critical else 0
