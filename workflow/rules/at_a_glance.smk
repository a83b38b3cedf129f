# Results at a glance: every figure and table of the run beside the paper's number, with a
# verdict computed from the numbers (pipeline/analysis/judges.py; one entry per figure/table in
# pipeline/analysis/findings.py).
# The report shows the page, and beside each figure's caption that figure's row (`finding()` of
# common.smk, the `labels=` of every figure and table).

from pipeline.analysis.findings import ENTRIES, applicable

GLANCE = applicable(ENTRIES, config["experiments"], bool(scaling_sweep_runs(config)))


rule at_a_glance:
    input:
        sorted({path for entry in GLANCE for path in entry.inputs.values()}),
    output:
        md="results/at_a_glance.md",
        csv=report(
            "results/at_a_glance.csv",
            caption="../report/at_a_glance.rst",
            category="Results at a glance",
        ),
        json="results/at_a_glance.json",
    params:
        entries=[entry.name for entry in GLANCE],
    log:
        "results/logs/at_a_glance.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/at_a_glance.py"


if GLANCE:
    EXTRA_TARGETS += expand("results/at_a_glance.{ext}", ext=["md", "csv", "json"])
