# The Perceptron ablation (`snakemake --cores all perceptron_ablation`, not part of `all`): each
# variant of `perceptron_ablation` at each seed is a run of its own (perceptron-<variant>-s<seed>)
# built by the generic rules of data.smk and train.smk; only the policies the table needs are
# evaluated (conventional, last, and the selected one under `policy.selection: validation`).

ABLATION = ablation_runs(config)


rule perceptron_ablation_table:
    input:
        conventional=[steps_dump(run, "conventional") for _, _, run in ABLATION],
        last=[steps_dump(run, last_policy(run)) for _, _, run in ABLATION],
        selected=[steps_dump(run, near_optimal(run)) for _, _, run in ABLATION],
        history=[f"results/{run}/policy_history.parquet" for _, _, run in ABLATION],
    output:
        csv=report(
            "results/tables/perceptron_ablation.csv",
            caption="../report/perceptron_ablation_table.rst",
            category="Tables",
            subcategory="Perceptron",
            labels=finding("perceptron_ablation_table"),
        ),
        md="results/tables/perceptron_ablation.md",
        runs="results/tables/perceptron_ablation_runs.csv",
    params:
        runs=ABLATION,
        steps={run: settings(run)["train"]["steps"] for _, _, run in ABLATION},
        variants=config["perceptron_ablation"]["variants"],
        seeds=config["perceptron_ablation"]["seeds"],
        definitions=config["perceptron_ablation"]["definitions"],
    log:
        "results/logs/tables/perceptron_ablation.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/perceptron_ablation_table.py"


rule perceptron_ablation_figure:
    input:
        runs="results/tables/perceptron_ablation_runs.csv",
    output:
        pdf="results/figures/perceptron_ablation.pdf",
        png=report(
            "results/figures/perceptron_ablation.png",
            caption="../report/perceptron_ablation.rst",
            category="Figures",
            subcategory="Perceptron",
            labels=finding("perceptron_ablation"),
        ),
    params:
        variants=config["perceptron_ablation"]["variants"],
    log:
        "results/logs/figures/perceptron_ablation.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/perceptron_ablation_figure.py"


rule perceptron_ablation:
    input:
        rules.perceptron_ablation_table.output,
        rules.perceptron_ablation_figure.output,


TARGETS["perceptron_ablation"] += [
    *rules.perceptron_ablation_table.output,
    *rules.perceptron_ablation_figure.output,
]
