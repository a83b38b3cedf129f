"""The jobs of the data and training rules: each reads the `snakemake` object of its rule's
script, sets up logging / threads / device, and calls the pure functions of the package.

Rules stay thin (workflow/scripts/<job>.py is one call into this module), and each job can be
run by hand from Python with any object exposing input, output, params, log, threads, config.

The training jobs (optimize_policy, evaluate_policy, evaluate_online) turn their `snakemake`
object into a plain spec and run `<job>_run(spec)` here, or, when the experiment asks for
`resources.processes` > 1, in that many processes (pipeline/launch.py: torchrun, or srun inside
a SLURM job).

The modules that load torch are imported inside the jobs, after `job()` has set the thread
environment (thread counts, OMP_WAIT_POLICY) that OpenMP reads once, when torch loads
(tests/test_job_threads.py checks it).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.config import ONLINE_POLICIES, TAU_RULES, at_grid_end, policy_name, run_processes
from pipeline.data.tinystories import build_tinystories
from pipeline.launch import launch
from pipeline.metrics import auc
from pipeline.results import PipelineFileError, rebuild_hint
from pipeline.runtime import compile_unavailable, job, resolve_device, resolve_dtype, rule_log

if TYPE_CHECKING:
    import torch

    from pipeline.experiment import Run
    from pipeline.training.descent import TrainingDiverged

log = logging.getLogger("pipeline.jobs")


def _training_spec(smk) -> dict:
    """What every process of a training job needs, as plain JSON-able values."""
    return {
        "settings": smk.params.settings,
        "data_dir": str(Path(smk.input.data[0]).parent),
        "device": smk.params.device,
        "dtype": smk.params.dtype,
        "seed": smk.params.seed,
    }


def _run_training(smk, entry: str, spec: dict) -> None:
    """`entry(spec)` in this process, or in `resources.processes` processes (pipeline.launch)."""
    resources = spec["settings"]["resources"]
    processes = run_processes(resources)
    if processes == 1:
        with job(rule_log(smk), smk.threads, uses_torch=True):
            globals()[entry](spec)
        return
    with job(None, smk.threads):  # the processes' first one writes the rule's log
        launch(
            f"pipeline.jobs.training:{entry}",
            spec,
            processes,
            min(resources["threads"], max(1, smk.threads // processes)),
            resources["gpus"] > 0,
            [str(path) for path in smk.output],
            rule_log(smk),
        )


def compiles(settings: dict, device: torch.device, trains_many_runs: bool) -> bool:
    """Whether a job's Transformer runs through `torch.compile` (`train.compile`): `policy`
    compiles the jobs that train many runs (a policy optimisation's epochs, an online job's τ
    candidates), where the one-off compilation pays; a lone evaluation stays eager. A machine
    that cannot compile runs eagerly and says why."""
    mode = settings["train"]["compile"]
    if settings["kind"] != "transformer" or mode == "never":
        return False
    if mode == "policy" and not trains_many_runs:
        return False
    why = compile_unavailable(device)
    if why:
        log.warning(
            "`train.compile: %s` but %s: running eagerly (the same numbers to round-off, slower)",
            mode,
            why,
        )
    return why is None


def _load_run(spec: dict, trains_many_runs: bool = False) -> Run:
    # here, not at the top: torch loads after job() has set the thread environment
    from pipeline.distributed import world_size
    from pipeline.experiment import load_run

    settings = spec["settings"]
    device = resolve_device(spec["device"])
    dtype = resolve_dtype(spec["dtype"])
    compile = compiles(settings, device, trains_many_runs)
    run = load_run(settings, spec["data_dir"], device, dtype, compile)
    log.info(
        "run %s on %s (%s%s): N=%d, T=%d, eta=%g, %d process(es)",
        settings["name"],
        device,
        dtype,
        ", compiled" if compile else "",
        run.n_train,
        run.steps,
        run.eta,
        world_size(),
    )
    return run


def _diverged(err: TrainingDiverged, settings: dict) -> RuntimeError:
    """The error a user sees: which setting to change, by where training diverged."""
    # here, not at the top: torch loads after job() has set the thread environment
    from pipeline.policy.optimize import PolicyDiverged

    kind = settings["kind"]
    eta = f"`{kind}.train.eta` = {settings['train']['eta']:g}"
    step_size = f"`{kind}.policy.step_size` = {settings['policy']['step_size']:g}"
    if isinstance(err, PolicyDiverged) and err.epoch > 0:
        return RuntimeError(
            f"{err}. The conventional policy (epoch 0) trained without diverging, so the policy "
            f"steps moved γ somewhere unstable: lower {step_size} (or use "
            f"`{kind}.policy.schedule: linear`) in config.yaml or with --config. Policies saved "
            "before this epoch are kept in the resume directory and used on the next run only "
            "if the settings are unchanged."
        )
    return RuntimeError(
        f"{err}. The learning rate {eta} is too large for this run (or {step_size} pushed the "
        "policy somewhere unstable): lower it in config.yaml or with --config."
    )


def perceptron_data(smk) -> None:
    with job(rule_log(smk)):
        # here, not at the top: torch loads after job() has set the thread environment
        from pipeline.data.perceptron import SPLITS, make_perceptron_data, write_split

        frames = make_perceptron_data(smk.params.settings, smk.params.seed)
        for split in SPLITS:
            write_split(frames[split], getattr(smk.output, split))
            log.info(
                "%s: %d examples, %.1f%% positive",
                split,
                len(frames[split]),
                100 * frames[split]["y"].mean(),
            )


def optimize_policy(smk) -> None:
    out_dir = Path(smk.output.policies)
    spec = {
        **_training_spec(smk),
        "policies": {e: str(out_dir / f"{policy_name(e)}.pt") for e in smk.params.saved_epochs},
        "history": str(smk.output.history),
        "resume_dir": str(smk.params.resume_dir),
    }
    if smk.params.settings["policy"]["selection"] == "validation":
        spec["selected"] = str(out_dir / "selected.pt")
    if smk.params.settings["policy"]["init"] != "conventional":  # τ of the online job
        spec["warm_start_costs"] = str(smk.input.warm_start)
    _run_training(smk, "optimize_policy_run", spec)


def warm_start_tau(costs_path: str, rule: str) -> float | None:
    """The τ the online job chose for `rule` (its costs.json), for a warm start."""
    return json.loads(Path(costs_path).read_text())["policies"][rule]["tau"]


def optimize_policy_run(spec: dict) -> None:
    """The policy optimisation of a spec (`optimize_policy`), in this process."""
    # here, not at the top: torch loads after job() has set the thread environment
    from pipeline.distributed import barrier, is_main
    from pipeline.experiment import initial_parameters
    from pipeline.policy.online import online_policy_matrix
    from pipeline.policy.optimize import optimize_policy as optimize
    from pipeline.training.descent import TrainingDiverged

    run = _load_run(spec, trains_many_runs=True)
    theta0 = initial_parameters(run, spec["seed"])
    paths = {int(e): Path(path) for e, path in spec["policies"].items()}
    rule, tau, warm_start = run.settings["policy"]["init"], None, None
    if rule != "conventional":
        tau = warm_start_tau(spec["warm_start_costs"], rule)
        log.info("warm start: %s at τ = %g (chosen by its online job)", rule, tau)

        def warm_start():
            return online_policy_matrix(run, theta0, rule, tau)

    if is_main():
        next(iter(paths.values())).parent.mkdir(parents=True, exist_ok=True)
    try:
        optimize(
            run,
            theta0,
            paths,
            Path(spec["history"]),
            Path(spec["resume_dir"]),
            spec["seed"],
            selected_path=Path(spec["selected"]) if spec.get("selected") else None,
            warm_start=warm_start,
            warm_start_tau=tau,
        )
    except TrainingDiverged as err:
        raise _diverged(err, run.settings) from None
    barrier()  # the outputs exist when any process returns


def load_policy(path: Path) -> torch.Tensor:
    """A saved policy γ (T × N) of `optimize_policy`, on the CPU (each process then moves its
    columns to its device); a damaged file says how to rebuild it."""
    # here, not at the top: torch loads after job() has set the thread environment
    import torch

    try:
        return torch.load(path, map_location="cpu")
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise PipelineFileError(
            f"{path} cannot be read as a saved policy ({type(err).__name__}: {err}); "
            f"{rebuild_hint(path.parent)}."
        ) from None


def evaluate_policy(smk) -> None:
    spec = {
        **_training_spec(smk),
        "policy": None,
        "steps": str(smk.output.steps),
        "examples": str(smk.output.examples),
    }
    if smk.params.policy != "conventional":
        spec["policy"] = str(Path(smk.input.policies) / f"{smk.params.policy}.pt")
    _run_training(smk, "evaluate_policy_run", spec)


def evaluate_policy_run(spec: dict) -> None:
    """The evaluation of a spec (`evaluate_policy`), in this process."""
    # here, not at the top: torch loads after job() has set the thread environment
    from pipeline.distributed import barrier, is_main
    from pipeline.experiment import initial_parameters
    from pipeline.training.descent import TrainingDiverged
    from pipeline.training.evaluate import dump_steps, evaluate_policy, write_dumps

    run = _load_run(spec)
    theta0 = initial_parameters(run, spec["seed"])
    policy = None
    if spec["policy"] is not None:  # whole on disk (T × N): this process's columns
        policy = load_policy(Path(spec["policy"]))[:, run.train_shard.slice]
        policy = policy.to(device=run.device, dtype=run.dtype).contiguous()
    evaluate = run.settings["evaluate"]
    dumped = dump_steps(run.steps, evaluate["dump_every"], evaluate["dump_dense_until"])
    try:
        steps, examples = evaluate_policy(run, theta0, policy, dumped)
    except TrainingDiverged as err:
        raise _diverged(err, run.settings) from None
    if is_main():
        write_dumps(steps, examples, spec["steps"], spec["examples"], run.settings)
        log.info(
            "final test loss %.5g, test AUC %.5g",
            steps["test_loss"].iloc[-1],
            auc(steps["test_loss"]),
        )
    barrier()


def tinystories_data(smk) -> None:
    with job(rule_log(smk), smk.threads):
        stats = build_tinystories(
            smk.params.settings, Path(smk.output.train).parent, smk.params.seed
        )
        log.info("TinyStories data: %s", json.dumps(stats, default=str))


def evaluate_online(smk) -> None:
    """The online policies of a run: τ on the held-out desired examples, then one evaluation
    per policy (dumps as `evaluate_policy`'s), and the costs measured in this job."""
    spec = {
        **_training_spec(smk),
        "tau_grid": smk.params.tau_grid,
        "tau_source": getattr(smk.input, "tau_source", None) and str(smk.input.tau_source),
        "steps": dict(zip(smk.params.policies, smk.output.steps, strict=True)),
        "examples": dict(zip(smk.params.policies, smk.output.examples, strict=True)),
        "costs": str(smk.output.costs),
    }
    _run_training(smk, "evaluate_online_run", spec)


def online_flops(smk) -> None:
    """The FLOPs of finding and running each policy of a run (pipeline/policy/flops.py), in one
    process: counted on the run's own shapes, they do not depend on how many run it."""
    # here, not at the top: torch loads after job() has set the thread environment
    from pipeline.experiment import initial_parameters, load_run
    from pipeline.policy import online
    from pipeline.policy.flops import policy_flops

    with job(rule_log(smk), smk.threads, uses_torch=True):
        spec = _training_spec(smk)
        run = _load_run(spec)
        theta0 = initial_parameters(run, spec["seed"])
        split = load_run(online.split_settings(run.settings), spec["data_dir"], run.device,
                         run.dtype)  # fmt: skip
        flops = policy_flops(run, online.held_out_run(split), theta0, smk.params.tau_grid)
        flops = {"run": run.settings["name"], "seed": spec["seed"], **flops}
        log.info("FLOPs: conventional run %.3g, policy epoch %.3g (%.2f runs), online: %s",
                 flops["conventional_run"], flops["policy_epoch"],
                 flops["policy_epoch"] / flops["conventional_run"],
                 {r: f"{c['total'] / flops['conventional_run']:.2f} runs"
                  for r, c in flops["policies"].items()})  # fmt: skip
        Path(smk.output.flops).write_text(json.dumps(flops, indent=2) + "\n")


def online_frontier_points(smk) -> None:
    """The conventional and the online policies as points of the J–test frontier
    (`policy_frontier`): each online rule's T × N policy at the τ its online job chose, on the
    run with the frontier's held-out split, and one adjoint pass each for J, the held-out and
    test AUCs and the stationarity gap (the same metrics as a path's history)."""
    # here, not at the top: torch loads after job() has set the thread environment
    from pipeline.experiment import initial_parameters
    from pipeline.policy import online
    from pipeline.policy.optimize import (
        conventional_curves,
        conventional_policy,
        epoch_gradient,
        policy_metrics,
    )

    with job(rule_log(smk), smk.threads, uses_torch=True):
        spec = _training_spec(smk)
        split = {**spec, "settings": online.split_settings(spec["settings"])}
        run = _load_run(split, trains_many_runs=True)
        theta0 = initial_parameters(run, spec["seed"])
        policies = {"conventional": conventional_policy(run)}
        for rule in ONLINE_POLICIES:
            tau = warm_start_tau(smk.input.costs, rule)
            policies[rule] = online.online_policy_matrix(run, theta0, rule, tau)
        rows, conventional = [], None
        for name, policy in policies.items():
            result = epoch_gradient(run, theta0, policy)
            conventional = conventional or conventional_curves(
                result.desired_losses, result.test_losses
            )
            rows.append({"path": name, "epoch": 0, **policy_metrics(run, policy, result,
                                                                     conventional)})  # fmt: skip
            log.info("%s: J %.5g, held-out AUC %.5g, test AUC %.5g, test AR %.3f, gap/J %.3g",
                     name, rows[-1]["objective"], rows[-1]["validation_auc"],
                     rows[-1]["test_auc"], rows[-1]["test_acceleration_ratio"],
                     rows[-1]["relative_gap"])  # fmt: skip
        pd.DataFrame(rows).to_csv(smk.output.points, index=False)


def shared_tau(source: dict, rule: str) -> dict:
    """A rule's τ from the costs.json of the run that chose it (`online.shared_tau`), with that
    choice's grid, held-out AUCs and seconds: what finding the policy costs is the same, paid
    once for every seed."""
    chosen = source["policies"][rule]
    return {"tau": chosen["tau"], "grid": chosen["grid"], "held_out_auc": chosen["held_out_auc"],
            "seconds": chosen["selection_seconds"], "tau_from": source["run"]}  # fmt: skip


def evaluate_online_run(spec: dict) -> None:
    """`evaluate_online` in this process. Timed alike (wall seconds of `evaluate_policy`): each
    τ candidate's run, each online policy's evaluation and a conventional evaluation with the
    same dump steps, run after the τ runs so that neither pays the process's first-run costs."""
    # here, not at the top: torch loads after job() has set the thread environment
    from pipeline.distributed import barrier, is_main
    from pipeline.experiment import initial_parameters, load_run
    from pipeline.policy import online
    from pipeline.training.descent import TrainingDiverged
    from pipeline.training.evaluate import dump_steps, write_dumps

    run = _load_run(spec, trains_many_runs=True)
    theta0 = initial_parameters(run, spec["seed"])
    split = load_run(online.split_settings(run.settings), spec["data_dir"], run.device, run.dtype)
    held_out = online.held_out_run(dataclasses.replace(split, model=run.model))  # compiled once
    evaluate = run.settings["evaluate"]
    dumped = dump_steps(run.steps, evaluate["dump_every"], evaluate["dump_dense_until"])
    costs: dict = {"run": run.settings["name"], "seed": spec["seed"], "policies": {}}
    shared = json.loads(Path(spec["tau_source"]).read_text()) if spec["tau_source"] else None
    for rule in ONLINE_POLICIES:
        if rule in TAU_RULES and shared is not None:
            chosen = shared_tau(shared, rule)
            log.info("%s: τ = %g, chosen at %s's held-out desired examples (online.shared_tau)",
                     rule, chosen["tau"], shared["run"])  # fmt: skip
        elif rule in TAU_RULES:
            chosen = online.choose_tau(held_out, theta0, rule, spec["tau_grid"][rule])
            log.info("%s: τ = %g (held-out AUC per τ: %s)", rule, chosen["tau"],
                     dict(zip(chosen["grid"], chosen["held_out_auc"], strict=True)))  # fmt: skip
            if at_grid_end(chosen["tau"], chosen["grid"]):
                log.warning("%s: τ = %g is at an end of `online.tau_grid.%s`: a wider grid might "
                            "choose further out", rule, chosen["tau"], rule)  # fmt: skip
        else:
            chosen = {"tau": None, "grid": [], "held_out_auc": [], "seconds": 0.0}
        costs["policies"][rule] = {**chosen, "selection_seconds": chosen.pop("seconds")}
    try:
        *_, costs["conventional_seconds"] = online.timed_evaluation(run, theta0, None, dumped)
        for rule, cost in costs["policies"].items():
            policy = online.online_policy(rule, cost["tau"], run)
            steps, examples, cost["run_seconds"] = online.timed_evaluation(
                run, theta0, policy, dumped
            )
            if is_main():
                write_dumps(
                    steps, examples, spec["steps"][rule], spec["examples"][rule], run.settings
                )
    except TrainingDiverged as err:
        raise _diverged(err, run.settings) from None
    for rule, cost in costs["policies"].items():
        cost["seconds"] = cost["selection_seconds"] + cost["run_seconds"]
        cost["conventional_runs"] = cost["seconds"] / costs["conventional_seconds"]
        log.info("%s: %.1f s = %.2f conventional runs (τ selection %.1f s, its run %.1f s)",
                 rule, cost["seconds"], cost["conventional_runs"], cost["selection_seconds"],
                 cost["run_seconds"])  # fmt: skip
    if is_main():
        Path(spec["costs"]).write_text(json.dumps(costs, indent=2) + "\n")
    barrier()
