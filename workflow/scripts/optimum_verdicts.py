from pipeline import optimum_jobs

optimum_jobs.optimum_verdicts_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
