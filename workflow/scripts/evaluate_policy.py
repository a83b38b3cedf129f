from pipeline.jobs import training

training.evaluate_policy(snakemake)  # noqa: F821  (the object Snakemake gives every script)
