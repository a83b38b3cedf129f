# Figures of the paper, each a named target: `snakemake --cores all figure5a`. Each PNG goes into
# `snakemake --report` with its caption, workflow/report/<figure>.rst.


rule figure4a:
    input:
        history=paths.history("perceptron"),
    output:
        **figure_outputs("figure4a", "Perceptron", labels=finding("figure4a")),
    params:
        settings=settings("perceptron"),
    log:
        "results/logs/figures/figure4a.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_policy_optimization.py"


use rule figure4a as figure4b with:
    input:
        history=paths.history("transformer"),
    output:
        **figure_outputs("figure4b", "Transformer", labels=finding("figure4b")),
    params:
        settings=settings("transformer"),
    log:
        "results/logs/figures/figure4b.log",


rule figure5a:
    input:
        conventional=steps_dump("perceptron", "conventional"),
        near_optimal=lambda w: steps_dump("perceptron", near_optimal("perceptron")),
    output:
        **figure_outputs("figure5a", "Perceptron", labels=finding("figure5a")),
    params:
        settings=settings("perceptron"),
        paper_style=False,
    log:
        "results/logs/figures/figure5a.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/figure_loss_curves.py"


use rule figure5a as figure5b with:
    input:
        conventional=steps_dump("transformer", "conventional"),
        near_optimal=lambda w: steps_dump("transformer", near_optimal("transformer")),
    output:
        **figure_outputs("figure5b", "Transformer", labels=finding("figure5b")),
    params:
        settings=settings("transformer"),
        paper_style=False,
    log:
        "results/logs/figures/figure5b.log",


use rule figure5a as figure2 with:
    input:
        conventional=steps_dump("transformer", "conventional"),
        near_optimal=lambda w: steps_dump("transformer", near_optimal("transformer")),
    output:
        **figure_outputs("figure2", "Transformer", labels=finding("figure2")),
    params:
        settings=settings("transformer"),
        paper_style=True,
    log:
        "results/logs/figures/figure2.log",


TARGETS["perceptron"] += [paths.figure(f, e) for f in ("figure4a", "figure5a") for e in ("pdf", "png")]
TARGETS["transformer"] += [
    paths.figure(f, e) for f in ("figure2", "figure4b", "figure5b") for e in ("pdf", "png")
]
