from pipeline.jobs import ablation

ablation.seeds_table_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
