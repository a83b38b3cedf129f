"""Train under a policy and dump per-step and per-example statistics to Parquet.

Every reported metric treats the test set as the desired set (Section 4.2). Per step t = 0..T:
desired, test and mean training loss, and the norms of ∇L_dsr and ∇L_tst. At the dump steps
(every `dump_every` steps, and every step up to `dump_dense_until`; t ≤ T−1 so that γ_t exists):
for every training example n its weight γ_{t,n}, loss l(x_n, θ_t) and contribution
CT_{t,n} = ∇L_tst(θ_t) · ∇l(x_n, θ_t), the latter by one forward-mode JVP over the training set.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from torch import Tensor

from pipeline.experiment import Run
from pipeline.progress import Progress
from pipeline.training.descent import check_finite_step, descent_step, policy_row

log = logging.getLogger(__name__)


def dump_steps(steps: int, dump_every: int, dense_until: int) -> list[int]:
    """The steps t ∈ [0, T−1] whose per-example statistics are dumped."""
    chosen = set(range(0, steps, dump_every)) | set(range(0, min(dense_until + 1, steps)))
    return sorted(chosen)


def evaluate_policy(
    run: Run, theta0: Tensor, policy: Tensor | None, dumped: list[int]
) -> tuple[pd.DataFrame, pa.Table]:
    """(steps, examples): the per-step frame and the per-example table of training under γ."""
    model, n = run.model, run.n_train
    rows = {
        k: np.empty(run.steps + 1)
        for k in ("desired_loss", "test_loss", "train_loss", "desired_grad_norm")
    }
    dumped_set = set(dumped)
    examples: dict[str, list[np.ndarray]] = {
        k: [] for k in ("step", "example", "weight", "loss", "contribution")
    }
    theta, initial_loss = theta0, None
    progress = Progress(run.settings["name"], {"evaluate": run.steps + 1})
    for t in progress.track("evaluate", range(run.steps + 1)):
        desired_loss, desired_grad = model.mean_loss_and_grad(theta, run.desired)
        rows["desired_loss"][t] = float(desired_loss)
        rows["desired_grad_norm"][t] = float(desired_grad.norm())
        if t in dumped_set:  # CT needs ∇L_tst(θ_t); other steps need only the loss
            test_loss, test_grad = model.mean_loss_and_grad(theta, run.test)
        else:
            test_loss = model.mean_loss(theta, run.test)
        rows["test_loss"][t] = float(test_loss)
        if t == run.steps:
            rows["train_loss"][t] = float(model.mean_loss(theta, run.train))
            break
        weights = policy_row(policy, t, run.train, theta)
        if t in dumped_set:
            losses, contribution = model.contributions(theta, run.train, test_grad)
            examples["step"].append(np.full(n, t, dtype=np.int32))
            examples["example"].append(np.arange(n, dtype=np.int32))
            examples["weight"].append(weights.float().cpu().numpy())
            examples["loss"].append(losses.float().cpu().numpy())
            examples["contribution"].append(contribution.float().cpu().numpy())
        theta_next, losses = descent_step(model, theta, run.train, weights, run.eta)
        weighted = weights @ losses
        initial_loss = float(weighted) if initial_loss is None else initial_loss
        check_finite_step(t, weighted, initial_loss)
        rows["train_loss"][t] = float(losses.mean())
        theta = theta_next
    progress.close()

    steps = pd.DataFrame({"step": np.arange(run.steps + 1, dtype=np.int32), **rows})
    table = pa.table({k: np.concatenate(v) if v else np.empty(0) for k, v in examples.items()})
    return steps, table


def write_dumps(
    steps: pd.DataFrame, examples: pa.Table, steps_path: str, examples_path: str
) -> None:
    """Write the two dumps (zstd-compressed Parquet)."""
    steps.to_parquet(steps_path, index=False)
    pq.write_table(examples, examples_path, compression="zstd")
