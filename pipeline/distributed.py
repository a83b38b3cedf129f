"""Data parallelism over training examples, on torch.distributed (NCCL on GPUs, gloo on CPUs).

Each of the P processes holds a contiguous share of the N training examples (and the matching
columns of γ) and of the desired and test sets (`Shard`, `local_shard`). The engine computes on
its share and combines across processes with the collectives here: sums of gradients and
Hessian-vector products (`all_reduce_sum`), means over a split (`all_reduce_mean`), row maxima
(`all_reduce_max`), and the whole policy or table on the first process for writing
(`gather_columns`, `gather_objects`).

Without a process group (one process, today's engine) every collective is the identity and
every shard is the whole set, so the one-process path computes exactly what it did before.
`init_process_group` joins the group of a process started by torchrun (RANK, WORLD_SIZE,
LOCAL_RANK) or as a SLURM task by srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, with
MASTER_ADDR and MASTER_PORT set by the launcher, pipeline/launch.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

#: The device collectives run on: the process's GPU under NCCL, the CPU under gloo.
_device = torch.device("cpu")


# -- who am I --------------------------------------------------------------------------------
def world_size() -> int:
    """P, the number of processes of the run (1 without a process group)."""
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    """This process's index in 0..P−1 (0 without a process group)."""
    return dist.get_rank() if dist.is_initialized() else 0


def backend() -> str:
    """The process group's backend: "nccl", "gloo", or "none" in one process."""
    return str(dist.get_backend()) if dist.is_initialized() else "none"


def is_main() -> bool:
    """True on the process that logs and writes every output (rank 0)."""
    return rank() == 0


@dataclass(frozen=True)
class Shard:
    """Examples start..stop−1 of a set of `total`: one process's contiguous share."""

    start: int
    stop: int
    total: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def shard_of(total: int, processes: int, index: int) -> Shard:
    """Share `index` of `total` examples split into `processes` contiguous shares whose sizes
    differ by at most one (the first `total mod P` shares hold one more)."""
    base, extra = divmod(total, processes)
    start = index * base + min(index, extra)
    return Shard(start, start + base + (index < extra), total)


def local_shard(total: int) -> Shard:
    """This process's share of `total` examples (all of them in one process)."""
    return shard_of(total, world_size(), rank())


# -- collectives (the identity in one process) ---------------------------------------------
def all_reduce_sum(x: Tensor) -> Tensor:
    """x summed over every process, in place; returns x."""
    if world_size() > 1:
        _all_reduce(x, dist.ReduceOp.SUM)
    return x


def all_reduce_max(x: Tensor) -> Tensor:
    """The elementwise maximum of x over every process, in place; returns x."""
    if world_size() > 1:
        _all_reduce(x, dist.ReduceOp.MAX)
    return x


def all_reduce_min(x: Tensor) -> Tensor:
    """The elementwise minimum of x over every process, in place; returns x."""
    if world_size() > 1:
        _all_reduce(x, dist.ReduceOp.MIN)
    return x


def _all_reduce(x: Tensor, op: dist.ReduceOp) -> None:
    if x.is_contiguous():
        dist.all_reduce(x, op=op)
    else:
        buffer = x.contiguous()
        dist.all_reduce(buffer, op=op)
        x.copy_(buffer)


def all_reduce_scalars(*values: Tensor) -> tuple[Tensor, ...]:
    """Scalars summed over every process in one reduction (themselves in one process)."""
    if world_size() == 1:
        return values
    return tuple(all_reduce_sum(torch.stack(values)).unbind())


def total_count(local: int) -> int:
    """The sum of a per-process count over every process."""
    if world_size() == 1:
        return local
    count = torch.tensor([local], dtype=torch.int64, device=_device)
    return int(all_reduce_sum(count))


def mean_share(local: int) -> float:
    """This process's fraction of a split's examples, n_local / n (1 in one process)."""
    return local / total_count(local)


def all_reduce_mean(local_mean: Tensor, share: float) -> Tensor:
    """The mean over every process's examples from this process's mean over its `share` of them:
    Σ_p share_p · mean_p. Returns `local_mean` itself in one process."""
    if world_size() == 1:
        return local_mean
    return all_reduce_sum(local_mean * share)


def global_norm(local: Tensor) -> float:
    """‖x‖ of a vector split across processes, from this process's part."""
    norm = local.norm()
    if world_size() == 1:
        return float(norm)
    return float(all_reduce_sum(norm.square().reshape(1)).sqrt())


def _padded_columns(local: Tensor, total: int) -> tuple[list[Shard], Tensor]:
    """Every process's column shard of `total`, and this process's columns padded to the widest
    shard (collectives exchange tensors of one shape)."""
    shards = [shard_of(total, world_size(), r) for r in range(world_size())]
    padded = local.new_zeros(local.shape[0], max(s.size for s in shards))
    padded[:, : local.shape[1]] = local
    return shards, padded


def gather_columns(local: Tensor, total: int) -> Tensor | None:
    """The whole (rows × total) matrix on the first process from every process's columns
    (its `local_shard(total)`); None on the others. `local` itself in one process."""
    if world_size() == 1:
        return local
    shards, padded = _padded_columns(local, total)
    parts = [torch.empty_like(padded) for _ in shards] if is_main() else None
    dist.gather(padded, parts, dst=0)
    if parts is None:
        return None
    return torch.cat([p[:, : s.size] for p, s in zip(parts, shards, strict=True)], dim=1)


def all_gather_columns(local: Tensor, total: int) -> Tensor:
    """The whole (rows × total) matrix on every process from every process's columns."""
    if world_size() == 1:
        return local
    shards, padded = _padded_columns(local, total)
    parts = [torch.empty_like(padded) for _ in shards]
    dist.all_gather(parts, padded)
    return torch.cat([p[:, : s.size] for p, s in zip(parts, shards, strict=True)], dim=1)


def gather_objects(obj: object) -> list | None:
    """[obj of process 0, …, obj of process P−1] on the first process, None on the others."""
    if world_size() == 1:
        return [obj]
    parts = [None] * world_size() if is_main() else None
    dist.gather_object(obj, parts, dst=0)
    return parts


def barrier() -> None:
    """Wait for every process (nothing in one process)."""
    if world_size() > 1:
        dist.barrier()


# -- the process group ---------------------------------------------------------------------
def launched_environment() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) of a process started by torchrun or srun, else None."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun
        return int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and "MASTER_ADDR" in env:  # srun
        return int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env["SLURM_LOCALID"])
    return None


def init_process_group(device: torch.device, timeout_minutes: float = 30) -> torch.device:
    """Join the process group of this launched process; return the device it computes on.

    NCCL with one GPU per process (the local rank's, among the GPUs the process sees) when
    `device` is CUDA; gloo on CPUs. MASTER_ADDR and MASTER_PORT come from the environment.
    """
    global _device
    found = launched_environment()
    if found is None:
        raise RuntimeError(
            "init_process_group: this process was not started by torchrun or srun "
            "(no RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS/MASTER_ADDR in the environment)"
        )
    index, processes, local = found
    if device.type == "cuda":
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(
        backend,
        init_method="env://",
        rank=index,
        world_size=processes,
        timeout=timedelta(minutes=timeout_minutes),
        **({"device_id": device} if backend == "nccl" else {}),
    )
    _device = device
    return device


def destroy_process_group() -> None:
    """Leave the process group, if any."""
    global _device
    if dist.is_initialized():
        dist.destroy_process_group()
    _device = torch.device("cpu")
