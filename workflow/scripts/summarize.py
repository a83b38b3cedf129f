from pipeline import jobs

jobs.summarize(snakemake)  # noqa: F821  (the object Snakemake gives every script)
