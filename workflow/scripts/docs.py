from pipeline import docs

docs.publish_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
