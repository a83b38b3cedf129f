from pipeline.jobs import online

online.online_policies_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
