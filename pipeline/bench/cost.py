"""The cost model of a policy epoch: FLOPs, memory and data-parallel communication.

Everything here is arithmetic on sizes (|θ|, T, N, K, k, P) and on per-example figures that a
caller measures (the FLOPs of one training gradient and of its VJP, the activation bytes of one
example). Times come from a throughput and a bandwidth: by default the *assumed* ones below (an
A100-class GPU, NVLink / InfiniBand), or measured ones that a caller passes in (`tflops=`,
`gbps=`), e.g. a device check that has timed a matrix product and an all-reduce on the real
device. The FLOPs of a call are counted by `pipeline.policy.flops.count_flops`.

One policy epoch (pipeline/policy/adjoint.py) per step t: the training gradient at θ_t over the
N training examples (forward pass), its recomputation in the backward pass for the (k−1)/k of
the steps that lie inside a checkpoint segment (checkpointing every k steps; none for k = 1),
the desired set's gradient (K examples) and one VJP of the training gradient (N examples).
With P processes, each step all-reduces the training gradient, its recomputation, the VJP
(H a) and the desired gradient: 3 + (k−1)/k vectors of |θ| floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pipeline.policy.flops import recomputed_fraction

#: Sustained float32 throughput assumed for a GPU (an A100-class GPU: 19.5 TFLOP/s peak FP32, of
#: which small-width matmuls and elementwise work reach ~40 %). An assumption, not a measurement.
GPU_ASSUMED_TFLOPS = 8.0
#: Bus bandwidth assumed for the all-reduces (GB/s per process): NVLink between the GPUs of one
#: node (A100/H100 nodes: 150–450 GB/s; taken low), and 100 Gb/s InfiniBand between nodes.
NODE_ASSUMED_GBPS = 100.0
NETWORK_ASSUMED_GBPS = 12.5
#: Processes per node before the all-reduces leave the node (NVLink → network).
GPUS_PER_NODE = 8
#: The process counts of the data-parallel table.
DATA_PARALLEL_PROCESSES = (1, 2, 4, 8, 16)
FLOAT32_BYTES = 4
GB = 2**30
MB = 2**20


# -- FLOPs ---------------------------------------------------------------------------------------
def policy_step_flops(
    grad_flops_per_example: float,
    vjp_flops_per_example: float,
    n_train: int,
    n_desired: int,
    checkpoint_every: int,
) -> float:
    """FLOPs of one step of a policy epoch (see the module's docstring): training gradient and
    its recomputation over N, the desired gradient over K, the VJP over N."""
    grads = (1 + recomputed_fraction(checkpoint_every)) * n_train + n_desired
    return grad_flops_per_example * grads + vjp_flops_per_example * n_train


def policy_epoch_flops(
    grad_flops_per_example: float,
    vjp_flops_per_example: float,
    n_train: int,
    n_desired: int,
    steps: int,
    checkpoint_every: int,
) -> float:
    """FLOPs of one policy epoch of T = `steps` steps (`policy_step_flops` × T)."""
    step = policy_step_flops(
        grad_flops_per_example, vjp_flops_per_example, n_train, n_desired, checkpoint_every
    )
    return steps * step


def epoch_ratio_floor(
    grad_flops: float,
    vjp_flops: float,
    forward_flops: float,
    n_train: int,
    n_desired: int,
    n_test: int,
) -> float:
    """The policy epoch / conventional run ratio the FLOPs alone allow (every θ_t stored).

    `grad_flops`, `vjp_flops`, `forward_flops`: one training gradient, its VJP and one forward
    pass over the N training examples. Per step an epoch runs the training gradient, its VJP,
    the desired gradient (K) and the test loss (K_test); a conventional run the gradient only.
    """
    desired = n_desired / n_train
    test = n_test / n_train * forward_flops / grad_flops
    return 1 + vjp_flops / grad_flops + desired + test


def compute_hours(flops: float, tflops: float = GPU_ASSUMED_TFLOPS, processes: int = 1) -> float:
    """Hours of `flops` of work shared by `processes` devices sustaining `tflops` each."""
    return flops / (processes * tflops * 1e12) / 3600


# -- memory ------------------------------------------------------------------------------------
def stored_theta_vectors(steps: int, checkpoint_every: int) -> int:
    """|θ|-sized vectors the adjoint holds: θ every k steps (⌈T/k⌉ + 1) and, with k > 1, one
    segment of k + 1 recomputed θ (pipeline/policy/adjoint.py's `stored` and `segment`)."""
    k = checkpoint_every
    return math.ceil(steps / k) + 1 + (k + 1 if k > 1 else 0)


def policy_bytes(steps: int, n_train: int, bytes_per_float: int = FLOAT32_BYTES) -> int:
    """One T × N policy γ (or its gradient)."""
    return steps * n_train * bytes_per_float


def memory_estimate(
    params: int,
    steps: int,
    n_train: int,
    checkpoint_every: int,
    chunk: int,
    activation_bytes_per_example: float,
    processes: int = 1,
    bytes_per_float: int = FLOAT32_BYTES,
) -> dict[str, float]:
    """Bytes one of P processes holds during a policy epoch: the θ checkpoints (every process),
    γ, ∂J/∂γ and the projected step for its N/P columns, the activations of one chunk of at most
    N/P examples; `first_at_saves` adds the whole γ the first process gathers to save it."""
    thetas = stored_theta_vectors(steps, checkpoint_every) * params * bytes_per_float
    policy = policy_bytes(steps, n_train, bytes_per_float)
    local_chunk = min(chunk, math.ceil(n_train / processes))
    activations = activation_bytes_per_example * local_chunk
    per_process = thetas + 3 * policy / processes + activations
    return {
        "stored_thetas": thetas,
        "policy_and_gradient": 3 * policy / processes,  # γ, ∂J/∂γ, the projected step
        "activations": activations,
        "per_process": per_process,
        "first_at_saves": per_process + policy,
    }


# -- communication -----------------------------------------------------------------------------
def allreduce_vectors_per_step(checkpoint_every: int) -> float:
    """|θ|-sized all-reduces per step (module docstring): 3 + (k−1)/k."""
    return 3 + recomputed_fraction(checkpoint_every)


def allreduce_bytes_per_step(
    params: int, checkpoint_every: int, bytes_per_float: int = FLOAT32_BYTES
) -> float:
    """Bytes each process hands to the all-reduces of one step (the buffers' size)."""
    return allreduce_vectors_per_step(checkpoint_every) * params * bytes_per_float


def ring_sent_bytes(message_bytes: float, processes: int) -> float:
    """Bytes a process sends (and receives) in a ring all-reduce of `message_bytes`:
    2(P−1)/P times the message; nothing in one process."""
    return 2 * (processes - 1) / processes * message_bytes


def sent_bytes_per_epoch(
    params: int, steps: int, n_train: int, checkpoint_every: int, processes: int
) -> float:
    """Bytes a process sends per epoch: the steps' all-reduces, and with P > 1 two gathers of
    γ (the saved policy and the resume state) at each saved epoch."""
    step = ring_sent_bytes(allreduce_bytes_per_step(params, checkpoint_every), processes)
    gathers = 2 * policy_bytes(steps, n_train) if processes > 1 else 0
    return steps * step + gathers


def assumed_gbps(processes: int) -> float:
    """The assumed bandwidth: within a node up to `GPUS_PER_NODE` processes, the network beyond."""
    return NODE_ASSUMED_GBPS if processes <= GPUS_PER_NODE else NETWORK_ASSUMED_GBPS


def data_parallel_estimate(
    params: int,
    steps: int,
    n_train: int,
    checkpoint_every: int,
    chunk: int,
    activation_bytes_per_example: float,
    epoch_flops: float,
    tflops: float = GPU_ASSUMED_TFLOPS,
    gbps: Callable[[int], float] = assumed_gbps,
    processes: tuple[int, ...] = DATA_PARALLEL_PROCESSES,
) -> dict:
    """Per P in `processes`: communication per step and epoch, memory per process (computed)
    and the epoch's time at `tflops` per device and `gbps(P)` GB/s (estimated)."""
    k = checkpoint_every
    rows = {}
    for p in processes:
        sent = sent_bytes_per_epoch(params, steps, n_train, k, p)
        memory = memory_estimate(params, steps, n_train, k, chunk, activation_bytes_per_example, p)
        seconds = sent / GB / gbps(p)
        rows[str(p)] = {
            "allreduce_mb_per_step": allreduce_bytes_per_step(params, k) / MB,
            "sent_mb_per_step_per_process": ring_sent_bytes(allreduce_bytes_per_step(params, k), p)
            / MB,
            "sent_gb_per_epoch_per_process": sent / GB,
            "communication_seconds_per_epoch": seconds,
            "assumed_gbps": gbps(p),
            "memory_gb_per_process": memory["per_process"] / GB,
            "memory_gb_first_process_at_saves": memory["first_at_saves"] / GB,
            "epoch_hours": compute_hours(epoch_flops, tflops, p) + seconds / 3600,
        }
    return {
        "processes": rows,
        "note": f"computed volumes and memory; hours estimated at {tflops:g} TFLOP/s per device "
        f"and {gbps(1):g} GB/s within a node (up to {GPUS_PER_NODE} processes), "
        f"{gbps(GPUS_PER_NODE + 1):g} GB/s beyond",
    }
