from pipeline.jobs import optimum

optimum.frontier_figure_job(snakemake)  # noqa: F821  (the object Snakemake gives every script)
