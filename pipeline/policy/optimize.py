"""Policy optimisation (Eq. 6): descent on γ over the product of simplices, from a start policy.

`policy.optimizer` chooses the step (ε_e the step size of epoch e, constant or decaying linearly
to 0, times s = 1 for J summed over the T steps or 1/T for J averaged over them; the paper does
not say which, docs/method.md §5):

- `projected_gradient` (the paper's and the authors'): γ_t ← Proj_Δ(γ_t − ε_e · s · ∂J/∂γ_t);
- `mirror_descent` (exponentiated gradient): γ_t ← γ_t · exp(−ε_e · s · ∂J/∂γ_t) / Z_t.

`policy.init` is the start: the conventional policy, or the T × N policy an online rule computes
along its own run at the τ its online job chose (a warm start, pipeline/policy/online.py).
`policy.form: time_independent` optimises one row shared by every step (γ_t = γ, N weights
instead of T × N) with the same adjoint: its gradient is Σ_t ∂J/∂γ_t.

Every epoch's history row holds the Frank–Wolfe stationarity gap of its policy
(`frank_wolfe_gap`, zero exactly at a stationary point), in the history as `stationarity_gap`
and relative to J as `relative_gap`.

The optimiser saves the policy at epoch 0, every `save_every` epochs and at the last epoch, each
time with a resume state (pipeline/policy/checkpoint.py): a killed run restarts from its last
saved epoch, not from zero.

With `policy.selection: validation` the run holds out part of the desired set (`Run.validation`):
J leaves it out, every epoch's policy gets its AUC on it, and the policy of the epoch with the
lowest one (epoch 0, the start policy, included) is saved as the near-optimal policy
`selected.pt`. The test set never chooses anything.

With several processes each optimises its columns of γ (`run.train_shard`); the saved policies
and resume states are whole (T × N), written by the first process, so that a run can resume with
another number of processes and the evaluation can read them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from pipeline.distributed import (
    all_reduce_max,
    all_reduce_mean,
    barrier,
    global_norm,
    is_main,
    mean_share,
    total_count,
)
from pipeline.experiment import Run
from pipeline.metrics import acceleration_ratio, auc, compression_ratio
from pipeline.models.base import batch_size
from pipeline.policy.adjoint import PolicyGradient, policy_gradient, sqrt_checkpointing
from pipeline.policy.checkpoint import (
    Selection,
    finish_optimisation,
    load_resume_state,
    resume_controls,
    resume_policy_path,
    save_atomic,
    save_resume_state,
    settings_fingerprint,
    whole_policy,
)
from pipeline.policy.simplex import exponentiated_step, frank_wolfe_gap, project_to_simplex
from pipeline.progress import SILENT, Progress
from pipeline.training.descent import TrainingDiverged, conventional_weights, descent_step

log = logging.getLogger(__name__)


def _curve(losses: Tensor) -> list[float]:
    """A loss curve t = 0..T as floats (for the AR, the resume state and its JSON record)."""
    return losses.detach().cpu().double().tolist()


def conventional_policy(run: Run) -> Tensor:
    """γ_{t,n} = 1/N for every step and example (this process's examples n)."""
    row = conventional_weights(run.n_train, torch.empty((), dtype=run.dtype, device=run.device))
    return row[run.train_shard.slice].expand(run.steps, -1).clone()


def policy_step_size(settings: dict, epoch: int, steps: int) -> float:
    """ε of the update after `epoch`, including the objective's normalisation."""
    scale = 1.0 / steps if settings["objective_scale"] == "mean" else 1.0
    decay = 1.0
    if settings["schedule"] == "linear":
        decay = 1.0 - epoch / max(1, settings["epochs"])
    return settings["step_size"] * scale * decay


def checkpoint_interval(run: Run) -> int:
    """k of the adjoint's checkpointing: `policy.checkpoint_every`, or √T when it is 0."""
    return run.settings["policy"]["checkpoint_every"] or sqrt_checkpointing(run.steps)


def epoch_gradient(
    run: Run, theta0: Tensor, policy: Tensor, progress: Progress = SILENT
) -> PolicyGradient:
    """J(γ), ∂J/∂γ and the loss curves (desired, test, validation if held out) of one policy
    epoch: the adjoint pass that the optimiser runs and the bench times."""
    return policy_gradient(
        run.model,
        theta0,
        run.train,
        run.desired,
        policy,
        run.eta,
        checkpoint_interval(run),
        test=run.test,
        progress=progress,
        validation=run.validation,
    )


@torch.no_grad()
def loss_curves(run: Run, theta0: Tensor, policy: Tensor) -> dict[str, Tensor]:
    """{desired, test[, validation]: L(θ_t) for t = 0..T} under `policy`, by plain training."""
    sets = {"desired": run.desired, "test": run.test, "validation": run.validation}
    sets = {name: batch for name, batch in sets.items() if batch is not None}
    curves = {name: torch.empty(run.steps + 1, dtype=run.dtype) for name in sets}
    theta = theta0
    for t in range(run.steps + 1):
        for name, batch in sets.items():
            curves[name][t] = run.model.mean_loss(theta, batch)
        if t < run.steps:
            theta = descent_step(run.model, theta, run.train, policy[t], run.eta)[0]
    return {
        name: all_reduce_mean(curves[name], mean_share(batch_size(sets[name]))) for name in sets
    }


class PolicyDiverged(TrainingDiverged):
    """Training under the policy of one policy-optimisation epoch diverged."""

    def __init__(self, epoch: int, epochs: int, err: TrainingDiverged) -> None:
        super().__init__(err.step, err.loss, err.initial_loss)
        self.epoch, self.epochs = epoch, epochs
        self.args = (f"policy epoch {epoch} of {epochs}: {err}",)


def conventional_curves(desired: Tensor, test: Tensor) -> dict[str, list[float]]:
    """The conventional policy's desired and test curves, the reference of every AR."""
    return {"desired": _curve(desired), "test": _curve(test)}


def conventional_run_curves(run: Run, theta0: Tensor) -> dict[str, list[float]]:
    """`conventional_curves` by one plain training run under the conventional policy."""
    curves = loss_curves(run, theta0, conventional_policy(run))
    return conventional_curves(curves["desired"], curves["test"])


def policy_metrics(
    run: Run, policy: Tensor, result: PolicyGradient, conventional: dict, form: str = "per_step"
) -> dict:
    """What the history records of a policy γ from its adjoint pass `result`: J (desired AUC),
    desired and test CR, test AUC, final test loss, test and desired AR against the
    `conventional` curves, support, the stationarity gap (absolute and / J), ‖∂J/∂γ‖ in the
    policy's form, and the held-out AUC when the run holds part of the desired set out."""
    objective, test_auc = auc(result.desired_losses), auc(result.test_losses)
    gap = stationarity_gap(form, policy, result.grad)
    metrics = {
        "objective": objective,
        "desired_compression_ratio": compression_ratio(objective, run.steps, run.log_vocab),
        "test_auc": test_auc,
        "test_compression_ratio": compression_ratio(test_auc, run.steps, run.log_vocab),
        "final_test_loss": float(result.test_losses[-1]),
        "test_acceleration_ratio": acceleration_ratio(
            conventional["test"], _curve(result.test_losses)
        ),
        "desired_acceleration_ratio": acceleration_ratio(
            conventional["desired"], _curve(result.desired_losses)
        ),
        "support": total_count(int(torch.count_nonzero(policy))) / (run.steps * run.n_train),
        "stationarity_gap": gap,
        "relative_gap": gap / objective,
        "grad_norm": global_norm(form_gradient(form, result.grad)),
    }
    if result.validation_losses is not None:
        metrics["validation_auc"] = auc(result.validation_losses)
    return metrics


def start_policy(run: Run, warm_start: Callable[[], Tensor] | None) -> Tensor:
    """γ at epoch 0: the conventional policy, or the warm start's T × N policy (`policy.init`).
    Under mirror descent it is mixed with the conventional one by `policy.init_mix`, since a
    multiplicative step cannot move an exact zero (the greedy rule's projection has many)."""
    conventional = conventional_policy(run)
    if warm_start is None:
        return conventional
    policy = warm_start().to(device=run.device, dtype=run.dtype)
    settings = run.settings["policy"]
    if settings["optimizer"] == "mirror_descent":
        policy = torch.lerp(policy, conventional, settings["init_mix"])
    return policy


def form_gradient(form: str, grad: Tensor) -> Tensor:
    """∂J/∂γ in the policy's form: per step as it is; time-independent (γ_t = γ for every t) the
    sum over steps Σ_t ∂J/∂γ_t, repeated on every row so that equal rows stay equal."""
    if form == "time_independent":
        return grad.sum(0, keepdim=True).expand_as(grad)
    return grad


def policy_update(optimizer: str, policy: Tensor, grad: Tensor, step: float) -> Tensor:
    """One step of `policy.optimizer` on γ with gradient `grad` and step size `step`."""
    if optimizer == "mirror_descent":
        return exponentiated_step(policy, grad, step)
    return project_to_simplex(torch.add(policy, grad, alpha=-step))


def stationarity_gap(form: str, policy: Tensor, grad: Tensor) -> float:
    """The Frank–Wolfe gap of γ in its form: over every row per step, over the one shared row
    (with Σ_t ∂J/∂γ_t) when time-independent."""
    if form == "time_independent":
        return frank_wolfe_gap(policy[:1], grad.sum(0, keepdim=True))
    return frank_wolfe_gap(policy, grad)


#: Seconds of work after which an epoch that saves no policy writes the resume state all the
#: same: an interruption then loses at most about this much plus one epoch (a Transformer epoch
#: takes minutes, and its policies are saved every few epochs), while a fast epoch with a large
#: policy (the Perceptron's: about a second, 33 MB) does not write its state every time.
RESUME_EVERY_SECONDS = 60.0


def resume_due(last_save: float, device: torch.device) -> bool:
    """Whether RESUME_EVERY_SECONDS have passed since `last_save` (perf_counter) in the slowest
    process: the same answer in every process, since saving gathers the policy from all (the
    reduction on the run's device: NCCL reduces CUDA tensors only)."""
    elapsed = torch.tensor(time.perf_counter() - last_save, dtype=torch.float64, device=device)
    return float(all_reduce_max(elapsed)) >= RESUME_EVERY_SECONDS


def optimize_policy(
    run: Run,
    theta0: Tensor,
    policy_paths: dict[int, Path],
    history_path: Path,
    resume_dir: Path,
    seed: int,
    selected_path: Path | None = None,
    warm_start: Callable[[], Tensor] | None = None,
    warm_start_tau: float | None = None,
) -> pd.DataFrame:
    """Run E epochs of `policy.optimizer` on γ; save policies and the per-epoch history.

    `policy_paths` maps each saved epoch to its output file; `selected_path` receives the policy
    chosen on the validation set when the run has one; `warm_start` gives the start policy of
    `policy.init` other than conventional (this process's columns), computed with τ =
    `warm_start_tau`. The history has one row per epoch e = 0..E with J(γ_e) on the desired set,
    the test AUC and compression ratio of γ_e, its test and desired AR against the conventional
    policy, the stationarity gap of γ_e (absolute and relative to J), and with a validation set
    its AUC there and whether γ_e is the selected policy.
    """
    settings = run.settings["policy"]
    epochs, form = settings["epochs"], settings["form"]
    fingerprint = settings_fingerprint(run, seed, warm_start_tau=warm_start_tau)
    controls = resume_controls(run)
    if is_main():
        resume_dir.mkdir(parents=True, exist_ok=True)

    # the first process sets damaged files aside; the others then find what it resumes from
    state = load_resume_state(resume_dir, fingerprint, policy_paths) if is_main() else None
    barrier()
    if not is_main():
        state = load_resume_state(resume_dir, fingerprint, policy_paths, verify=False)
    conventional = None  # the conventional policy's curves: every epoch's AR
    if state is None:
        epoch, history, selection = 0, [], Selection()
        policy = start_policy(run, warm_start)
    else:
        epoch, history, selection = state.epoch, state.history, state.selection
        columns = state.policy[:, run.train_shard.slice]  # the state is whole: any process count
        policy = columns.to(device=run.device, dtype=run.dtype)
        log.info(
            "resuming policy optimisation at epoch %d of %d from %s", epoch, epochs, resume_dir
        )
        conventional = state.conventional
    if conventional is None and (state is not None or warm_start is not None):
        conventional = conventional_run_curves(run, theta0)  # epoch 0 is not conventional

    progress = (
        Progress(
            run.settings["name"], {"forward": run.steps, "adjoint": run.steps}, epochs + 1, epoch
        )
        if is_main()
        else SILENT
    )
    last_resume_save = time.perf_counter()
    while epoch <= epochs:  # a state at epochs + 1: every row done, only publishing is left
        start = time.perf_counter()
        try:  # the last epoch too: the stationarity gap of the policy the run publishes
            result = epoch_gradient(run, theta0, policy, progress)
        except TrainingDiverged as err:
            raise PolicyDiverged(epoch, epochs, err) from None
        if conventional is None:  # epoch 0 of a fresh start from the conventional policy
            conventional = conventional_curves(result.desired_losses, result.test_losses)
        grad = form_gradient(form, result.grad)
        row = {"epoch": epoch, **policy_metrics(run, policy, result, conventional, form)}
        if result.validation_losses is not None:
            selection.offer(epoch, row["validation_auc"], run, policy)
        whole = whole_policy(run, policy) if epoch in policy_paths or epoch == epochs else None
        if epoch in policy_paths and is_main():
            save_atomic(whole, resume_policy_path(resume_dir, epoch), controls)
        if epoch == epochs:
            row["seconds"] = time.perf_counter() - start
            history.append(row)
            if is_main():  # the last epoch's pass is not redone if publishing is interrupted
                save_resume_state(
                    resume_dir, fingerprint, epoch + 1, whole, history, selection, conventional,
                    controls,
                )  # fmt: skip
            break
        eps = policy_step_size(settings, epoch, run.steps)
        policy = policy_update(settings["optimizer"], policy, grad, eps)
        row.update(step_size=eps, seconds=time.perf_counter() - start)
        history.append(row)
        log.info(
            "epoch %d: J %.5g, test AUC %.5g, test CR %.4f, gap/J %.3g, support %.3f, %.1fs",
            epoch,
            row["objective"],
            row["test_auc"],
            row["test_compression_ratio"],
            row["relative_gap"],
            row["support"],
            row["seconds"],
        )
        epoch += 1
        progress.end_epoch()
        saved = epoch in policy_paths or epoch == epochs
        if saved or resume_due(last_resume_save, run.device):
            whole = whole_policy(run, policy)
            if is_main():
                save_resume_state(
                    resume_dir,
                    fingerprint,
                    epoch,
                    whole,
                    history,
                    selection,
                    conventional,
                    controls,
                    record=saved,
                )
            last_resume_save = time.perf_counter()
    progress.close()
    selected = None
    if run.validation is not None:
        for row in history:
            row["selected"] = row["epoch"] == selection.epoch
        log.info(
            "selected the policy of epoch %d (validation AUC %.5g) of %d",
            selection.epoch,
            selection.auc,
            epochs,
        )
        if selected_path is not None:
            selected = (selection.policy, selected_path)
    if not is_main():  # the first process writes every output
        return pd.DataFrame(history)
    return finish_optimisation(resume_dir, policy_paths, history, history_path, selected, controls)
