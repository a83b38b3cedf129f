from pipeline import jobs

jobs.evaluate_online(snakemake)  # noqa: F821  (the object Snakemake gives every script)
