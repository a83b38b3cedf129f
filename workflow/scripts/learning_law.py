from pipeline.jobs import learning_law

learning_law.learning_law(snakemake)  # noqa: F821  (the object Snakemake gives every script)
