from pipeline.jobs import training

training.perceptron_data(snakemake)  # noqa: F821  (the object Snakemake gives every script)
