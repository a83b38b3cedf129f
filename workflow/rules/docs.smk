# `snakemake docs` (not part of `all`): what the README and docs/ show, copied from the finished
# run in results/ into the committed docs/results/ (pipeline/docs.py): the at-a-glance table
# (also put into README.md between its markers), Tables 1–2, the online and fidelity tables and
# the figures. Its inputs are the run's files, so it builds whatever of them is missing: give it
# the run's --configfile. docs/development.md says when to run it.

from pipeline import docs as docs_module

DOCS_SHOWN = docs_module.shown(config["experiments"], bool(scaling_sweep_runs(config)))


rule docs:
    input:
        [item.source for item in DOCS_SHOWN],
    output:
        [f"{docs_module.DOCS_RESULTS}/{item.name}" for item in DOCS_SHOWN],
        f"{docs_module.DOCS_RESULTS}/README.md",
    params:
        names=[item.name for item in DOCS_SHOWN],
        config_files=docs_module.shown_config_files(workflow.overwrite_configfiles),
        sizes={kind: config[kind] for kind in ("perceptron", "transformer")},
    log:
        "results/logs/docs.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/docs.py"
