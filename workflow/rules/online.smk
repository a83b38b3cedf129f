# Beyond the paper: online policies, γ_t computed during one training run from the contributions
# CT_t on the desired set (pipeline/policy/online.py). `snakemake --cores all online_policies`
# (in `all` with `online_policies` in `experiments`): per experiment a table and a figure of the
# conventional, near-optimal and online policies over `online.seeds`, and the online policies'
# Learning-Law statistics beside Figure 7's (results/<experiment>/learning_law/online_policies.csv).

from pipeline.config import (
    KINDS,
    ONLINE_POLICIES,
    online_near_optimal_runs,
    online_runs,
)


rule evaluate_online:
    input:
        unpack(tau_source),
        data=data_files,
    output:
        steps=[paths.steps_dump("{run}", p) for p in ONLINE_POLICIES],
        examples=[paths.examples_dump("{run}", p) for p in ONLINE_POLICIES],
        costs=paths.COSTS,
    params:
        settings=lambda w: settings(w.run),
        seed=lambda w: settings(w.run)["seed"],
        policies=ONLINE_POLICIES,
        tau_grid=lambda w: config["online"]["tau_grid"][settings(w.run)["kind"]],
        device=config["device"],  # params, not read from config: a change reruns the job
        dtype=config["dtype"],
    log:
        "results/logs/{run}/evaluate_online.log",
    benchmark:
        "results/benchmarks/{run}/evaluate_online.tsv"
    threads: run_job_total("threads")
    priority: lambda w: job_priority(config, w.run, "online")
    resources:
        **TRAINING_RESOURCES,
    conda:
        TRAIN_ENV
    script:
        "../scripts/evaluate_online.py"


rule online_flops:
    """The FLOPs of each policy of a run, counted on its shapes (pipeline/policy/flops.py)."""
    input:
        data=data_files,
    output:
        flops=paths.FLOPS,
    params:
        settings=lambda w: settings(w.run),
        seed=lambda w: settings(w.run)["seed"],
        tau_grid=lambda w: config["online"]["tau_grid"][settings(w.run)["kind"]],
        device=config["device"],
        dtype=config["dtype"],
    log:
        "results/logs/{run}/online_flops.log",
    threads: run_resources("threads")
    resources:
        **ONE_PROCESS_RESOURCES,
    conda:
        TRAIN_ENV
    script:
        "../scripts/online_flops.py"


rule online_policies_experiment:
    input:
        conventional=lambda w: [steps_dump(r, "conventional") for _, r in online_runs(config, w.kind)],
        near_optimal=lambda w: [steps_dump(r, near_optimal(r))
                                for _, r in online_near_optimal_runs(config, w.kind)],
        history=lambda w: [paths.history(r)
                           for _, r in online_near_optimal_runs(config, w.kind)],
        online=lambda w: [steps_dump(r, p) for _, r in online_runs(config, w.kind) for p in ONLINE_POLICIES],
        costs=lambda w: [paths.costs(r) for _, r in online_runs(config, w.kind)],
        flops=lambda w: [paths.flops(r) for _, r in online_runs(config, w.kind)],
        law_steps=lambda w: [steps_dump(w.kind, p) for p in ONLINE_POLICIES],
        law_examples=lambda w: [paths.examples_dump(w.kind, p) for p in ONLINE_POLICIES],
        fit=paths.learning_law("{kind}", "sim_cr_fit.json"),
    output:
        **table_outputs(
            "online_policies_{kind}",
            "Online policies (beyond the paper)",
            caption="online_policies",
            labels=finding("online_policies", figure="Online policies (ours), {kind}"),
        ),
        runs=paths.table("online_policies_{kind}_runs"),
        law=paths.learning_law("{kind}", "online_policies.csv"),
        **figure_outputs(
            "online_policies_{kind}",
            "Online policies (beyond the paper)",
            caption="online_policies",
            labels=finding("online_policies", figure="Online policies (ours), {kind}"),
        ),
    wildcard_constraints:
        kind="perceptron|transformer",
    params:
        experiment=lambda w: w.kind,
        runs=lambda w: online_runs(config, w.kind),
        near_optimal_seeds=lambda w: [s for s, _ in online_near_optimal_runs(config, w.kind)],
        steps=lambda w: settings(w.kind)["train"]["steps"],
        log_vocab=lambda w: log_vocab(settings(w.kind)),
        learning_law=config["learning_law"],
    log:
        "results/logs/tables/online_policies_{kind}.log",
    conda:
        ENV
    resources:
        **light_job(mem_mb=4000, runtime=20),
    script:
        "../scripts/online_policies.py"


ONLINE_OUTPUTS = [paths.learning_law(kind, "online_policies.csv") for kind in KINDS] + [
    path
    for kind in KINDS
    for path in (
        *(paths.table(f"online_policies_{kind}", ext) for ext in ("csv", "md")),
        *(paths.figure(f"online_policies_{kind}", ext) for ext in ("pdf", "png")),
    )
]


rule online_policies:
    input:
        ONLINE_OUTPUTS,


TARGETS["online_policies"] += ONLINE_OUTPUTS
