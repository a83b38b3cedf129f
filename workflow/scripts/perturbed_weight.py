from pipeline.jobs import learning_law

learning_law.perturbed_weight(snakemake)  # noqa: F821  (the object Snakemake gives every script)
