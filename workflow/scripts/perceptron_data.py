from pipeline import jobs

jobs.perceptron_data(snakemake)  # noqa: F821  (the object Snakemake gives every script)
