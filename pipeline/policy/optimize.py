"""Policy optimisation (Eq. 6): projected gradient descent on γ from the conventional policy,

    γ_t ← Proj_Δ(γ_t − ε_e · s · ∂J/∂γ_t),

with ε_e the step size of epoch e (constant, or decaying linearly to 0) and s = 1 for J summed
over the T steps or 1/T for J averaged over them (the paper does not say which; SPEC §5).

The optimiser saves the policy at epoch 0, every `save_every` epochs and at the last epoch. Each
save also writes a resume state (the policy, the epoch and the history so far) under a directory
that Snakemake does not own, so a killed run restarts from its last saved epoch, not from zero.

With several processes each optimises its columns of γ (`run.train_shard`); the saved policies
and resume states are whole (T × N), written by the first process, so that a run can resume with
another number of processes and the evaluation can read them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from pipeline.analysis.metrics import compression_ratio
from pipeline.distributed import (
    all_reduce_mean,
    gather_columns,
    global_norm,
    is_main,
    mean_share,
    total_count,
)
from pipeline.experiment import Run
from pipeline.models.base import batch_size
from pipeline.policy.adjoint import policy_gradient, sqrt_checkpointing
from pipeline.policy.simplex import project_to_simplex
from pipeline.training.descent import conventional_weights, descent_step

log = logging.getLogger(__name__)


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


@torch.no_grad()
def loss_curves(run: Run, theta0: Tensor, policy: Tensor) -> tuple[Tensor, Tensor]:
    """(L_dsr(θ_t), L_tst(θ_t)) for t = 0..T under `policy`, by plain training (no adjoint)."""
    theta = theta0
    desired = torch.empty(run.steps + 1, dtype=run.dtype)
    test = torch.empty_like(desired)
    for t in range(run.steps + 1):
        desired[t] = run.model.mean_loss(theta, run.desired)
        test[t] = run.model.mean_loss(theta, run.test)
        if t < run.steps:
            theta = descent_step(run.model, theta, run.train, policy[t], run.eta)[0]
    desired = all_reduce_mean(desired, mean_share(batch_size(run.desired)))
    return desired, all_reduce_mean(test, mean_share(batch_size(run.test)))


@dataclass
class ResumeState:
    epoch: int
    policy: Tensor
    history: list[dict]


def settings_fingerprint(run: Run, seed: int) -> str:
    """A hash of everything that determines the optimisation, to refuse a stale resume state."""
    key = {k: run.settings[k] for k in ("data", "train", "policy")}
    key.update(seed=seed, dtype=str(run.dtype), model=run.settings.get("model"))
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_resume_state(resume_dir: Path, fingerprint: str) -> ResumeState | None:
    """The last saved state of an interrupted optimisation with the same settings, if any."""
    path = resume_dir / "state.pt"
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        log.warning("ignoring %s: it was written with other settings", path)
        return None
    return ResumeState(state["epoch"], state["policy"], state["history"])


def _save_atomic(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def whole_policy(run: Run, policy: Tensor) -> Tensor | None:
    """γ (T × N) on the CPU of the first process, from every process's columns; None elsewhere."""
    whole = gather_columns(policy, run.n_train)
    return None if whole is None else whole.cpu()


def optimize_policy(
    run: Run,
    theta0: Tensor,
    policy_paths: dict[int, Path],
    history_path: Path,
    resume_dir: Path,
    seed: int,
) -> pd.DataFrame:
    """Run E epochs of projected gradient descent on γ; save policies and the per-epoch history.

    `policy_paths` maps each saved epoch to its output file. The history has one row per epoch
    e = 0..E with J(γ_e) on the desired set and the test AUC and compression ratio of γ_e.
    """
    settings = run.settings["policy"]
    epochs = settings["epochs"]
    k = settings["checkpoint_every"] or sqrt_checkpointing(run.steps)
    fingerprint = settings_fingerprint(run, seed)
    if is_main():
        resume_dir.mkdir(parents=True, exist_ok=True)

    state = load_resume_state(resume_dir, fingerprint)
    if state is None:
        epoch, policy, history = 0, conventional_policy(run), []
    else:
        epoch, history = state.epoch, state.history
        columns = state.policy[:, run.train_shard.slice]  # the state is whole: any process count
        policy = columns.to(device=run.device, dtype=run.dtype)
        log.info(
            "resuming policy optimisation at epoch %d of %d from %s", epoch, epochs, resume_dir
        )

    bar = tqdm(
        total=epochs,
        initial=epoch,
        desc=f"policy epochs ({run.settings['name']})",
        disable=not is_main(),
    )
    while True:
        start = time.perf_counter()
        if epoch < epochs:
            result = policy_gradient(
                run.model, theta0, run.train, run.desired, policy, run.eta, k, test=run.test
            )
            desired_losses, test_losses = result.desired_losses, result.test_losses
        else:  # the last policy: its curves without a gradient
            desired_losses, test_losses = loss_curves(run, theta0, policy)
        objective = float(desired_losses[1:].sum())
        test_auc = float(test_losses[1:].sum())
        row = {
            "epoch": epoch,
            "objective": objective,
            "desired_compression_ratio": compression_ratio(objective, run.steps, run.log_vocab),
            "test_auc": test_auc,
            "test_compression_ratio": compression_ratio(test_auc, run.steps, run.log_vocab),
            "final_test_loss": float(test_losses[-1]),
            "support": total_count(int(torch.count_nonzero(policy))) / (run.steps * run.n_train),
        }
        if epoch in policy_paths:
            whole = whole_policy(run, policy)
            if is_main():
                torch.save(whole, resume_dir / f"epoch{epoch:04d}.pt")
        if epoch == epochs:
            row["seconds"] = time.perf_counter() - start
            history.append(row)
            break
        eps = policy_step_size(settings, epoch, run.steps)
        policy = project_to_simplex(torch.add(policy, result.grad, alpha=-eps))
        row.update(
            step_size=eps, grad_norm=global_norm(result.grad), seconds=time.perf_counter() - start
        )
        history.append(row)
        log.info(
            "epoch %d: J %.5g, test AUC %.5g, test CR %.4f, support %.3f, %.1fs",
            epoch,
            objective,
            test_auc,
            row["test_compression_ratio"],
            row["support"],
            row["seconds"],
        )
        epoch += 1
        bar.update()
        if epoch in policy_paths or epoch == epochs:
            whole = whole_policy(run, policy)
            if is_main():
                _save_atomic(
                    {
                        "fingerprint": fingerprint,
                        "epoch": epoch,
                        "policy": whole,
                        "history": history,
                    },
                    resume_dir / "state.pt",
                )
    bar.close()

    frame = pd.DataFrame(history)
    if not is_main():  # the first process writes every output
        return frame
    history_path.parent.mkdir(parents=True, exist_ok=True)
    for saved, path in policy_paths.items():
        (resume_dir / f"epoch{saved:04d}.pt").replace(path)
    frame.to_parquet(history_path, index=False)
    (resume_dir / "state.pt").unlink(missing_ok=True)
    return frame
