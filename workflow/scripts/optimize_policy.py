from pipeline.jobs import training

training.optimize_policy(snakemake)  # noqa: F821  (the object Snakemake gives every script)
