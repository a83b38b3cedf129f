from pipeline.jobs import training

training.online_frontier_points(snakemake)  # noqa: F821  (the object Snakemake gives every script)
