from pipeline import jobs

jobs.at_a_glance(snakemake)  # noqa: F821  (the object Snakemake gives every script)
