# Configuration check, the runs it defines, and the paths every rule shares.

import os
import re
import sys

sys.path.insert(0, workflow.basedir)  # the pipeline package, for this process and its jobs
# Set (never read) for the jobs: their scripts run in other processes, conda envs and SLURM jobs
# (sbatch --export=ALL). update() rather than os.environ[...] = : `snakemake --lint` takes the
# latter for a variable the user must define.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [workflow.basedir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
)

from pipeline.config import (
    MINIBATCH_POLICIES,
    MINIBATCH_REFERENCES,
    ConfigError,
    ablation_runs,
    all_run_names,
    data_names,
    dataset_priority,
    dataset_run,
    job_priority,
    main_variant,
    minibatch_runs,
    offline_selection_run,
    perceptron_seeds_runs,
    policy_name,
    run_names,
    run_processes,
    run_settings,
    run_spec,
    saved_epochs,
    scale_runs,
    scaling_sweep_runs,
    study_runs,
    tau_source_run,
    validate_config,
    warm_start_run,
)
from pipeline import paths
from pipeline.analysis.findings import report_labels
from pipeline.metrics import log_vocab
from pipeline.paper import acceleration_ratio_reference

try:  # --config values come as strings; quoted numbers of a config file are refused
    validate_config(config, command_line=dict(workflow.config_settings.config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None
if config["device"] == "cuda" and workflow.local_exec and not workflow.remote_exec:
    # the jobs run on this machine: it must have the GPU (a cluster's jobs check on their node)
    from pipeline.runtime import resolve_device

    try:
        resolve_device("cuda")
    except RuntimeError as err:
        raise WorkflowError(
            f"{err}. The jobs of this run would start on this machine; with "
            "--profile profiles/slurm they run on GPU nodes instead."
        ) from None

RUNS = run_names(config)  # the runs of `rule all`; ablation_runs() adds the Perceptron ablation's
SPLITS = ["train", "desired", "test"]
# Conda environments (`--use-conda`), relative to the rule files. The training rules take the
# CUDA build of PyTorch when they request GPUs (`resources.gpus` > 0, the paper preset).
ENV = "../../envs/pipeline.yaml"
TRAIN_ENV = (
    "../../envs/pipeline-cuda.yaml"
    if any(config[kind]["resources"]["gpus"] > 0 for kind in ("perceptron", "transformer"))
    else ENV
)


wildcard_constraints:
    run="|".join(all_run_names(config)) or "none",
    policy=r"(?!online_)[A-Za-z0-9_.-]+",  # any name but the online policies' (online.smk): policy_input() lists the run's policies if unknown
    dataset="|".join(map(re.escape, data_names(config, "transformer"))) or "none",
    pdataset="|".join(map(re.escape, data_names(config, "perceptron"))) or "none",


def settings(run):
    return run_settings(config, run)


def policy_names(run):
    """The policies of a run's optimisation: the conventional one and every saved epoch after 0."""
    return run_spec(config, run).policies


steps_dump = paths.steps_dump


def last_policy(run):
    return policy_names(run)[-1]


def near_optimal(run):
    """The near-optimal policy: the last epoch's, or with `policy.selection: validation` the one
    chosen on the held-out part of the desired set (`selected`, written by optimize_policy)."""
    return run_spec(config, run).near_optimal


def evaluated_policies(run):
    """The policies of a run that the default target evaluates: the optimisation's, the selected."""
    return run_spec(config, run).evaluated_policies


def online_sim_cr(kind):
    """Figure 7's optional input: the online policies' SIM and CR, when they are built."""
    if "online_policies" not in config["experiments"]:
        return lambda wildcards: {}
    return lambda wildcards: {"online": paths.learning_law(kind, "online_policies.csv")}


def finding(name, figure=None):
    """`labels=` of a figure's or table's report(): its row of results/at_a_glance.json (this
    run's number, the paper's, the verdict), read when the report is made, after the run.
    `figure` (formatted with the wildcards) replaces the first label where one row labels
    several files: the report lists a subcategory's files by their labels, and of files with
    the same labels it shows only one (tests/test_report_browser.py)."""

    def labels(wildcards):
        found = report_labels(name)
        if figure is not None:
            found["figure"] = figure.format(**wildcards)
        return found

    return labels


def paper_acceleration_ratio(run):
    """The paper's AR paired with a run (Figure 5, or its Table 2 setting) and its source."""
    return acceleration_ratio_reference(settings(run)["kind"], run, scaling_sweep_runs(config))


def data_files(wildcards):
    name = settings(wildcards.run)["data_name"]
    return [paths.data_split(name, split) for split in SPLITS]


def run_resources(key):
    """A training job's `resources.<key>` from its run's experiment, for `threads:`/`resources:`.

    `gpu` of 0 makes snakemake-executor-plugin-slurm add no GPU flag (`--gpus=N` otherwise).
    """
    return lambda wildcards: settings(wildcards.run)["resources"][key]


def run_job_total(key):
    """`resources.<key>` (per process) times the job's processes: the job's threads and memory,
    for the local scheduler and the SLURM allocation of one node."""

    def total(wildcards):
        resources = settings(wildcards.run)["resources"]
        return resources[key] * run_processes(resources)

    return total


def run_tasks(key):
    """The SLURM plugin's task resources of a training job: `tasks` (its processes),
    `tasks_per_gpu` (1 with GPUs: sbatch --ntasks-per-gpu=1, one process per GPU) and `mpi`
    (with several processes: the plugin runs the job script without its own `srun -n1`, and
    pipeline/launch.py starts the processes as SLURM tasks with srun). None drops the resource."""

    def value(wildcards):
        resources = settings(wildcards.run)["resources"]
        processes = run_processes(resources)
        if key == "tasks":
            return processes
        if key == "tasks_per_gpu":
            return 1 if resources["gpus"] > 0 else None
        return "srun" if processes > 1 else None

    return value


#: `resources:` of the training jobs (optimize_policy, evaluate_policy, evaluate_online): the
#: run's `resources` block, memory times the job's processes, and the SLURM task resources.
TRAINING_RESOURCES = dict(
    mem_mb=run_job_total("mem_mb"),
    runtime=run_resources("runtime"),
    gpu=run_resources("gpus"),
    cpus_per_task=run_resources("threads"),
    tasks=run_tasks("tasks"),
    tasks_per_gpu=run_tasks("tasks_per_gpu"),
    mpi=run_tasks("mpi"),
)
#: `resources:` of the jobs that train one process on the run's device (online_flops,
#: online_frontier_points).
ONE_PROCESS_RESOURCES = dict(
    mem_mb=run_resources("mem_mb"),
    runtime=run_resources("runtime"),
    gpu=lambda w: min(1, run_resources("gpus")(w)),
    cpus_per_task=run_resources("threads"),
)


def light_job(mem_mb=2000, runtime=10):
    """`resources:` of a table's or figure's job, which runs in one thread (Snakemake's default
    `threads:`): memory in MB and runtime in minutes, for the cluster profiles."""
    return {"mem_mb": mem_mb, "runtime": runtime}


def table_outputs(name, subcategory, caption=None, labels=None):
    """The `csv` and `md` outputs of a table, results/tables/<name>.{csv,md} (pipeline/paths.py);
    the CSV goes into `snakemake --report` under Tables / `subcategory`, with the caption
    workflow/report/<caption or name>.rst and `labels` (its finding: `finding()`)."""
    options = dict(caption=f"../report/{caption or name}.rst", category="Tables",
                   subcategory=subcategory)
    if labels is not None:
        options["labels"] = labels
    return {"csv": report(paths.table(name, "csv"), **options), "md": paths.table(name, "md")}


def figure_outputs(name, subcategory, caption=None, labels=None):
    """The `pdf` and `png` outputs of a figure, results/figures/<name>.{pdf,png} (pipeline/
    paths.py); the PNG goes into `snakemake --report` under Figures / `subcategory`, with the
    caption workflow/report/<caption or name>.rst and `labels` (its finding: `finding()`)."""
    options = dict(caption=f"../report/{caption or name}.rst", category="Figures",
                   subcategory=subcategory)
    if labels is not None:
        options["labels"] = labels
    return {"pdf": paths.figure(name, "pdf"), "png": report(paths.figure(name, "png"), **options)}


def optimize_inputs(wildcards):
    """optimize_policy: the run's data, and with a warm start (`policy.init: online_*`) the
    online job's costs.json that holds the rule's chosen τ (config.warm_start_run)."""
    inputs = {"data": data_files(wildcards)}
    run = settings(wildcards.run)
    if run["policy"]["init"] != "conventional":
        inputs["warm_start"] = paths.run_file(paths.COSTS, warm_start_run(config, run))
    return inputs


def policy_input(wildcards):
    """evaluate_policy: the optimised policies, except for the conventional one. A policy the
    run does not save fails here, when the DAG is built, rather than in the job."""
    if wildcards.policy == "conventional":
        return {}
    policy = settings(wildcards.run)["policy"]
    saved = [policy_name(e) for e in saved_epochs(policy["epochs"], policy["save_every"])]
    if near_optimal(wildcards.run) == "selected":
        saved.append("selected")  # policy.selection: validation
    if wildcards.policy not in saved:
        raise WorkflowError(
            f"run `{wildcards.run}` saves no policy `{wildcards.policy}`: its policies are "
            f"conventional, {', '.join(saved)} (policy.epochs = {policy['epochs']}, "
            f"policy.save_every = {policy['save_every']}). Ask for one of these, or change "
            "the settings."
        )
    return {"policies": paths.run_file(paths.POLICIES, wildcards.run)}


# The ablations, the Perceptron seeds and the scale study (workflow/rules/ablation.smk).


def ablation_of(kind):
    """(variant, seed, run) of an experiment's ablation."""
    return ablation_runs(config, kind)


def run_table_inputs(runs):
    """The files a runs table reads: the conventional, last and selected curves, and the
    history (J, and the test AR of every epoch's policy)."""
    return {
        "conventional": [steps_dump(run, "conventional") for _, _, run in runs],
        "last": [steps_dump(run, last_policy(run)) for _, _, run in runs],
        "selected": [steps_dump(run, near_optimal(run)) for _, _, run in runs],
        "history": [paths.run_file(paths.HISTORY, run) for _, _, run in runs],
    }


def run_table_params(kind, runs):
    """What the runs table's job needs beside its input files."""
    return {
        "runs": runs,
        "kind": kind,
        "steps": {run: settings(run)["train"]["steps"] for _, _, run in runs},
        "log_vocab": {run: log_vocab(settings(run)) for _, _, run in runs},
    }


def ablation_outputs(kind):
    names = [paths.table(f"{kind}_ablation", ext) for ext in ("csv", "md")]
    names += [paths.table(f"{kind}_ablation_runs")]
    return names + [paths.figure(f"{kind}_ablation", ext) for ext in ("pdf", "png")]


# The default target's files, per experiment: each rules file appends its figures and tables;
# files drawing on both experiments (the page of results at a glance) go to EXTRA_TARGETS.
TARGETS = {
    "perceptron": [],
    "transformer": [],
    "perceptron_ablation": [],
    "transformer_ablation": [],
    "transformer_scale": [],
    "online_policies": [],
}
EXTRA_TARGETS = []


def all_targets():
    targets = [paths.run_file(paths.SUMMARY, run) for run in RUNS]
    for kind in config["experiments"]:
        targets += TARGETS[kind]
    return targets + EXTRA_TARGETS


# The optimum (workflow/rules/optimum.smk): `policy_frontier` and `optimum_k`.


def study_seed_runs(study, kind):
    """(seed, online run) per seed of a study: the run whose online job gives that seed's
    conventional and online points (warm_start_run: the online comparison's, if it matches)."""
    first = {}
    for _, seed, run in study_runs(config, study, kind):
        first.setdefault(seed, run)
    return [(seed, warm_start_run(config, settings(run))) for seed, run in first.items()]


def study_inputs(study):
    def inputs(wildcards):
        runs = study_runs(config, study, wildcards.kind)
        return {
            "history": [paths.run_file(paths.HISTORY, run) for *_, run in runs],
            "online": [
                paths.run_file(paths.FRONTIER_POINTS, run)
                for _, run in study_seed_runs(study, wildcards.kind)
            ],
        }

    return inputs


def study_params(study):
    return {
        "runs": lambda w: study_runs(config, study, w.kind),
        "seeds": lambda w: [seed for seed, _ in study_seed_runs(study, w.kind)],
        "paths": lambda w: config[study][w.kind]["paths"],
        "kind": lambda w: w.kind,
        "near_optimal_gap": config["policy_frontier"]["near_optimal_gap"],
    }


def law_runs(kind):
    """(path, seed, run) of the frontier's runs whose Learning Law the optimum table shows."""
    paths = config["policy_frontier"]["law_paths"]
    return [r for r in study_runs(config, "policy_frontier", kind) if r[0] in paths]


def study_outputs(study, kind):
    names = [paths.table(f"{study}_{kind}", ext) for ext in ("csv", "md")]
    names.append(paths.table(f"{study}_{kind}_points"))
    return names + [paths.figure(f"{study}_{kind}", ext) for ext in ("pdf", "png")]


def law_outputs(kind):
    """The Learning Law at the optimum and the verdicts against the optimum of `kind`."""
    names = [paths.table(f"optimum_learning_law_{kind}", ext) for ext in ("csv", "md")]
    names += [paths.table(f"optimum_verdicts_{kind}", ext) for ext in ("csv", "md")]
    return names + [paths.table(f"optimum_learning_law_{kind}_runs")]


# The online policies (online.smk): a seed's τ from the main seed's job (`online.shared_tau`).


def tau_source(wildcards):
    """The main seed's costs.json, whose τ this run uses (`online.shared_tau`), or nothing."""
    source = tau_source_run(config, settings(wildcards.run)["kind"], wildcards.run)
    return {"tau_source": paths.run_file(paths.COSTS, source)} if source else {}


# The minibatch comparison (minibatch.smk).


def minibatch_policies():
    """The policies and references run, in table order; the conventional one always (every
    ratio is against it)."""
    block = config["minibatch_online"]
    chosen = ["conventional", *block["policies"], *block["references"]]
    return [p for p in MINIBATCH_POLICIES + MINIBATCH_REFERENCES if p in chosen]


def minibatch_jobs():
    """(seed, run, policy) of every minibatch run."""
    return [(s, r, p) for s, r in minibatch_runs(config) for p in minibatch_policies()]


def scores_run(wildcards):
    """The run whose time-independent policy scores the examples (`offline_selection`)."""
    return offline_selection_run(config, settings(wildcards.run)["seed"])


def minibatch_inputs(wildcards):
    """The run's data; for `offline_selection` also the scoring run's saved policies."""
    inputs = {"data": data_files(wildcards)}
    if wildcards.mpolicy == "offline_selection":
        inputs["policies"] = paths.run_file(paths.POLICIES, scores_run(wildcards))
    return inputs


def scores_param(get):
    """A param of `offline_selection`'s scoring run (None for the other policies)."""
    return lambda w: get(scores_run(w)) if w.mpolicy == "offline_selection" else None
