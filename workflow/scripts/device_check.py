from pipeline.device_check import device_check_job

device_check_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
