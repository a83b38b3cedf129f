from pipeline.jobs import minibatch

minibatch.minibatch_online_table(snakemake)  # noqa: F821  (the object Snakemake gives every script)
