from pipeline.jobs import scaling_law

scaling_law.table2_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
