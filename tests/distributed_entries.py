"""Entry functions that tests run in one process and, through pipeline.launch, in several.

Each takes a spec (plain JSON) like the training jobs' and writes what the tests compare.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from pipeline.data.synthetic import policy_after_step
from pipeline.distributed import all_reduce_sum, gather_columns, is_main, rank
from pipeline.experiment import initial_parameters
from pipeline.jobs import training as jobs
from pipeline.policy.adjoint import policy_gradient
from pipeline.policy.simplex import project_to_simplex


def policy_gradient_case(spec: dict) -> None:
    """∂J/∂γ at a policy projected from a random step (few Michelot iterations, so that some
    rows fall back to sorting); the first process saves γ, ∂J/∂γ, J and the loss curves."""
    run = jobs._load_run(spec)
    theta0 = initial_parameters(run, spec["seed"])
    whole = policy_after_step(run.steps, run.n_train, seed=1, dtype=run.dtype)
    step = whole[:, run.train_shard.slice].to(run.device)
    policy = project_to_simplex(step, max_iterations=3)
    result = policy_gradient(
        run.model, theta0, run.train, run.desired, policy, run.eta, 3, test=run.test
    )
    saved = {
        "step": whole,
        "policy": gather_columns(policy, run.n_train),
        "grad": gather_columns(result.grad, run.n_train),
        "objective": result.objective,
        "desired_losses": result.desired_losses,
        "test_losses": result.test_losses,
    }
    if is_main():
        torch.save(saved, spec["out"])


def suite(spec: dict) -> None:
    """Every case of `spec["cases"]` in turn: gradient, optimize (jobs) or evaluate (jobs)."""
    entries = {
        "gradient": policy_gradient_case,
        "optimize": jobs.optimize_policy_run,
        "evaluate": jobs.evaluate_policy_run,
    }
    for case in spec["cases"]:
        entries[case["entry"]]({**spec, **case, "device": spec["device"]})


def fail_on_second_process(spec: dict) -> None:
    """The first process writes part of an output, the second fails mid-way through the job."""
    if is_main():
        with open(spec["output"], "w") as handle:
            handle.write("partial")
    all_reduce_sum(torch.ones(1))
    if rank() == 1:
        raise ValueError("bad example in the second process's share")
    all_reduce_sum(torch.ones(1))


def kill_second_process(spec: dict) -> None:
    """The second process is killed (SIGKILL, as by the out-of-memory killer) mid-way through
    the job; the first then fails in its next collective."""
    import signal

    all_reduce_sum(torch.ones(1))
    if rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    all_reduce_sum(torch.ones(1))


def thread_probe(spec: dict) -> None:
    """Each process writes the threads torch uses and its thread environment to its own file."""
    from pipeline.runtime import THREAD_VARIABLES

    report = {
        "intra_op": torch.get_num_threads(),
        "inter_op": torch.get_num_interop_threads(),
        "environment": {k: os.environ.get(k) for k in (*THREAD_VARIABLES, "OMP_WAIT_POLICY")},
    }
    Path(spec["out"], f"rank{rank()}.json").write_text(json.dumps(report))
