# Towards Optimal Learning of Language Models (Gu et al., 2024), end to end.
#   snakemake --cores all                 every figure and table (config.yaml, laptop scale)
#   snakemake --cores all figure5a        one figure and only what it needs
# Rules live in workflow/rules/, the code they call in pipeline/.

import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")  # the defaults, wherever --directory points


report: "workflow/report/workflow.rst"  # snakemake --report results/report.html, after a run


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/scaling_law.smk"
include: "workflow/rules/learning_law.smk"
include: "workflow/rules/ablation.smk"  # `snakemake perceptron_ablation`, not part of `all`
include: "workflow/rules/online.smk"  # beyond the paper: online policies (in `all`)
include: "workflow/rules/optimum.smk"  # `snakemake policy_frontier`, `optimum_k`: not in `all`
include: "workflow/rules/minibatch.smk"  # `snakemake minibatch_online`: not in `all`
include: "workflow/rules/at_a_glance.smk"  # after every rules file whose outputs it judges
include: "workflow/rules/bench.smk"  # `snakemake benchmark`, not part of `all`
include: "workflow/rules/device_check.smk"  # `snakemake device_check`, not part of `all`
include: "workflow/rules/docs.smk"  # `snakemake docs`: docs/results/ from a finished run


rule all:
    input:
        all_targets(),
    default_target: True
