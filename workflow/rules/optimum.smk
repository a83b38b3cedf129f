# The optimum, located (not part of `all`): `snakemake --cores all policy_frontier` puts every
# epoch of every policy-optimisation path (`policy_frontier.<experiment>.paths`, ablation
# variants, each a run per seed) beside the conventional and online policies as points of J
# against the test AR; `snakemake --cores all optimum_k` gives the test AR at the optimum as the
# desired set grows (`optimum_k`). Runs shared with the ablation are not done twice.

OPTIMUM = "The optimum (beyond the paper)"


rule online_frontier_points:
    input:
        data=data_files,
        costs=paths.COSTS,
    output:
        points=paths.FRONTIER_POINTS,
    params:
        settings=lambda w: settings(w.run),
        seed=lambda w: settings(w.run)["seed"],
        device=config["device"],
        dtype=config["dtype"],
    log:
        "results/logs/{run}/online_frontier_points.log",
    benchmark:
        "results/benchmarks/{run}/online_frontier_points.tsv"
    threads: run_resources("threads")
    resources:
        **ONE_PROCESS_RESOURCES,
    conda:
        TRAIN_ENV
    script:
        "../scripts/online_frontier_points.py"


rule policy_frontier_table:
    input:
        unpack(study_inputs("policy_frontier")),
    output:
        **table_outputs("policy_frontier_{kind}", OPTIMUM, caption="policy_frontier_table"),
        points=paths.table("policy_frontier_{kind}_points"),
    params:
        **study_params("policy_frontier"),
    wildcard_constraints:
        kind="perceptron|transformer",
    log:
        "results/logs/tables/policy_frontier_{kind}.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/policy_frontier_table.py"


rule policy_frontier_figure:
    input:
        points=paths.table("policy_frontier_{kind}_points"),
    output:
        **figure_outputs("policy_frontier_{kind}", OPTIMUM, caption="policy_frontier"),
    params:
        paths=lambda w: config["policy_frontier"][w.kind]["paths"],
        kind=lambda w: w.kind,
    wildcard_constraints:
        kind="perceptron|transformer",
    log:
        "results/logs/figures/policy_frontier_{kind}.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/policy_frontier_figure.py"


rule optimum_k_table:
    input:
        unpack(study_inputs("optimum_k")),
    output:
        **table_outputs("optimum_k_{kind}", OPTIMUM, caption="optimum_k_table"),
        points=paths.table("optimum_k_{kind}_points"),
    params:
        **study_params("optimum_k"),
        sizes=lambda w: {
            path: settings(run)["data"]["n_desired"]
            for path, _, run in study_runs(config, "optimum_k", w.kind)
        },
    wildcard_constraints:
        kind="perceptron|transformer",
    log:
        "results/logs/tables/optimum_k_{kind}.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/optimum_k_table.py"


rule optimum_k_figure:
    input:
        points=paths.table("optimum_k_{kind}_points"),
        table=paths.table("optimum_k_{kind}"),
    output:
        **figure_outputs("optimum_k_{kind}", OPTIMUM, caption="optimum_k"),
    params:
        kind=lambda w: w.kind,
    wildcard_constraints:
        kind="perceptron|transformer",
    log:
        "results/logs/figures/optimum_k_{kind}.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/optimum_k_figure.py"


rule optimum_learning_law_table:
    input:
        policies=lambda w: [paths.learning_law(r, "policies.csv") for *_, r in law_runs(w.kind)],
        fit=lambda w: [paths.learning_law(r, "sim_cr_fit.json") for *_, r in law_runs(w.kind)],
        history=lambda w: [paths.history(r) for *_, r in law_runs(w.kind)],
    output:
        **table_outputs("optimum_learning_law_{kind}", OPTIMUM, caption="optimum_learning_law"),
        rows=paths.table("optimum_learning_law_{kind}_runs"),
    params:
        runs=lambda w: law_runs(w.kind),
        paths=config["policy_frontier"]["law_paths"],
        kind=lambda w: w.kind,
    wildcard_constraints:
        kind="perceptron|transformer",
    log:
        "results/logs/tables/optimum_learning_law_{kind}.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/optimum_learning_law_table.py"


rule optimum_verdicts:
    input:
        frontier=paths.table("policy_frontier_{kind}"),
        law=paths.table("optimum_learning_law_{kind}"),
        policies=lambda w: [paths.learning_law(r, "policies.csv") for *_, r in law_runs(w.kind)],
        property42=lambda w: [
            paths.learning_law(r, "property42_weights.parquet") for *_, r in law_runs(w.kind)
        ],
        property43=lambda w: [
            paths.learning_law(r, "property43_sample.parquet") for *_, r in law_runs(w.kind)
        ],
    output:
        **table_outputs("optimum_verdicts_{kind}", OPTIMUM, caption="optimum_verdicts"),
    params:
        runs=lambda w: law_runs(w.kind),
        n_train=lambda w: [settings(r)["data"]["n_train"] for *_, r in law_runs(w.kind)],
        seeds=lambda w: config["policy_frontier"][w.kind]["seeds"],
        paths=config["policy_frontier"]["law_paths"],
        near_optimal_gap=config["policy_frontier"]["near_optimal_gap"],
        kind=lambda w: w.kind,
    wildcard_constraints:
        kind="perceptron|transformer",
    log:
        "results/logs/tables/optimum_verdicts_{kind}.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/optimum_verdicts.py"


rule policy_frontier_perceptron:
    input:
        study_outputs("policy_frontier", "perceptron"),
        law_outputs("perceptron"),


rule policy_frontier_transformer:
    input:
        study_outputs("policy_frontier", "transformer"),
        law_outputs("transformer"),


rule policy_frontier:
    input:
        rules.policy_frontier_perceptron.input,
        rules.policy_frontier_transformer.input,


rule optimum_k_perceptron:
    input:
        study_outputs("optimum_k", "perceptron"),


rule optimum_k_transformer:
    input:
        study_outputs("optimum_k", "transformer"),


rule optimum_k:
    input:
        rules.optimum_k_perceptron.input,
        rules.optimum_k_transformer.input,
