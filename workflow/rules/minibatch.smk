# Beyond the paper: minibatch AdamW with online weighting of each batch (pipeline/policy/
# minibatch.py). `snakemake --cores all minibatch_online` (not in `all`): per seed of
# `minibatch_online.seeds` and policy a run (its τ or B chosen on the held-out desired examples),
# then a table and a figure over the seeds (docs/minibatch.md).

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
