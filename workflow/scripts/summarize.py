from pipeline.jobs import summary

summary.summarize(snakemake)  # noqa: F821  (the object Snakemake gives every script)
