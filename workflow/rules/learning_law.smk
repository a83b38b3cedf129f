# The Learning Law (Theorem 3.1) and its properties, Sections 4.4–4.5: per-run tables under
# results/<run>/learning_law/ (SIM, the SIM–CR fit, Properties 4.1–4.3, perturbed vs clean
# weight), and Figures 3b, 6–10, each a named target: `snakemake --cores all figure7a`.


rule learning_law:
    input:
        # the dumps of every evaluated policy of the run, in policy order
        steps=lambda w: [steps_dump(w.run, p) for p in policy_names(w.run)],
        examples=lambda w: [paths.examples_dump(w.run, p) for p in policy_names(w.run)],
    output:
        policies=paths.learning_law("{run}", "policies.csv"),
        sim_per_step=paths.learning_law("{run}", "sim_per_step.parquet"),
        fit=paths.learning_law("{run}", "sim_cr_fit.json"),
        property42=paths.learning_law("{run}", "property42_weights.parquet"),
        property43=paths.learning_law("{run}", "property43_sample.parquet"),
    params:
        settings=lambda w: settings(w.run),
        policies=lambda w: policy_names(w.run),
        log_vocab=lambda w: log_vocab(settings(w.run)),
        learning_law=config["learning_law"],
        heatmap_max_step=lambda w: config["learning_law"]["heatmap_max_step"][
            settings(w.run)["kind"]
        ],
        seed=config["seed"],
    log:
        "results/logs/{run}/learning_law.log",
    conda:
        ENV
    resources:
        **light_job(mem_mb=4000, runtime=20),
    script:
        "../scripts/learning_law.py"


rule perturbed_weight:
    input:
        examples=lambda w: [paths.examples_dump(w.run, p) for p in policy_names(w.run)],
        policies=paths.learning_law("{run}", "policies.csv"),
        train=lambda w: paths.data_split(settings(w.run)["data_name"], "train"),
    output:
        report(
            paths.learning_law("{run}", "perturbed_weight.csv"),
            caption="../report/perturbed_weight.rst",
            category="Tables",
            subcategory="Transformer",
            labels=finding("figure_perturbed_weight"),
        ),
    params:
        policies=lambda w: policy_names(w.run),
        learning_law=config["learning_law"],
    log:
        "results/logs/{run}/perturbed_weight.log",
    conda:
        ENV
    resources:
        **light_job(mem_mb=4000, runtime=20),
    script:
        "../scripts/perturbed_weight.py"


rule figure6a:
    input:
        per_step=paths.learning_law("perceptron", "sim_per_step.parquet"),
    output:
        **figure_outputs("figure6a", "Perceptron", labels=finding("figure6a")),
    params:
        settings=settings("perceptron"),
    log:
        "results/logs/figures/figure6a.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_sim_per_step.py"


use rule figure6a as figure6b with:
    input:
        per_step=paths.learning_law("transformer", "sim_per_step.parquet"),
    output:
        **figure_outputs("figure6b", "Transformer", labels=finding("figure6b")),
    params:
        settings=settings("transformer"),
    log:
        "results/logs/figures/figure6b.log",


rule figure7a:
    input:
        unpack(online_sim_cr("perceptron")),
        policies=paths.learning_law("perceptron", "policies.csv"),
        fit=paths.learning_law("perceptron", "sim_cr_fit.json"),
    output:
        **figure_outputs("figure7a", "Perceptron", labels=finding("figure7a")),
    params:
        settings=settings("perceptron"),
        paper_style=False,
    log:
        "results/logs/figures/figure7a.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_sim_cr.py"


use rule figure7a as figure7b with:
    input:
        unpack(online_sim_cr("transformer")),
        policies=paths.learning_law("transformer", "policies.csv"),
        fit=paths.learning_law("transformer", "sim_cr_fit.json"),
    output:
        **figure_outputs("figure7b", "Transformer", labels=finding("figure7b")),
    params:
        settings=settings("transformer"),
        paper_style=False,
    log:
        "results/logs/figures/figure7b.log",


use rule figure7a as figure3b with:
    input:
        policies=paths.learning_law("transformer", "policies.csv"),
        fit=paths.learning_law("transformer", "sim_cr_fit.json"),
    output:
        **figure_outputs("figure3b", "Transformer", labels=finding("figure3b")),
    params:
        settings=settings("transformer"),
        paper_style=True,
    log:
        "results/logs/figures/figure3b.log",


rule figure8a:
    input:
        policies=paths.learning_law("perceptron", "policies.csv"),
    output:
        **figure_outputs("figure8a", "Perceptron", labels=finding("figure8a")),
    params:
        settings=settings("perceptron"),
    log:
        "results/logs/figures/figure8a.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_property41.py"


use rule figure8a as figure8b with:
    input:
        policies=paths.learning_law("transformer", "policies.csv"),
    output:
        **figure_outputs("figure8b", "Transformer", labels=finding("figure8b")),
    params:
        settings=settings("transformer"),
    log:
        "results/logs/figures/figure8b.log",


rule figure9:
    input:
        property42=paths.learning_law("perceptron", "property42_weights.parquet"),
        policies=paths.learning_law("perceptron", "policies.csv"),
    output:
        **figure_outputs("figure9", "Perceptron", labels=finding("figure9")),
    params:
        settings=settings("perceptron"),
        loss_threshold=config["learning_law"]["perfectly_learned_loss"],
    log:
        "results/logs/figures/figure9.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_property42.py"


rule figure10a:
    input:
        property43=paths.learning_law("perceptron", "property43_sample.parquet"),
    output:
        **figure_outputs("figure10a", "Perceptron", labels=finding("figure10a")),
    params:
        settings=settings("perceptron"),
        max_step=config["learning_law"]["heatmap_max_step"]["perceptron"],
        sample_size=config["learning_law"]["heatmap_examples"],
    log:
        "results/logs/figures/figure10a.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_property43.py"


use rule figure10a as figure10b with:
    input:
        property43=paths.learning_law("transformer", "property43_sample.parquet"),
    output:
        **figure_outputs("figure10b", "Transformer", labels=finding("figure10b")),
    params:
        settings=settings("transformer"),
        max_step=config["learning_law"]["heatmap_max_step"]["transformer"],
        sample_size=config["learning_law"]["heatmap_examples"],
    log:
        "results/logs/figures/figure10b.log",


rule figure_perturbed_weight:
    input:
        table=paths.learning_law("transformer", "perturbed_weight.csv"),
    output:
        **figure_outputs(
            "figure_perturbed_weight", "Transformer", labels=finding("figure_perturbed_weight")
        ),
    params:
        settings=settings("transformer"),
    log:
        "results/logs/figures/figure_perturbed_weight.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_perturbed_weight.py"


LEARNING_LAW_FIGURES = {
    "perceptron": ["figure6a", "figure7a", "figure8a", "figure9", "figure10a"],
    "transformer": [
        "figure3b",
        "figure6b",
        "figure7b",
        "figure8b",
        "figure10b",
        "figure_perturbed_weight",
    ],
}
for _kind, _figures in LEARNING_LAW_FIGURES.items():
    TARGETS[_kind] += [paths.figure(f, e) for f in _figures for e in ("pdf", "png")]
    TARGETS[_kind] += [paths.learning_law(_kind, "policies.csv")]
TARGETS["transformer"] += [paths.learning_law("transformer", "perturbed_weight.csv")]
