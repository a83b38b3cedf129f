from pipeline.analysis import ablation_jobs

ablation_jobs.ablation_table_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
