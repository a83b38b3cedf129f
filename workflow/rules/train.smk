# Policy optimisation, and training under each policy with per-step / per-example dumps.


rule optimize_policy:
    input:
        unpack(optimize_inputs),
    output:
        policies=directory(paths.POLICIES),
        history=paths.HISTORY,
    params:
        settings=lambda w: settings(w.run),
        saved_epochs=lambda w: saved_epochs(
            settings(w.run)["policy"]["epochs"], settings(w.run)["policy"]["save_every"]
        ),
        resume_dir=lambda w: paths.run_file(paths.RESUME, w.run),
        seed=lambda w: settings(w.run)["seed"],
        device=config["device"],  # params, not read from config: a change reruns the job
        dtype=config["dtype"],
    log:
        "results/logs/{run}/optimize_policy.log",
    benchmark:
        "results/benchmarks/{run}/optimize_policy.tsv"
    threads: run_job_total("threads")
    priority: lambda w: job_priority(config, w.run, "optimize")
    resources:
        **TRAINING_RESOURCES,
    conda:
        TRAIN_ENV
    script:
        "../scripts/optimize_policy.py"


rule evaluate_policy:
    input:
        unpack(policy_input),
        data=data_files,
    output:
        steps=paths.STEPS,
        examples=paths.EXAMPLES,
    params:
        settings=lambda w: settings(w.run),
        policy=lambda w: w.policy,
        seed=lambda w: settings(w.run)["seed"],
        device=config["device"],
        dtype=config["dtype"],
    log:
        "results/logs/{run}/evaluate_{policy}.log",
    benchmark:
        "results/benchmarks/{run}/evaluate_{policy}.tsv"
    threads: run_job_total("threads")
    priority: lambda w: job_priority(config, w.run, "evaluate")
    resources:
        **TRAINING_RESOURCES,
    conda:
        TRAIN_ENV
    script:
        "../scripts/evaluate_policy.py"


rule summarize:
    input:
        steps=lambda w: [steps_dump(w.run, p) for p in evaluated_policies(w.run)],
        history=paths.HISTORY,
        benchmarks=lambda w: [
            paths.benchmark(w.run, stage)
            for stage in ["optimize_policy"] + [f"evaluate_{p}" for p in evaluated_policies(w.run)]
        ],
    output:
        report(
            paths.SUMMARY,
            caption="../report/summary.rst",
            category="Summaries",
            labels={"run": "{run}"},
        ),
    params:
        settings=lambda w: settings(w.run),
        policies=lambda w: evaluated_policies(w.run),
        stages=["optimize_policy", "evaluate_conventional", "evaluate_epoch", "evaluate_selected"],
        log_vocab=lambda w: log_vocab(settings(w.run)),
        paper_acceleration_ratio=lambda w: paper_acceleration_ratio(w.run),
    log:
        "results/logs/{run}/summarize.log",
    conda:
        ENV
    resources:
        **light_job(),
    script:
        "../scripts/summarize.py"
