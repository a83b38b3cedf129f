# `snakemake docs` (not part of `all`): what the README and docs/ show, copied from the finished
# run in results/ into the committed docs/results/ (pipeline/docs.py): the at-a-glance table
# (also put into README.md between its markers), Tables 1–2, the online tables and the figures.
# `snakemake docs_studies`: the fidelity studies' tables and figures (hours more of runs). Their
# inputs are the run's files, so they build whatever of them is missing: give them the run's
# --configfile. docs/development.md says when to run them.

from pipeline import docs as docs_module

DOCS_SHOWN = docs_module.shown(config["experiments"], bool(scaling_sweep_runs(config)))
DOCS_STUDIES = docs_module.shown_studies()


rule docs:
    input:
        [item.source for item in DOCS_SHOWN],
    output:
        [f"{docs_module.DOCS_RESULTS}/{item.name}" for item in DOCS_SHOWN],
        f"{docs_module.DOCS_RESULTS}/{docs_module.PROVENANCE}",
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


rule docs_studies:
    input:
        [item.source for item in DOCS_STUDIES],
    output:
        [f"{docs_module.DOCS_RESULTS}/{item.name}" for item in DOCS_STUDIES],
        f"{docs_module.DOCS_RESULTS}/{docs_module.STUDIES_PROVENANCE}",
    params:
        names=[item.name for item in DOCS_STUDIES],
        config_files=docs_module.shown_config_files(workflow.overwrite_configfiles),
        sizes={kind: config[kind] for kind in ("perceptron", "transformer")},
    log:
        "results/logs/docs_studies.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/docs.py"
