# The ablations (`snakemake --cores all perceptron_ablation`, `... transformer_ablation`) and the
# Perceptron seeds study (`... perceptron_seeds`), none part of `all`: each variant of
# `<experiment>_ablation` at each seed is a run of its own (<experiment>-<variant>-s<seed>) built
# by the generic rules of data.smk and train.smk; only the policies the tables need are evaluated
# (conventional, last, the selected one under `policy.selection: validation`): every epoch's test
# AR comes from the optimisation's history. One rule per output serves both experiments.
# In the report, these studies beyond the paper share one subcategory (docs/perceptron-fidelity.md).

FIDELITY = "Fidelity (beyond the paper)"


rule ablation_table:
    input:
        unpack(lambda w: run_table_inputs(ablation_of(w.experiment))),
    output:
        **table_outputs(
            "{experiment}_ablation",
            FIDELITY,
            caption="ablation_table",
            labels=lambda w: report_labels(f"{w.experiment}_ablation_table"),
        ),
        runs=paths.table("{experiment}_ablation_runs"),
    params:
        table=lambda w: run_table_params(w.experiment, ablation_of(w.experiment)),
        variants=lambda w: config[f"{w.experiment}_ablation"]["variants"],
        seeds=lambda w: config[f"{w.experiment}_ablation"]["seeds"],
        definitions=lambda w: config[f"{w.experiment}_ablation"]["definitions"],
        base=lambda w: config[f"{w.experiment}_ablation"].get("base", {}),
        main=lambda w: main_variant(config, w.experiment),
    wildcard_constraints:
        experiment="perceptron|transformer",
    log:
        "results/logs/tables/{experiment}_ablation.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/ablation_table.py"


rule ablation_figure:
    input:
        runs=paths.table("{experiment}_ablation_runs"),
    output:
        **figure_outputs(
            "{experiment}_ablation",
            FIDELITY,
            caption="ablation",
            labels=lambda w: report_labels(f"{w.experiment}_ablation"),
        ),
    params:
        variants=lambda w: config[f"{w.experiment}_ablation"]["variants"],
        kind=lambda w: w.experiment,
    wildcard_constraints:
        experiment="perceptron|transformer",
    log:
        "results/logs/figures/{experiment}_ablation.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/ablation_figure.py"


rule perceptron_ablation:
    input:
        ablation_outputs("perceptron"),


rule transformer_ablation:
    input:
        ablation_outputs("transformer"),


TARGETS["perceptron_ablation"] += ablation_outputs("perceptron")
TARGETS["transformer_ablation"] += ablation_outputs("transformer")

SEEDS_RUNS = perceptron_seeds_runs(config)


rule perceptron_seeds_table:
    input:
        **run_table_inputs(SEEDS_RUNS),
        train=[paths.data_split(settings(run)["data_name"], "train") for *_, run in SEEDS_RUNS],
        desired=[
            paths.data_split(settings(run)["data_name"], "desired") for *_, run in SEEDS_RUNS
        ],
    output:
        **table_outputs("perceptron_seeds", FIDELITY, caption="perceptron_seeds_table"),
        runs=paths.table("perceptron_seeds_runs"),
        correlation=paths.table("perceptron_seeds_correlation"),
    params:
        table=run_table_params("perceptron", SEEDS_RUNS),
        variants=config["perceptron_seeds"]["variants"],
        seeds=config["perceptron_seeds"]["seeds"],
    log:
        "results/logs/tables/perceptron_seeds.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/perceptron_seeds_table.py"


rule perceptron_seeds_figure:
    input:
        runs=paths.table("perceptron_seeds_runs"),
    output:
        **figure_outputs("perceptron_seeds", FIDELITY),
    params:
        variants=config["perceptron_seeds"]["variants"],
    log:
        "results/logs/figures/perceptron_seeds.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/perceptron_seeds_figure.py"


rule perceptron_seeds:
    input:
        rules.perceptron_seeds_table.output,
        rules.perceptron_seeds_figure.output,

SCALE_RUNS = scale_runs(config)
SCALE_TARGET = [
    config["transformer_scale"]["target_steps"],
    config["transformer_scale"]["target_n_train"],
]


rule transformer_scale_table:
    input:
        conventional=[steps_dump(run, "conventional") for *_, run in SCALE_RUNS],
        last=[steps_dump(run, last_policy(run)) for *_, run in SCALE_RUNS],
    output:
        **table_outputs(
            "transformer_scale",
            FIDELITY,
            caption="transformer_scale_table",
            labels=finding("transformer_scale"),
        ),
        fit=paths.table("transformer_scale_fit", "json"),
        runs=paths.table("transformer_scale_runs"),
    params:
        runs=SCALE_RUNS,
        policy_epochs=[run_settings(config, run)["policy"]["epochs"] for *_, run in SCALE_RUNS],
        target=SCALE_TARGET,
    log:
        "results/logs/tables/transformer_scale.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/transformer_scale_table.py"


rule transformer_scale_figure:
    input:
        runs=paths.table("transformer_scale_runs"),
    output:
        **figure_outputs("transformer_scale", FIDELITY, labels=finding("transformer_scale")),
    params:
        target=SCALE_TARGET,
    log:
        "results/logs/figures/transformer_scale.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/transformer_scale_figure.py"


rule transformer_scale:
    input:
        rules.transformer_scale_table.output,
        rules.transformer_scale_figure.output,


TARGETS["transformer_scale"] += [
    *rules.transformer_scale_table.output,
    *rules.transformer_scale_figure.output,
]
