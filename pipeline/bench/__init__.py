"""Benchmark of the policy-optimisation engine: `python -m pipeline.bench [--quick] [--only …]`.

Parts (`SECTIONS`), each measured in one process on this machine (memory: one subprocess per
configuration):

1. `perceptron`, `transformer`: the time of one policy-optimisation epoch (forward pass, adjoint
   pass, projection) over the time of one plain conventional training run of the same T. An epoch
   costs at least one training step plus one VJP per step, and a VJP of the training gradient
   costs about three gradients in arithmetic, so the ratio cannot go much below 4 for a model
   whose time is in its matrix products (the Transformer); the Perceptron's steps are bound by
   streaming its data matrix, which a VJP does three times and a step twice. `perceptron` also
   gives the wall time of the full Perceptron policy optimisation (the real loop, policies saved),
   run for `--perceptron-epochs` epochs and extrapolated to E.
2. `projection`: the exact simplex projection of a 4000 × 16384 policy after a gradient step.
3. `memory`: peak memory of the adjoint storing every θ_t (k = 1) and checkpointing (k = √T),
   beside |θ|·T and |θ|·√T.
4. `paper_scale`: the paper preset's Transformer, one chunk measured here, one epoch estimated on
   GPUs from its FLOPs; with P data-parallel processes also the per-step communication volume and
   the per-process memory (computed; the cost model is `pipeline.bench.cost`).
5. `data_parallel`: a policy epoch of the Transformer in 2 processes × 1 thread (gloo, started
   by pipeline.launch) against 1 process × 2 threads, on the same 2 cores.
6. `contention`: training jobs idle and beside one CPU-bound competitor the bench starts itself,
   for each thread / process layout and wait policy (`pipeline.bench.contention`).
7. `online`: a run under each online policy against a conventional run of the same T
   (`pipeline.bench.online`; goal ≤ 3 conventional runs).

Modules: `measure` (a run on synthetic data and the time, FLOPs and peak memory of a call;
shared with the device check), `timing` (parts 1 and 2), `memory` (3 and 4), `data_parallel`
(5), `contention` (6), `online` (7), `cost` (FLOPs, memory, communication), `report`
(bench.md), `cli` (the command line). Writes results/bench/bench.json (every figure, the goals,
the machine) and bench.md.
"""

SECTIONS = (
    "perceptron",
    "transformer",
    "projection",
    "memory",
    "paper_scale",
    "data_parallel",
    "contention",
    "online",
)

#: The measured data-parallel cases: name → (processes, threads per process), in this order.
DATA_PARALLEL_CASES = {
    "one_process_two_threads": (1, 2),
    "two_processes_one_thread": (2, 1),
    "one_process_one_thread": (1, 1),
}
