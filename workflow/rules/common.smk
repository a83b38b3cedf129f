# Configuration check, the runs it defines, and the paths every rule shares.

import os
import sys

sys.path.insert(0, workflow.basedir)  # the pipeline package, for this process and its jobs
os.environ["PYTHONPATH"] = os.pathsep.join(
    [workflow.basedir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
)

from pipeline.config import (
    ConfigError,
    dataset_settings,
    run_names,
    run_settings,
    validate_config,
)
from pipeline.policy.optimize import saved_epochs

try:
    validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

RUNS = run_names(config)
SPLITS = ["train", "desired", "test"]
ENV = "../../envs/pipeline.yaml"


wildcard_constraints:
    run="|".join(RUNS) if RUNS else "none",
    policy=r"conventional|epoch\d{4}",
    dataset=r"tinystories(-N\d+-V\d+)?",


def settings(run):
    return run_settings(config, run)


def policy_names(run):
    """The evaluated policies of a run: the conventional one and every saved epoch after 0."""
    policy = settings(run)["policy"]
    epochs = saved_epochs(policy["epochs"], policy["save_every"])
    return ["conventional"] + [f"epoch{e:04d}" for e in epochs if e > 0]


def near_optimal(run):
    return policy_names(run)[-1]


def data_files(wildcards):
    return expand("results/data/{name}/{split}.parquet", name=settings(wildcards.run)["data_name"],
                  split=SPLITS)


def log_vocab(run):
    import math

    s = settings(run)
    return math.log(2) if s["kind"] == "perceptron" else math.log(s["data"]["vocab_size"])


def train_resources(run):
    res = config["resources"]
    extra = {"gpu": res["gpus"]} if res["gpus"] else {}
    return dict(mem_mb=res["train_mem_mb"], runtime=res["train_runtime"], **extra)


# What `rule all` builds, per experiment: each rules file appends its figures and tables.
TARGETS = {"perceptron": [], "transformer": []}


def all_targets():
    targets = [f"results/{run}/summary.json" for run in RUNS]
    for kind in config["experiments"]:
        targets += TARGETS[kind]
    return targets
