from pipeline.analysis import scaling_law_jobs

scaling_law_jobs.figure11_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
