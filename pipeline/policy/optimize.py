"""Policy optimisation (Eq. 6): projected gradient descent on γ from the conventional policy,

    γ_t ← Proj_Δ(γ_t − ε_e · s · ∂J/∂γ_t),

with ε_e the step size of epoch e (constant, or decaying linearly to 0) and s = 1 for J summed
over the T steps or 1/T for J averaged over them (the paper does not say which; SPEC §5).

The optimiser saves the policy at epoch 0, every `save_every` epochs and at the last epoch. Each
save also writes a resume state (the policy, the epoch and the history so far) under a directory
that Snakemake does not own, so a killed run restarts from its last saved epoch, not from zero;
`finish_optimisation` publishes the outputs so that a run killed at any point of it finishes on
the next attempt without redoing an epoch. Every file is written all or nothing (`write_atomic`:
a full disk leaves no truncated file and names the setting `save_every`). Beside each saved
policy a small record (`epochNNNN.json`: the history and the held-out choice so far) lets a run
whose `state.pt` cannot be read resume from the newest saved epoch whose files load; a file that
cannot be read is set aside as `<name>.damaged` (and kept), not deleted.

With `policy.selection: validation` the run holds out part of the desired set (`Run.validation`):
J leaves it out, every epoch's policy gets its AUC on it, and the policy of the epoch with the
lowest one (epoch 0, the conventional policy, included) is saved as the near-optimal policy
`selected.pt`. The test set never chooses anything.

With several processes each optimises its columns of γ (`run.train_shard`); the saved policies
and resume states are whole (T × N), written by the first process, so that a run can resume with
another number of processes and the evaluation can read them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from pipeline.analysis.metrics import acceleration_ratio, auc, compression_ratio
from pipeline.config import policy_name, saved_policy_count
from pipeline.distributed import (
    all_reduce_mean,
    barrier,
    gather_columns,
    global_norm,
    is_main,
    mean_share,
    total_count,
)
from pipeline.experiment import Run
from pipeline.models.base import batch_size
from pipeline.policy.adjoint import PolicyGradient, policy_gradient, sqrt_checkpointing
from pipeline.policy.simplex import project_to_simplex
from pipeline.progress import SILENT, Progress
from pipeline.results import write_atomic
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


@dataclass
class Selection:
    """The best policy on the validation set so far (`policy.selection: validation`); the whole
    policy is held by the first process only."""

    epoch: int = -1
    auc: float = math.inf
    policy: Tensor | None = None

    def offer(self, epoch: int, auc: float, run: Run, policy: Tensor) -> None:
        """Keep `policy` if its validation AUC is the lowest yet (the earlier epoch on ties). The
        AUC is the same on every process, so all of them take part in gathering the columns."""
        if auc < self.auc:
            self.epoch, self.auc, self.policy = epoch, auc, whole_policy(run, policy)


@dataclass
class ResumeState:
    epoch: int
    policy: Tensor
    history: list[dict]
    selection: Selection
    conventional: dict[str, list[float]] | None = None  # epoch 0's curves (None: older state)


def settings_fingerprint(run: Run, seed: int) -> str:
    """A hash of everything that determines the optimisation, to refuse a stale resume state."""
    key = {k: run.settings[k] for k in ("data", "train", "policy")}
    key.update(seed=seed, dtype=str(run.dtype), model=run.settings["model"])
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


class PolicyDiverged(TrainingDiverged):
    """Training under the policy of one policy-optimisation epoch diverged."""

    def __init__(self, epoch: int, epochs: int, err: TrainingDiverged) -> None:
        super().__init__(err.step, err.loss, err.initial_loss)
        self.epoch, self.epochs = epoch, epochs
        self.args = (f"policy epoch {epoch} of {epochs}: {err}",)


def resume_policy_path(resume_dir: Path, epoch: int) -> Path:
    """Where a saved policy waits in the resume directory until the optimisation finishes."""
    return resume_dir / f"{policy_name(epoch)}.pt"


def resume_record_path(resume_dir: Path, epoch: int) -> Path:
    """The small record (history, selection) that lets the optimisation resume at a saved epoch
    from that epoch's policy file when `state.pt` cannot be read."""
    return resume_dir / f"{policy_name(epoch)}.json"


def set_aside(path: Path, error: BaseException) -> Path:
    """Rename a resume file that cannot be read to `<name>.damaged` beside it (kept for a look,
    never deleted), and say so in the log."""
    aside = path.with_name(f"{path.name}.damaged")
    number = 1
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.damaged{number}")
    os.replace(path, aside)
    log.warning(
        "%s cannot be read (%s: %s); set aside as %s", path, type(error).__name__, error, aside
    )
    return aside


def _load(path: Path) -> object | None:
    """A resume file's content, or None after setting a damaged one aside."""
    import pickle

    try:
        if path.suffix == ".json":
            return json.loads(path.read_text())
        return torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        set_aside(path, error)  # ValueError: JSONDecodeError, UnicodeDecodeError
        return None


def _loadable_saved_epochs(
    resume_dir: Path, saved: Iterable[int], before: int, verify: bool = True
) -> list[int]:
    """The saved epochs before `before` whose policy files are there and (if `verify`) load, in
    order, up to the first that is missing or damaged (the policies after it cannot be
    published)."""
    good = []
    for epoch in sorted(e for e in saved if e < before):
        path = resume_policy_path(resume_dir, epoch)
        if not path.exists() or (verify and _load(path) is None):
            break
        good.append(epoch)
    return good


def load_resume_state(
    resume_dir: Path, fingerprint: str, saved: Iterable[int] = (), verify: bool = True
) -> ResumeState | None:
    """The newest resumable state of an interrupted optimisation with the same settings, if any.

    That is `state.pt`, if it loads and the policies of the `saved` epochs before it load beside
    it; otherwise the newest saved epoch whose policy and record load, with every saved policy
    before it (a damaged file is set aside, `set_aside`); otherwise None (epoch 0). Without
    `verify` the saved policies are only required to exist (the other processes, once the first
    has set the damaged files aside)."""
    saved = sorted(saved)
    path = resume_dir / "state.pt"
    had_state = path.exists()
    state = _load(path) if had_state else None
    if state is not None and state.get("fingerprint") != fingerprint:
        log.warning("ignoring %s: it was written with other settings", path)
        return None
    last = state["epoch"] if state is not None else max(saved, default=0) + 1
    good = _loadable_saved_epochs(resume_dir, saved, last, verify)
    if state is not None:
        missing = [e for e in saved if e < last and e not in good]
        if not missing:
            return ResumeState(
                last,
                state["policy"],
                state["history"],
                Selection(**state.get("selection", {})),
                state.get("conventional"),
            )
        log.warning("%s: the policies of epochs %s are missing or damaged beside it", path, missing)
    elif not had_state and not any(resume_record_path(resume_dir, e).exists() for e in good):
        return None  # a fresh start: nothing was saved
    for epoch in reversed(good):
        record = resume_record_path(resume_dir, epoch)
        fallback = _load(record) if record.exists() else None
        if fallback is None or fallback.get("fingerprint") != fingerprint:
            continue
        chosen = fallback["selection"]
        selection = Selection(chosen["epoch"], chosen["auc"])
        if selection.epoch >= 0:  # the held-out choice so far: a saved policy, or no fallback
            if selection.epoch not in good[: good.index(epoch) + 1]:
                continue
            selection.policy = torch.load(resume_policy_path(resume_dir, selection.epoch))
        policy = torch.load(resume_policy_path(resume_dir, epoch), map_location="cpu")
        log.warning(
            "resuming from the newest saved epoch whose files load, %d, instead of the damaged "
            "or missing state",
            epoch,
        )
        return ResumeState(
            epoch, policy, fallback["history"], selection, fallback.get("conventional")
        )
    log.warning("no saved epoch of %s can be resumed: starting from epoch 0", resume_dir)
    return None


def _resume_controls(run: Run) -> str:
    """The settings that decide how much the policy optimisation writes, for a failed write."""
    kind, policy = run.settings["kind"], run.settings["policy"]
    size = run.steps * run.n_train * torch.empty((), dtype=run.dtype).element_size()
    count = saved_policy_count(policy["epochs"], policy["save_every"])
    return (
        f"Each saved policy (T × N = {run.steps} × {run.n_train}) takes {size / 1e6:.3g} MB, and "
        f"one is saved every `{kind}.policy.save_every` = {policy['save_every']} of the "
        f"`{kind}.policy.epochs` = {policy['epochs']} epochs ({count} policies, "
        f"{count * size / 1e9:.3g} GB, plus the resume state); raise save_every to write less."
    )


def _save_atomic(obj: object, path: Path, controls: str = "") -> None:
    """torch.save, all or nothing (`write_atomic`)."""
    write_atomic(path, lambda temporary: torch.save(obj, temporary), controls)


def whole_policy(run: Run, policy: Tensor) -> Tensor | None:
    """γ (T × N) on the CPU of the first process, from every process's columns; None elsewhere."""
    whole = gather_columns(policy, run.n_train)
    return None if whole is None else whole.cpu()


def _publish(source: Path, target: Path, staging: Path) -> None:
    """Give `target` the content of `source`, which stays: a hard link (a copy across file
    systems) made under the name `staging`, then renamed onto `target` in one step."""
    staging.unlink(missing_ok=True)
    try:
        os.link(source, staging)
    except OSError:
        shutil.copyfile(source, staging)
    os.replace(staging, target)


def finish_optimisation(
    resume_dir: Path,
    policy_paths: dict[int, Path],
    history: list[dict],
    history_path: Path,
    selected: tuple[Tensor, Path] | None = None,
    controls: str = "",
) -> pd.DataFrame:
    """Publish the saved policies, the selected one (policy, path) if any, and the history,
    then delete the resume directory.

    Restartable from any point: every output is written under a staging name in `resume_dir`
    and renamed into place, and the resume files stay until all outputs are there. Deleting
    `state.pt` is the commit. A run killed before it resumes at the last epoch on the next
    attempt and publishes again; a run killed after it, while the directory is removed, has
    written every output, and the re-run Snakemake still makes starts over (no state is left)
    and writes the same files.
    """
    for epoch, path in policy_paths.items():
        _publish(resume_policy_path(resume_dir, epoch), path, resume_dir / f"{path.name}.publish")
    if selected is not None:
        policy, path = selected
        _save_atomic(policy, resume_dir / "selected.pt", controls)
        _publish(resume_dir / "selected.pt", path, resume_dir / f"{path.name}.publish")
    frame = pd.DataFrame(history)
    history_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(history_path, lambda path: frame.to_parquet(path, index=False), controls)
    (resume_dir / "state.pt").unlink(missing_ok=True)  # missing: resumed from a record
    damaged = sorted(resume_dir.glob("*.damaged*"))
    if damaged:  # kept for a look: everything else goes
        for path in resume_dir.iterdir():
            if path not in damaged:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        log.warning("kept the damaged resume files %s", [str(p) for p in damaged])
    else:
        shutil.rmtree(resume_dir)
    return frame


def optimize_policy(
    run: Run,
    theta0: Tensor,
    policy_paths: dict[int, Path],
    history_path: Path,
    resume_dir: Path,
    seed: int,
    selected_path: Path | None = None,
) -> pd.DataFrame:
    """Run E epochs of projected gradient descent on γ; save policies and the per-epoch history.

    `policy_paths` maps each saved epoch to its output file; `selected_path` receives the policy
    chosen on the validation set when the run has one. The history has one row per epoch
    e = 0..E with J(γ_e) on the desired set, the test AUC and compression ratio of γ_e, its test
    and desired AR against epoch 0 (the conventional policy: the AR of every epoch without an
    evaluation of its own), and with a validation set its AUC there and whether γ_e is the
    selected policy.
    """
    settings = run.settings["policy"]
    epochs = settings["epochs"]
    fingerprint = settings_fingerprint(run, seed)
    controls = _resume_controls(run)
    if is_main():
        resume_dir.mkdir(parents=True, exist_ok=True)

    # the first process sets damaged files aside; the others then find what it resumes from
    state = load_resume_state(resume_dir, fingerprint, policy_paths) if is_main() else None
    barrier()
    if not is_main():
        state = load_resume_state(resume_dir, fingerprint, policy_paths, verify=False)
    conventional = None  # the conventional policy's curves (epoch 0): every epoch's AR
    if state is None:
        epoch, policy, history, selection = 0, conventional_policy(run), [], Selection()
    else:
        epoch, history, selection = state.epoch, state.history, state.selection
        columns = state.policy[:, run.train_shard.slice]  # the state is whole: any process count
        policy = columns.to(device=run.device, dtype=run.dtype)
        log.info(
            "resuming policy optimisation at epoch %d of %d from %s", epoch, epochs, resume_dir
        )
        conventional = state.conventional
        if conventional is None:  # a state of an earlier version: one conventional run
            curves = loss_curves(run, theta0, conventional_policy(run))
            conventional = {name: _curve(curves[name]) for name in ("desired", "test")}

    progress = (
        Progress(run.settings["name"], {"forward": run.steps, "adjoint": run.steps}, epochs, epoch)
        if is_main()
        else SILENT
    )
    while True:
        start = time.perf_counter()
        if epoch < epochs:
            try:
                result = epoch_gradient(run, theta0, policy, progress)
            except TrainingDiverged as err:
                raise PolicyDiverged(epoch, epochs, err) from None
            desired_losses, test_losses = result.desired_losses, result.test_losses
            validation_losses = result.validation_losses
        else:  # the last policy: its curves without a gradient
            curves = loss_curves(run, theta0, policy)
            desired_losses, test_losses = curves["desired"], curves["test"]
            validation_losses = curves.get("validation")
        objective, test_auc = auc(desired_losses), auc(test_losses)
        if conventional is None:  # epoch 0 of a fresh start: the conventional policy
            conventional = {"desired": _curve(desired_losses), "test": _curve(test_losses)}
        row = {
            "epoch": epoch,
            "objective": objective,
            "desired_compression_ratio": compression_ratio(objective, run.steps, run.log_vocab),
            "test_auc": test_auc,
            "test_compression_ratio": compression_ratio(test_auc, run.steps, run.log_vocab),
            "final_test_loss": float(test_losses[-1]),
            "test_acceleration_ratio": acceleration_ratio(
                conventional["test"], _curve(test_losses)
            ),
            "desired_acceleration_ratio": acceleration_ratio(
                conventional["desired"], _curve(desired_losses)
            ),
            "support": total_count(int(torch.count_nonzero(policy))) / (run.steps * run.n_train),
        }
        if validation_losses is not None:
            row["validation_auc"] = auc(validation_losses)
            selection.offer(epoch, row["validation_auc"], run, policy)
        if epoch in policy_paths:
            whole = whole_policy(run, policy)
            if is_main():
                _save_atomic(whole, resume_policy_path(resume_dir, epoch), controls)
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
        progress.end_epoch()
        if epoch in policy_paths or epoch == epochs:
            whole = whole_policy(run, policy)
            if is_main():
                chosen = {"epoch": selection.epoch, "auc": selection.auc}
                record = {"fingerprint": fingerprint, "history": history, "selection": chosen}
                record["conventional"] = conventional
                write_atomic(
                    resume_record_path(resume_dir, epoch),
                    lambda path, record=record: path.write_text(json.dumps(record)),
                    controls,
                )
                _save_atomic(
                    {
                        "fingerprint": fingerprint,
                        "epoch": epoch,
                        "policy": whole,
                        "history": history,
                        "selection": vars(selection),
                        "conventional": conventional,
                    },
                    resume_dir / "state.pt",
                    controls,
                )
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
