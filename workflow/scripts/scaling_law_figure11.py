from pipeline.jobs import scaling_law

scaling_law.figure11_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
