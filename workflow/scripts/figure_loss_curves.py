from pipeline.jobs import summary

summary.figure_loss_curves(snakemake)  # noqa: F821  (the object Snakemake gives every script)
