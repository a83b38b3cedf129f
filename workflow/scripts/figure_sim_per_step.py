from pipeline.analysis import learning_law_jobs

learning_law_jobs.figure_sim_per_step(snakemake)  # noqa: F821  (the object Snakemake gives every script)
