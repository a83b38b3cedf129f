"""The sweep behind the defaults of `minibatch_online`: conventional minibatch AdamW at the
Transformer's size, over batch size b, peak learning rate and steps T (docs/minibatch.md).

`python -m pipeline.bench.minibatch_sweep --config config.yaml <overlays> --out DIR` trains, at each
point b:lr:T (warm-up T/10, the block's other settings), the conventional run at the main seed
on the data set the `minibatch_online` target built, and writes `minibatch_sweep.{csv,md}`: the
final and the lowest test loss, the step of the lowest, how far the test loss moved over the
run's last quarter, and the seconds. A point *plateaus* when its test loss moves by at most
`--tolerance` nats over the last quarter and ends within it of its lowest: longer would not
help, and it has not begun to over-fit.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import yaml

from pipeline.analysis.tables import markdown_table
from pipeline.config import merged, run_settings, validate_config
from pipeline.paths import data_split
from pipeline.runtime import set_thread_environment

#: b:lr:T points of the sweep in docs/minibatch.md.
POINTS = ("16:3e-4:400", "16:1e-3:400", "16:1e-3:800", "16:2e-3:240", "16:3e-3:160",
          "16:3e-3:200", "16:3e-3:240", "16:3e-3:400", "16:1e-2:400", "8:3e-3:320",
          "32:3e-3:120", "32:3e-3:200")  # fmt: skip


def last_quarter_range(curve: pd.DataFrame) -> float:
    """How far an evaluated test-loss curve moves (max − min) over the run's last quarter."""
    tail = curve[curve["step"] >= 0.75 * curve["step"].iloc[-1]]["test_loss"]
    return float(tail.max() - tail.min())


def plateaus(curve: pd.DataFrame, tolerance: float) -> bool:
    """Whether an evaluated test-loss curve has flattened: it moves by at most `tolerance` over
    the last quarter and ends within `tolerance` of its lowest."""
    final, lowest = curve["test_loss"].iloc[-1], curve["test_loss"].min()
    return bool(last_quarter_range(curve) <= tolerance and final - lowest <= tolerance)


def sweep(config: dict, points: list[str], tolerance: float) -> pd.DataFrame:
    """One conventional AdamW run per point b:lr:T, at the main seed, on the configuration's
    Transformer data set; a row per point."""
    import torch  # here: after the thread environment is set

    from pipeline.data.tinystories import perturbed_mask
    from pipeline.experiment import initial_parameters, load_run
    from pipeline.policy.minibatch import run_policy
    from pipeline.training.minibatch import evaluated

    settings = run_settings(config, "transformer")
    train = Path(data_split(settings["data_name"], "train"))
    if not train.exists():
        build = f"snakemake {train} --configfile <the same files>"
        raise SystemExit(f"{train} is missing: build the Transformer data set first ({build})")
    data_dir = train.parent
    seed = int(settings["seed"])
    run = load_run(settings, data_dir, torch.device("cpu"), torch.float32)
    theta0 = initial_parameters(run, seed)
    perturbed = perturbed_mask(train)
    rows = []
    for point in points:
        b, lr, steps = point.split(":")
        block = {**config["minibatch_online"], "batch_size": int(b), "lr": float(lr),
                 "steps": int(steps), "warmup": max(1, int(steps) // 10)}  # fmt: skip
        block["eval_every"] = next(e for e in (20, 10, 5, 1) if block["steps"] % e == 0)
        start = time.perf_counter()
        curve = evaluated(run_policy(run, theta0, "conventional", None, block, seed, perturbed))
        lowest = int(curve["test_loss"].idxmin())
        row = {"b": int(b), "lr": float(lr), "steps": int(steps),
               "final_test_loss": float(curve["test_loss"].iloc[-1]),
               "lowest_test_loss": float(curve["test_loss"].iloc[lowest]),
               "lowest_at": int(curve["step"].iloc[lowest]),
               "last_quarter_range": last_quarter_range(curve),
               "plateau": plateaus(curve, tolerance),
               "seconds": time.perf_counter() - start}  # fmt: skip
        print(row, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench.minibatch_sweep",
        description="Conventional minibatch AdamW over b, lr and T: the defaults' sweep.",
    )
    parser.add_argument("--config", type=Path, nargs="+", default=[Path("config.yaml")],
                        help="config.yaml, then overlays merged in order")  # fmt: skip
    parser.add_argument("--points", nargs="+", default=list(POINTS), help="b:lr:T each")
    parser.add_argument("--tolerance", type=float, default=0.01, help="nats (a plateau's)")
    parser.add_argument("--out", type=Path, default=Path("results/bench/minibatch_sweep"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    set_thread_environment(args.threads)
    config: dict = {}
    for path in args.config:
        config = merged(config, yaml.safe_load(path.read_text()))
    validate_config(config)
    table = sweep(config, args.points, args.tolerance)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "minibatch_sweep.csv", index=False)
    shown = table.assign(
        lr=table["lr"].map("{:g}".format),
        final_test_loss=table["final_test_loss"].map("{:.4f}".format),
        lowest_test_loss=table["lowest_test_loss"].map("{:.4f}".format),
        last_quarter_range=table["last_quarter_range"].map("{:.4f}".format),
        seconds=table["seconds"].map("{:.1f}".format),
        plateau=table["plateau"].map({True: "yes", False: "no"}),
    )
    (args.out / "minibatch_sweep.md").write_text(markdown_table(shown) + "\n")
    print(f"wrote {args.out}/minibatch_sweep.{{csv,md}}")


if __name__ == "__main__":
    main()
