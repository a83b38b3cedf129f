# Section 4.6: scaling-law fits of the Transformer's test-loss curves. Table 1 and Figure 11 fit
# the main run; Table 2 every run of `transformer.scaling_sweep` (the (T, N, V) settings are runs
# of their own, transformer-T<T>-N<N>-V<V>, built by the generic rules of train.smk).

rule table1:
    input:
        conventional=steps_dump("transformer", "conventional"),
        near_optimal=lambda w: steps_dump("transformer", near_optimal("transformer")),
    output:
        **table_outputs("table1", "Transformer", labels=finding("table1")),
    params:
        settings=lambda w: settings("transformer"),
        near_optimal=lambda w: near_optimal("transformer"),
        search=config["scaling_law"],  # a param: a changed setting refits
    log:
        "results/logs/tables/table1.log",
    conda:
        ENV
    resources:
        **light_job(mem_mb=1000, runtime=5),
    script:
        "../scripts/scaling_law_table1.py"


rule table2:
    input:
        conventional=lambda w: [steps_dump(r, "conventional") for r in scaling_sweep_runs(config)],
        near_optimal=lambda w: [steps_dump(r, near_optimal(r)) for r in scaling_sweep_runs(config)],
    output:
        **table_outputs("table2", "Transformer", labels=finding("table2")),
    params:
        entries=config["transformer"]["scaling_sweep"],
        runs=scaling_sweep_runs(config),
        search=config["scaling_law"],
    log:
        "results/logs/tables/table2.log",
    conda:
        ENV
    resources:
        **light_job(mem_mb=1000, runtime=5),
    script:
        "../scripts/scaling_law_table2.py"


rule figure11:
    input:
        conventional=steps_dump("transformer", "conventional"),
        near_optimal=lambda w: steps_dump("transformer", near_optimal("transformer")),
    output:
        **figure_outputs("figure11", "Transformer", labels=finding("figure11")),
    params:
        settings=lambda w: settings("transformer"),
        search=config["scaling_law"],
    log:
        "results/logs/figures/figure11.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/scaling_law_figure11.py"


TARGETS["transformer"] += [paths.table("table1", e) for e in ("csv", "md")]
TARGETS["transformer"] += [paths.figure("figure11", e) for e in ("pdf", "png")]
if scaling_sweep_runs(config):
    TARGETS["transformer"] += [paths.table("table2", e) for e in ("csv", "md")]
