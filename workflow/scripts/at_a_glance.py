from pipeline.jobs import summary

summary.at_a_glance(snakemake)  # noqa: F821  (the object Snakemake gives every script)
