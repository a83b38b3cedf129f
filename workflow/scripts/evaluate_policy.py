from pipeline import jobs

jobs.evaluate_policy(snakemake)  # noqa: F821  (the object Snakemake gives every script)
