from pipeline.jobs import summary

summary.figure_policy_optimization(snakemake)  # noqa: F821  (the object Snakemake gives every script)
