"""Does conventional training rise? A quick check of η for a Transformer reading
(docs/transformer-fidelity.md): trains under the conventional policy and reports every step
where the full-batch training loss rose, the sign of gradient descent past its edge of
stability.

    python -m pipeline.stability --reading authors --eta 0.1 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time

import torch
import yaml

from pipeline.config import merged, run_settings, validate_config
from pipeline.experiment import initial_parameters, load_run
from pipeline.training.descent import conventional_weights, descent_step

#: `transformer.model` of each reading: today's default and the authors' code.
READINGS = {
    "ours": {"init": "small", "attention_scale": "head_dim", "norm": "rmsnorm"},
    "authors": {"init": "pytorch", "attention_scale": "hidden", "norm": "rmsnorm_bias"},
}


def rising_steps(losses: list[float], tolerance: float = 0.0) -> list[int]:
    """Steps t ≥ 1 where the loss exceeds the previous step's by more than `tolerance`."""
    return [t for t in range(1, len(losses)) if losses[t] > losses[t - 1] + tolerance]


@torch.no_grad()
def conventional_training_losses(settings: dict, data_dir: str, seed: int) -> list[float]:
    """The mean training loss L(θ_t), t = 0..T−1, of conventional full-batch training."""
    run = load_run(settings, data_dir, torch.device("cpu"), torch.float32)
    theta = initial_parameters(run, seed)
    weights = conventional_weights(run.n_train, theta)
    losses = []
    for _ in range(run.steps):
        theta, step_losses = descent_step(run.model, theta, run.train, weights, run.eta)
        losses.append(float(step_losses.mean()))
    return losses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--reading", choices=list(READINGS), default="ours")
    parser.add_argument("--eta", type=float, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data", default="results/data/tinystories", help="the run's data")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with open(args.config) as file:
        config = yaml.safe_load(file)
    config["transformer"] = merged(
        config["transformer"], {"model": READINGS[args.reading], "train": {"eta": args.eta}}
    )
    validate_config(config)
    for seed in args.seeds:
        start = time.perf_counter()
        losses = conventional_training_losses(run_settings(config, "transformer"), args.data, seed)
        rises = rising_steps(losses)
        print(
            f"reading {args.reading}, eta {args.eta:g}, seed {seed}: loss {losses[0]:.3f} -> "
            f"{losses[-1]:.3f}, rose at {len(rises)} of {len(losses) - 1} steps"
            f"{f', first at step {rises[0]}' if rises else ''} "
            f"({time.perf_counter() - start:.0f} s)"
        )


if __name__ == "__main__":
    main()
