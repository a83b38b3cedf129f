from pipeline.jobs import ablation

ablation.scale_table_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
