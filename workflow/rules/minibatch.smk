# Beyond the paper: minibatch AdamW with online weighting of each batch (pipeline/policy/
# minibatch.py). `snakemake --cores all minibatch_online` (not in `all`): per seed of
# `minibatch_online.seeds` and policy a run (its τ or B chosen on the held-out desired examples),
# then a table and a figure over the seeds (docs/minibatch.md).

from pipeline.config import (
    MINIBATCH_POLICIES,
    MINIBATCH_REFERENCES,
    minibatch_runs,
    offline_selection_run,
)


def minibatch_policies():
    """The policies and references run, in table order; the conventional one always (every
    ratio is against it)."""
    block = config["minibatch_online"]
    chosen = ["conventional", *block["policies"], *block["references"]]
    return [p for p in MINIBATCH_POLICIES + MINIBATCH_REFERENCES if p in chosen]


def minibatch_jobs():
    """(seed, run, policy) of every minibatch run."""
    return [(s, r, p) for s, r in minibatch_runs(config) for p in minibatch_policies()]


def scores_run(wildcards):
    """The run whose time-independent policy scores the examples (`offline_selection`)."""
    return offline_selection_run(config, settings(wildcards.run)["seed"])


def minibatch_inputs(wildcards):
    """The run's data; for `offline_selection` also the scoring run's saved policies."""
    inputs = {"data": data_files(wildcards)}
    if wildcards.mpolicy == "offline_selection":
        inputs["policies"] = paths.run_file(paths.POLICIES, scores_run(wildcards))
    return inputs


def scores_param(get):
    """A param of `offline_selection`'s scoring run (None for the other policies)."""
    return lambda w: get(scores_run(w)) if w.mpolicy == "offline_selection" else None


rule minibatch_run:
    input:
        unpack(minibatch_inputs),
    output:
        curve=paths.MINIBATCH_CURVE,
        costs=paths.MINIBATCH_COSTS,
    params:
        settings=lambda w: settings(w.run),
        seed=lambda w: settings(w.run)["seed"],
        policy=lambda w: w.mpolicy,
        minibatch=config["minibatch_online"],
        scores_run=scores_param(lambda run: run),
        scores_policy=scores_param(near_optimal),  # its near-optimal (held-out selected) policy
        scores_data=scores_param(lambda run: settings(run)["data_name"]),
        device=config["device"],  # params, not read from config: a change reruns the job
        dtype=config["dtype"],
    log:
        "results/logs/{run}/minibatch_{mpolicy}.log",
    benchmark:
        "results/benchmarks/{run}/minibatch_{mpolicy}.tsv"
    wildcard_constraints:
        mpolicy="|".join(MINIBATCH_POLICIES + MINIBATCH_REFERENCES),
    threads: 1
    resources:
        **ONE_PROCESS_RESOURCES,
    conda:
        TRAIN_ENV
    script:
        "../scripts/minibatch_run.py"


rule minibatch_online_table:
    input:
        curves=[paths.minibatch_curve(r, p) for _, r, p in minibatch_jobs()],
        costs=[paths.minibatch_costs(r, p) for _, r, p in minibatch_jobs()],
    output:
        **table_outputs("minibatch_online", "Minibatch AdamW (beyond the paper)"),
        runs=paths.table("minibatch_online_runs"),
        **figure_outputs("minibatch_online", "Minibatch AdamW (beyond the paper)"),
    params:
        runs=[(s, p) for s, _, p in minibatch_jobs()],
        order=minibatch_policies(),
        log_vocab=log_vocab(settings(minibatch_runs(config)[0][1])),
        minibatch=config["minibatch_online"],
    log:
        "results/logs/tables/minibatch_online.log",
    conda:
        ENV
    resources:
        **light_job(mem_mb=2000, runtime=10),
    script:
        "../scripts/minibatch_online_table.py"


rule minibatch_online:
    input:
        [paths.table("minibatch_online", ext) for ext in ("csv", "md")],
        [paths.figure("minibatch_online", ext) for ext in ("pdf", "png")],
