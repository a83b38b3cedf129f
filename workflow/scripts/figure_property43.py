from pipeline.jobs import learning_law

learning_law.figure_property43(snakemake)  # noqa: F821  (the object Snakemake gives every script)
