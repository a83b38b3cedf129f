from pipeline.analysis import learning_law_jobs

learning_law_jobs.perturbed_weight(snakemake)  # noqa: F821  (the object Snakemake gives every script)
