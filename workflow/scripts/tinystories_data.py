from pipeline import jobs

jobs.tinystories_data(snakemake)  # noqa: F821  (the object Snakemake gives every script)
