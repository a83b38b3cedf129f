"""Per-run summary: AUC and compression ratio of every policy, acceleration ratio, stage times."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.metrics import acceleration_ratio, auc, compression_ratio
from pipeline.results import read_pipeline_parquet

STEPS_COLUMNS = ["step", "desired_loss", "test_loss"]


def read_benchmark_seconds(path: str | Path) -> float:
    """Wall seconds from a Snakemake `benchmark:` file."""
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


def summarize_run(
    settings: dict,
    steps_paths: dict[str, str],
    history_path: str,
    benchmarks: dict[str, list[str]],
    log_vocab: float,
    paper_acceleration_ratio: dict,
) -> dict:
    """The summary of one run; `steps_paths` maps policy names (conventional first) to dumps;
    `paper_acceleration_ratio` is the paper's AR paired with the run and its source
    (`pipeline.paper.acceleration_ratio_reference`)."""
    steps = settings["train"]["steps"]
    frames = {
        name: read_pipeline_parquet(path, STEPS_COLUMNS).to_pandas()
        for name, path in steps_paths.items()
    }
    curves = {name: frame["test_loss"].to_numpy() for name, frame in frames.items()}
    policies = {}
    for name, frame in frames.items():
        test_auc, desired_auc = auc(frame["test_loss"]), auc(frame["desired_loss"])
        policies[name] = {
            "auc": test_auc,
            "compression_ratio": compression_ratio(test_auc, steps, log_vocab),
            "final_test_loss": float(frame["test_loss"].iloc[-1]),
            "desired_auc": desired_auc,
            "desired_compression_ratio": compression_ratio(desired_auc, steps, log_vocab),
        }
    names = list(curves)
    near_optimal = names[-1]
    history = read_pipeline_parquet(history_path, ["epoch", "objective"]).to_pandas()
    if settings["policy"]["selection"] == "validation":
        history["selected"] = read_pipeline_parquet(history_path, ["selected"]).to_pandas()[
            "selected"
        ]
    return {
        "run": settings["name"],
        "T": steps,
        "N": settings["data"]["n_train"],
        "K": settings["data"]["n_desired"],
        "eta": settings["train"]["eta"],
        "policy_epochs": settings["policy"]["epochs"],
        "policy_step_size": settings["policy"]["step_size"],
        "policy_objective_scale": settings["policy"]["objective_scale"],
        "policy_schedule": settings["policy"]["schedule"],
        "policy_selection": settings["policy"]["selection"],
        "seed": settings["seed"],
        "log_vocab_nats": log_vocab,
        "near_optimal_policy": near_optimal,
        "selected_epoch": int(
            history.loc[history["selected"], "epoch"].iloc[0]
            if "selected" in history
            else history["epoch"].iloc[-1]
        ),
        "acceleration_ratio": acceleration_ratio(curves["conventional"], curves[near_optimal]),
        "paper_acceleration_ratio": paper_acceleration_ratio["value"],
        "paper_acceleration_ratio_source": paper_acceleration_ratio["source"],
        # the same on the desired set, which policy optimisation sees (the gap is over-fitting)
        "acceleration_ratio_desired": acceleration_ratio(
            frames["conventional"]["desired_loss"].to_numpy(),
            frames[near_optimal]["desired_loss"].to_numpy(),
        ),
        "best_policy_on_test": max(policies, key=lambda p: policies[p]["compression_ratio"]),
        "policies": policies,
        "objective_first_last": [
            float(history["objective"].iloc[0]),
            float(history["objective"].iloc[-1]),
        ],
        "stage_seconds": {
            stage: sum(read_benchmark_seconds(p) for p in paths)
            for stage, paths in benchmarks.items()
        },
    }
