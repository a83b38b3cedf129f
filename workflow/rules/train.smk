# Policy optimisation, and training under each policy with per-step / per-example dumps.


rule optimize_policy:
    input:
        unpack(optimize_inputs),
    output:
        policies=directory("results/{run}/policies"),
        history="results/{run}/policy_history.parquet",
    params:
        settings=lambda w: settings(w.run),
        saved_epochs=lambda w: saved_epochs(
            settings(w.run)["policy"]["epochs"], settings(w.run)["policy"]["save_every"]
        ),
        resume_dir=lambda w: f"results/{w.run}/resume",
        seed=lambda w: settings(w.run)["seed"],
        device=config["device"],  # params, not read from config: a change reruns the job
        dtype=config["dtype"],
    log:
        "results/logs/{run}/optimize_policy.log",
    benchmark:
        "results/benchmarks/{run}/optimize_policy.tsv"
    threads: run_job_total("threads")
    resources:
        mem_mb=run_job_total("mem_mb"),
        runtime=run_resources("runtime"),
        gpu=run_resources("gpus"),
        cpus_per_task=run_resources("threads"),
        tasks=run_tasks("tasks"),
        tasks_per_gpu=run_tasks("tasks_per_gpu"),
        mpi=run_tasks("mpi"),
    conda:
        TRAIN_ENV
    script:
        "../scripts/optimize_policy.py"


rule evaluate_policy:
    input:
        unpack(policy_input),
        data=data_files,
    output:
        steps="results/{run}/dumps/{policy}/steps.parquet",
        examples="results/{run}/dumps/{policy}/examples.parquet",
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
    resources:
        mem_mb=run_job_total("mem_mb"),
        runtime=run_resources("runtime"),
        gpu=run_resources("gpus"),
        cpus_per_task=run_resources("threads"),
        tasks=run_tasks("tasks"),
        tasks_per_gpu=run_tasks("tasks_per_gpu"),
        mpi=run_tasks("mpi"),
    conda:
        TRAIN_ENV
    script:
        "../scripts/evaluate_policy.py"


rule summarize:
    input:
        steps=lambda w: expand("results/{run}/dumps/{policy}/steps.parquet", run=w.run,
                               policy=evaluated_policies(w.run)),
        history="results/{run}/policy_history.parquet",
        benchmarks=lambda w: expand("results/benchmarks/{run}/{stage}.tsv", run=w.run,
                                    stage=["optimize_policy"] + [f"evaluate_{p}" for p in evaluated_policies(w.run)]),
    output:
        report(
            "results/{run}/summary.json",
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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/summarize.py"
