from pipeline.jobs import training

training.online_flops(snakemake)  # noqa: F821  (the object Snakemake gives every script)
