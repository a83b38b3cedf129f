from pipeline import jobs

jobs.optimize_policy(snakemake)  # noqa: F821  (the object Snakemake gives every script)
