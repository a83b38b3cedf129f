from pipeline.jobs import optimum

optimum.optimum_learning_law_table_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
