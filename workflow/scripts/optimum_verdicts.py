from pipeline.jobs import optimum

optimum.optimum_verdicts_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
