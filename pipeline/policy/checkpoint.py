"""The policy optimisation's files: the resume state of an interrupted run and the publishing of
its outputs (pipeline/policy/optimize.py runs the algorithm).

Each save writes a resume state (the policy, the epoch and the history so far) under a directory
that Snakemake does not own, so a killed run restarts from its last saved epoch, not from zero;
`finish_optimisation` publishes the outputs so that a run killed at any point of it finishes on
the next attempt without redoing an epoch. Every file is written all or nothing (`write_atomic`:
a full disk leaves no truncated file and names the setting `save_every`). Beside each saved
policy a small record (`epochNNNN.json`: the history and the held-out choice so far) lets a run
whose `state.pt` cannot be read resume from the newest saved epoch whose files load; a file that
cannot be read is set aside as `<name>.damaged` (and kept), not deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from pipeline.config import policy_name, saved_policy_count
from pipeline.distributed import gather_columns
from pipeline.experiment import Run
from pipeline.results import write_atomic

log = logging.getLogger(__name__)


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


def settings_fingerprint(run: Run, seed: int, **extra: object) -> str:
    """A hash of everything that determines the optimisation, to refuse a stale resume state;
    `extra`: what else does (the τ of a warm start)."""
    key = {k: run.settings[k] for k in ("data", "train", "policy")}
    key.update(seed=seed, dtype=str(run.dtype), model=run.settings["model"], **extra)
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


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


def resume_controls(run: Run) -> str:
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


def save_atomic(obj: object, path: Path, controls: str = "") -> None:
    """torch.save, all or nothing (`write_atomic`)."""
    write_atomic(path, lambda temporary: torch.save(obj, temporary), controls)


def save_resume_state(
    resume_dir: Path,
    fingerprint: str,
    epoch: int,
    whole: Tensor,
    history: list[dict],
    selection: Selection,
    conventional: dict[str, list[float]],
    controls: str = "",
    record: bool = True,
) -> None:
    """The state to resume at `epoch` (`state.pt`) and, with `record` (an epoch whose policy is
    saved: the fallback if `state.pt` is damaged), its small record (`epochNNNN.json`)."""
    if record:
        chosen = {"epoch": selection.epoch, "auc": selection.auc}
        content = {"fingerprint": fingerprint, "history": history, "selection": chosen}
        content["conventional"] = conventional
        write_atomic(
            resume_record_path(resume_dir, epoch),
            lambda path: path.write_text(json.dumps(content)),
            controls,
        )
    state = {"fingerprint": fingerprint, "epoch": epoch, "policy": whole, "history": history}
    state.update(selection=vars(selection), conventional=conventional)
    save_atomic(state, resume_dir / "state.pt", controls)


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
        save_atomic(policy, resume_dir / "selected.pt", controls)
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
