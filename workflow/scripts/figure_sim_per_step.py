from pipeline.jobs import learning_law

learning_law.figure_sim_per_step(snakemake)  # noqa: F821  (the object Snakemake gives every script)
