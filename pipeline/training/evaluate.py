"""Train under a policy and dump per-step and per-example statistics to Parquet.

Every reported metric treats the test set as the desired set (Section 4.2). Per step t = 0..T:
desired, test and mean training loss, and the norms of ∇L_dsr and ∇L_tst. At the dump steps
(every `dump_every` steps, and every step up to `dump_dense_until`; t ≤ T−1 so that γ_t exists):
for every training example n its weight γ_{t,n}, loss l(x_n, θ_t) and contribution
CT_{t,n} = ∇L_tst(θ_t) · ∇l(x_n, θ_t), the latter by one forward-mode JVP over the training set.

With several processes each trains on its share of the examples (the sums and means over the
sets are all-reduced) and computes the per-example statistics of its own examples; the first
process gathers them into the one table it writes, in the order one process produces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from torch import Tensor

from pipeline.distributed import (
    all_reduce_mean,
    all_reduce_scalars,
    gather_objects,
    is_main,
    mean_share,
)
from pipeline.experiment import Run
from pipeline.models.base import batch_size
from pipeline.progress import SILENT, Progress
from pipeline.results import write_atomic
from pipeline.training.descent import check_finite_step, descent_step, policy_row

log = logging.getLogger(__name__)

#: (t, θ_t, ∇L_dsr(θ_t)) → γ_t, this process's columns: what `evaluate_policy` calls per step
#: under an online policy (pipeline/policy/online.py).
PolicyFunction = Callable[[int, Tensor, Tensor], Tensor]


def dump_steps(steps: int, dump_every: int, dense_until: int) -> list[int]:
    """The steps t ∈ [0, T−1] whose per-example statistics are dumped."""
    chosen = set(range(0, steps, dump_every)) | set(range(0, min(dense_until + 1, steps)))
    return sorted(chosen)


def evaluate_policy(
    run: Run,
    theta0: Tensor,
    policy: Tensor | PolicyFunction | None,
    dumped: list[int],
) -> tuple[pd.DataFrame, pa.Table | None]:
    """(steps, examples): the per-step frame and the per-example table of training under γ.

    `policy` is a saved policy (T × N), None for the conventional one, or an online policy: a
    function (t, θ_t, ∇L_dsr(θ_t)) → γ_t called before each step (pipeline/policy/online.py),
    whose rows are kept at the dump steps only. With several processes `policy` holds (or
    returns) this process's columns; every process returns the per-step frame, the first also
    the whole per-example table (the others None).
    """
    model, shard = run.model, run.train_shard
    shares = {s: mean_share(batch_size(getattr(run, s))) for s in ("train", "desired", "test")}
    rows = {
        k: np.empty(run.steps + 1)
        for k in ("desired_loss", "test_loss", "train_loss", "desired_grad_norm")
    }
    dumped_set = set(dumped)
    examples: dict[str, list[np.ndarray]] = {
        k: [] for k in ("step", "example", "weight", "loss", "contribution")
    }
    theta, initial_loss = theta0, None
    progress = Progress(run.settings["name"], {"evaluate": run.steps + 1}) if is_main() else SILENT
    for t in progress.track("evaluate", range(run.steps + 1)):
        desired_loss, desired_grad = model.mean_loss_and_grad(theta, run.desired)
        desired_grad = all_reduce_mean(desired_grad, shares["desired"])
        rows["desired_loss"][t] = float(all_reduce_mean(desired_loss, shares["desired"]))
        rows["desired_grad_norm"][t] = float(desired_grad.norm())
        if t in dumped_set:  # CT needs ∇L_tst(θ_t); other steps need only the loss
            test_loss, test_grad = model.mean_loss_and_grad(theta, run.test)
            test_grad = all_reduce_mean(test_grad, shares["test"])
        else:
            test_loss = model.mean_loss(theta, run.test)
        rows["test_loss"][t] = float(all_reduce_mean(test_loss, shares["test"]))
        if t == run.steps:
            train_loss = all_reduce_mean(model.mean_loss(theta, run.train), shares["train"])
            rows["train_loss"][t] = float(train_loss)
            break
        if callable(policy):
            weights = policy(t, theta, desired_grad)
        else:
            weights = policy_row(policy, t, shard, theta)
        if t in dumped_set:
            losses, contribution = model.contributions(theta, run.train, test_grad)
            examples["step"].append(np.full(shard.size, t, dtype=np.int32))
            examples["example"].append(np.arange(shard.start, shard.stop, dtype=np.int32))
            examples["weight"].append(weights.float().cpu().numpy())
            examples["loss"].append(losses.float().cpu().numpy())
            examples["contribution"].append(contribution.float().cpu().numpy())
        theta_next, losses = descent_step(model, theta, run.train, weights, run.eta)
        # Σ_n γ_{t,n} l_n and mean_n l_n over every process's examples, in one reduction
        weighted, train_loss = all_reduce_scalars(weights @ losses, losses.mean() * shares["train"])
        initial_loss = float(weighted) if initial_loss is None else initial_loss
        check_finite_step(t, weighted, initial_loss)
        rows["train_loss"][t] = float(train_loss)
        theta = theta_next
    progress.close()

    steps = pd.DataFrame({"step": np.arange(run.steps + 1, dtype=np.int32), **rows})
    parts = gather_objects(examples)
    if parts is None:
        return steps, None
    columns = {  # step by step, each step's examples in process order: one process's order
        k: [part[k][i] for i in range(len(examples[k])) for part in parts] for k in examples
    }
    table = pa.table({k: np.concatenate(v) if v else np.empty(0) for k, v in columns.items()})
    return steps, table


def write_dumps(
    steps: pd.DataFrame, examples: pa.Table, steps_path: str, examples_path: str, settings: dict
) -> None:
    """Write the two dumps (zstd-compressed Parquet), each whole or not at all; a failed write
    names the run's settings that decide the size of the per-example dump."""
    evaluate, kind = settings["evaluate"], settings["kind"]
    controls = (
        f"The per-example dump holds {examples.num_rows} rows: N examples at every "
        f"`{kind}.evaluate.dump_every` = {evaluate['dump_every']} steps and every step up to "
        f"`{kind}.evaluate.dump_dense_until` = {evaluate['dump_dense_until']}; raise dump_every "
        "or lower dump_dense_until to write less."
    )
    write_atomic(steps_path, lambda path: steps.to_parquet(path, index=False), controls)
    write_atomic(
        examples_path, lambda path: pq.write_table(examples, path, compression="zstd"), controls
    )
