from pipeline import optimum_jobs

optimum_jobs.optimum_k_figure_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
