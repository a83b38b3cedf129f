"""The jobs the Snakemake rules run (workflow/scripts/<job>.py is one call into one of them):
`training` (data, policy optimisation, evaluation, online policies), `summary` (a run's summary,
its figures and the findings page), and the figure and table jobs of the rule files
`learning_law`, `scaling_law`, `ablation`, `online` and `optimum`, and `minibatch` (the runs,
table and figure of `minibatch_online`). Each job reads its rule's
`snakemake` object, sets the job up (pipeline.runtime.job) and calls the layers below.
"""
