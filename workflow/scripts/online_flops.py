from pipeline import jobs

jobs.online_flops(snakemake)  # noqa: F821  (the object Snakemake gives every script)
