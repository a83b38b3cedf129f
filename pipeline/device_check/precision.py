"""Part (a) of the device check (pipeline/device_check/__init__.py): the smoke preset's
Perceptron and Transformer through the engine on the configured device, every number against a
float64 CPU reference computed from the same data, θ_0 and policy γ.

**Difference.** For each quantity x (a vector or matrix) against its reference r:
max|x − r| / max|r|, the error relative to the quantity's scale (see the package's docstring).
"""

from __future__ import annotations

import logging
import math
import time

import torch
from torch import Tensor

from pipeline.data.synthetic import policy_after_step  # a policy plus a gradient step
from pipeline.device_check.runs import CPU, base_run, on_device, preset_settings
from pipeline.experiment import Run, initial_parameters
from pipeline.policy.optimize import epoch_gradient, policy_step_size
from pipeline.policy.simplex import project_to_simplex
from pipeline.training.descent import TrainingDiverged, descent_step
from pipeline.training.evaluate import dump_steps, evaluate_policy

log = logging.getLogger("pipeline.device_check")


# -- (a) the numbers against a float64 CPU reference ----------------------------------------------
def check_policy(steps: int, n: int, seed: int) -> Tensor:
    """γ (T × N, float64) on the simplex with exact zeros and unequal weights: a policy as the
    optimiser makes them, so that every per-example weight matters (the conventional 1/N would
    not test the weighting)."""
    return project_to_simplex(policy_after_step(steps, n, seed, torch.float64))


def engine_quantities(run: Run, seed: int, policy: Tensor) -> dict[str, Tensor]:
    """Every number of the check, computed on the run's device and dtype, as float64 CPU tensors:
    θ_T after T training steps under γ; J, ∂J/∂γ and the policy after one projected step; the
    evaluation's loss curves and its per-example losses and CT."""
    theta0 = initial_parameters(run, seed)
    gamma = policy.to(device=run.device, dtype=run.dtype)
    out: dict[str, Tensor] = {}
    theta = theta0
    for t in range(run.steps):
        theta = descent_step(run.model, theta, run.train, gamma[t], run.eta)[0]
    out["training: θ_T"] = theta
    gradient = epoch_gradient(run, theta0, gamma)
    # float64: torch.as_tensor of a Python float is float32, which rounds the reference's J
    out["policy gradient: J"] = torch.as_tensor(gradient.objective, dtype=torch.float64)
    out["policy gradient: ∂J/∂γ"] = gradient.grad
    step = policy_step_size(run.settings["policy"], 0, run.steps)
    out["policy step: projected γ"] = project_to_simplex(gamma - step * gradient.grad)
    evaluate = run.settings["evaluate"]
    dumped = dump_steps(run.steps, evaluate["dump_every"], evaluate["dump_dense_until"])
    steps, examples = evaluate_policy(run, theta0, gamma, dumped)
    for column in ("desired_loss", "test_loss", "train_loss"):
        out[f"evaluation: {column.replace('_', ' ')}"] = torch.as_tensor(steps[column].to_numpy())
    out["evaluation: example loss"] = torch.tensor(examples.column("loss").to_numpy())
    out["evaluation: contribution CT"] = torch.tensor(examples.column("contribution").to_numpy())
    return {name: value.detach().to(CPU, torch.float64) for name, value in out.items()}


def relative_difference(value: Tensor, reference: Tensor) -> float:
    """max|x − r| / max|r| (max|x − r| when r = 0; NaN if x has a NaN): see the module's
    docstring."""
    scale = float(reference.abs().max())
    error = float((value - reference).abs().max())
    return error / scale if scale > 0 else error


def compare_with_reference(
    config: dict, device: torch.device, dtype: torch.dtype, tolerance: float
) -> dict:
    """(a) for both models: the largest relative difference of every quantity on the device
    from the float64 CPU reference, and whether all are within `tolerance`."""
    seed = config["seed"]
    models = {}
    for kind in ("perceptron", "transformer"):
        settings = preset_settings(config, "smoke", kind)
        base = base_run(settings, seed)
        policy = check_policy(base.steps, base.n_train, seed)
        start = time.perf_counter()
        reference = engine_quantities(on_device(base, CPU, torch.float64), seed, policy)
        middle = time.perf_counter()
        try:
            checked = engine_quantities(on_device(base, device, dtype), seed, policy)
        except TrainingDiverged as err:  # the reference trained: the device computes garbage
            log.error("%s on %s: %s", kind, device, err)
            checked = {name: torch.full_like(value, math.nan) for name, value in reference.items()}
        seconds = {"reference": middle - start, "device": time.perf_counter() - middle}
        differences = {
            name: relative_difference(checked[name], reference[name]) for name in reference
        }
        models[kind] = {
            "sizes": {
                "n_train": base.n_train,
                "steps": base.steps,
                "params": int(initial_parameters(base, seed).numel()),
            },
            "max_relative_difference": differences,
            "seconds": seconds,
        }
    largest = max(  # NaN, if any
        (d for m in models.values() for d in m["max_relative_difference"].values()),
        key=lambda d: math.inf if math.isnan(d) else d,
    )
    failed = [
        f"{kind} {name}: {difference:.3g}"
        for kind, m in models.items()
        for name, difference in m["max_relative_difference"].items()
        if not difference <= tolerance  # NaN fails too
    ]
    return {
        "tolerance": tolerance,
        "largest_relative_difference": largest,
        "passed": not failed,
        "failed": failed,
        "models": models,
    }
