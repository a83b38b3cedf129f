from pipeline.jobs import minibatch

minibatch.minibatch_run(snakemake)  # noqa: F821  (the object Snakemake gives every script)
