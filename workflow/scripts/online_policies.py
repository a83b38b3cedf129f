from pipeline.analysis import online_jobs

online_jobs.online_policies_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
