"""The names of the runs, and the runs of each study in table order (registry.py builds
`{name: RunSpec}` from them).

A run ("experiment" in paths) is one model, data set, seed, training setting and
policy-optimisation setting. `perceptron` and `transformer` are the paper's two;
`<experiment>-eps<ε>` are the extra policy step sizes of `<experiment>.policy.step_size_sweep`,
`transformer-T<T>-N<N>-V<V>` the Table 2 sweep, `<experiment>-<variant>-s<seed>` the runs of an
experiment's ablation (`perceptron_ablation`, `transformer_ablation`; the Perceptron's seeds study
`perceptron_seeds` and the optimum's studies reuse its ablation's runs),
`transformer-T<T>-N<N>-V<V>-s<seed>` the points of the scaling extension `transformer_scale`, and
`transformer-s<seed>` the online-policy comparison's Transformer at another seed
(`online.seeds`). A setting equal to the main run's (or the sweep's) is that run, not a copy.

`run_name` is the only code that makes a run's name; no code decodes one (registry.py looks the
settings up).
"""

from __future__ import annotations

import copy

from pipeline.config.datasets import format_number
from pipeline.config.schema import (
    ConfigError,
    ablation_key,
    merged,
    variant_block,
)

#: The online policies (pipeline/policy/online.py), in table order: results/<run>/dumps/<name>/.
ONLINE_POLICIES = ["online_greedy", "online_positive", "online_softmax"]
#: The online policies with a τ chosen on the held-out desired examples (`online.tau_grid`).
TAU_RULES = ["online_greedy", "online_softmax"]
#: The batch weightings of `minibatch_online` (pipeline/policy/minibatch.py), in table order,
#: and the references beside them: results/<run>/minibatch/<name>/.
MINIBATCH_POLICIES = ["conventional", "online_greedy", "online_positive", "online_softmax",
                      "online_select"]  # fmt: skip
MINIBATCH_REFERENCES = ["clean_only", "offline_selection"]
#: The `transformer_ablation` variant whose optimised policy scores the training examples for
#: `offline_selection` (the time-independent policy of `policy_frontier`).
OFFLINE_SELECTION_VARIANT = "time_independent"
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


def minibatch_runs(config: dict) -> list[tuple[int, str]]:
    """(seed, run) of `minibatch_online`: the Transformer's main settings at each seed, the run
    of the online comparison's naming (the main run at the main seed, else transformer-s<seed>),
    whose data set and θ_0 the minibatch runs use."""
    return [(s, run_name("transformer", *_online_identity(config, "transformer", s)))
            for s in config["minibatch_online"]["seeds"]]  # fmt: skip


def offline_selection_run(config: dict, seed: int) -> str:
    """The run whose near-optimal time-independent policy scores the training examples of
    `offline_selection` at `seed`: transformer-time_independent-s<seed>, the same data set."""
    identity = _ablation_identity(config, "transformer", OFFLINE_SELECTION_VARIANT, seed)
    return run_name("transformer", *identity)


def tau_source_run(config: dict, kind: str, run: str) -> str | None:
    """The online run whose τ `run`'s online job uses instead of choosing its own: with `kind`
    in `online.shared_tau`, the comparison's run at the main seed (its first seed if the main
    one is not among them) for every other seed of the comparison; else None (its own)."""
    runs = [name for _, name in online_runs(config, kind)]
    if kind not in config["online"]["shared_tau"] or run not in runs:
        return None
    seeds = dict(online_runs(config, kind))
    source = seeds.get(config["seed"], runs[0])
    return None if run == source else source


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
