"""Every file the pipeline writes under results/, and the rule of workflow/rules/ that writes it.

The rules take their output patterns from here (`{run}`, `{policy}`, … are Snakemake's
wildcards), the code that reads results builds its paths with the functions below, and
`writing_rule` answers which rule writes a file (for the rebuild hint of a damaged one).
tests/test_paths.py checks the table against the rules Snakemake's own DAG assigns.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path, PurePosixPath

from pipeline.config import MINIBATCH_POLICIES, MINIBATCH_REFERENCES, ONLINE_POLICIES

RESULTS = "results"

# --- per run: results/<run>/ -----------------------------------------------------------------
POLICIES = "results/{run}/policies"  # a directory: epochNNNN.pt, selected.pt
HISTORY = "results/{run}/policy_history.parquet"
STEPS = "results/{run}/dumps/{policy}/steps.parquet"
EXAMPLES = "results/{run}/dumps/{policy}/examples.parquet"
SUMMARY = "results/{run}/summary.json"
COSTS = "results/{run}/online/costs.json"
FLOPS = "results/{run}/online/flops.json"
FRONTIER_POINTS = "results/{run}/online/frontier_points.csv"
LEARNING_LAW = "results/{run}/learning_law/{name}"  # policies.csv, sim_cr_fit.json, …
MINIBATCH_CURVE = "results/{run}/minibatch/{mpolicy}/curve.parquet"  # minibatch_online
MINIBATCH_COSTS = "results/{run}/minibatch/{mpolicy}/costs.json"
RESUME = "results/{run}/resume"  # optimize_policy's state between epochs (not an output)
# --- per data set: results/data/<name>/ ------------------------------------------------------
DATA = "results/data/{name}/{file}"

#: The paper's figures, each a rule of its own named as the figure (figures.smk,
#: learning_law.smk, scaling_law.smk).
PAPER_FIGURES = (
    "figure2", "figure3b", "figure4a", "figure4b", "figure5a", "figure5b", "figure6a", "figure6b",
    "figure7a", "figure7b", "figure8a", "figure8b", "figure9", "figure10a", "figure10b",
    "figure11", "figure_perturbed_weight",
)  # fmt: skip
_LAW_FILES = ("policies.csv", "sim_per_step.parquet", "sim_cr_fit.json",
              "property42_weights.parquet", "property43_sample.parquet")  # fmt: skip

#: (pattern, rule): every output pattern of workflow/rules/ and the rule that writes it; the
#: first pattern that matches a path wins (`writing_rule`).
WRITERS: tuple[tuple[str, str], ...] = (
    ("results/data/{pdataset}/{split}.parquet", "perceptron_data"),
    ("results/data/{dataset}/{split}.parquet", "tinystories_data"),
    ("results/data/{dataset}/vocab.json", "tinystories_data"),
    ("results/data/{dataset}/preview.md", "tinystories_data"),
    (POLICIES, "optimize_policy"),
    (HISTORY, "optimize_policy"),
    (STEPS.replace("{policy}", "{online}"), "evaluate_online"),
    (EXAMPLES.replace("{policy}", "{online}"), "evaluate_online"),
    (COSTS, "evaluate_online"),
    (STEPS, "evaluate_policy"),
    (EXAMPLES, "evaluate_policy"),
    (SUMMARY, "summarize"),
    (FLOPS, "online_flops"),
    (FRONTIER_POINTS, "online_frontier_points"),
    (MINIBATCH_CURVE, "minibatch_run"),
    (MINIBATCH_COSTS, "minibatch_run"),
    ("results/tables/minibatch_online{table_part}.{table_ext}", "minibatch_online_table"),
    ("results/figures/minibatch_online.{figure_ext}", "minibatch_online_table"),
    ("results/{kind}/learning_law/online_policies.csv", "online_policies_experiment"),
    ("results/{run}/learning_law/perturbed_weight.csv", "perturbed_weight"),
    ("results/{run}/learning_law/{law_file}", "learning_law"),
    ("results/tables/online_policies_{kind}{table_part}.{table_ext}", "online_policies_experiment"),
    ("results/figures/online_policies_{kind}.{figure_ext}", "online_policies_experiment"),
    ("results/tables/{experiment}_ablation{table_part}.{table_ext}", "ablation_table"),
    ("results/figures/{experiment}_ablation.{figure_ext}", "ablation_figure"),
    ("results/tables/perceptron_seeds{seeds_part}.{table_ext}", "perceptron_seeds_table"),
    ("results/figures/perceptron_seeds.{figure_ext}", "perceptron_seeds_figure"),
    ("results/tables/transformer_scale{scale_part}.{table_ext}", "transformer_scale_table"),
    ("results/figures/transformer_scale.{figure_ext}", "transformer_scale_figure"),
    ("results/tables/policy_frontier_{kind}{points_part}.{table_ext}", "policy_frontier_table"),
    ("results/figures/policy_frontier_{kind}.{figure_ext}", "policy_frontier_figure"),
    ("results/tables/optimum_k_{kind}{points_part}.{table_ext}", "optimum_k_table"),
    ("results/figures/optimum_k_{kind}.{figure_ext}", "optimum_k_figure"),
    ("results/tables/optimum_learning_law_{kind}{table_part}.{table_ext}",
     "optimum_learning_law_table"),
    ("results/tables/optimum_verdicts_{kind}.{table_ext}", "optimum_verdicts"),
    ("results/tables/{paper_table}.{table_ext}", "{paper_table}"),
    ("results/figures/{paper_figure}.{figure_ext}", "{paper_figure}"),
    ("results/at_a_glance.{glance_ext}", "at_a_glance"),
    ("results/bench/bench.{report_ext}", "benchmark"),
    ("results/device_check.{report_ext}", "device_check"),
)  # fmt: skip

_RESERVED = ("data", "tables", "figures", "logs", "benchmarks", "bench")
_WILDCARDS = {
    "run": rf"(?!(?:{'|'.join(_RESERVED)})/)[^/]+",
    "policy": r"[^/]+",
    "online": "|".join(ONLINE_POLICIES),
    "mpolicy": "|".join(MINIBATCH_POLICIES + MINIBATCH_REFERENCES),
    "pdataset": r"perceptron[^/]*",
    "dataset": r"[^/]+",
    "name": r"[^/]+",
    "split": "train|desired|test",
    "kind": "perceptron|transformer",
    "experiment": "perceptron|transformer",
    "law_file": "|".join(re.escape(f) for f in _LAW_FILES),
    "table_part": "|_runs",
    "seeds_part": "|_runs|_correlation",
    "scale_part": "|_runs|_fit",
    "points_part": "|_points",
    "table_ext": "csv|md|json",
    "figure_ext": "pdf|png",
    "glance_ext": "md|csv|json",
    "report_ext": "json|md",
    "paper_table": "table1|table2",
    "paper_figure": "|".join(PAPER_FIGURES),
}


@cache
def _compiled() -> list[tuple[re.Pattern, str]]:
    out = []
    for pattern, rule in WRITERS:
        regex, last = "", 0
        for match in re.finditer(r"\{(\w+)\}", pattern):
            regex += re.escape(pattern[last : match.start()])
            regex += f"(?P<{match[1]}>{_WILDCARDS[match[1]]})"
            last = match.end()
        out.append((re.compile(f"(?:^|.*/){regex}{re.escape(pattern[last:])}"), rule))
    return out


def writing_rule(path: str | Path) -> str | None:
    """The rule of workflow/rules/ that writes `path` (a path under results/, relative or
    inside a working directory), or None if it is none of the pipeline's outputs."""
    posix = PurePosixPath(Path(path).as_posix()).as_posix()
    for regex, rule in _compiled():
        match = regex.fullmatch(posix)
        if match:
            return rule.format(**match.groupdict())
    return None


# --- paths of one file -----------------------------------------------------------------------


def steps_dump(run: str, policy: str) -> str:
    """results/<run>/dumps/<policy>/steps.parquet: a policy's per-step losses."""
    return STEPS.format(run=run, policy=policy)


def examples_dump(run: str, policy: str) -> str:
    """results/<run>/dumps/<policy>/examples.parquet: a policy's per-example dumps."""
    return EXAMPLES.format(run=run, policy=policy)


def run_file(pattern: str, run: str) -> str:
    """A per-run file of `pattern` (HISTORY, SUMMARY, COSTS, …) for `run`."""
    return pattern.format(run=run)


def history(run: str) -> str:
    """results/<run>/policy_history.parquet: J, the test AUC and AR of every policy epoch."""
    return HISTORY.format(run=run)


def summary(run: str) -> str:
    return SUMMARY.format(run=run)


def costs(run: str) -> str:
    """results/<run>/online/costs.json: the online policies' chosen τ and costs."""
    return COSTS.format(run=run)


def flops(run: str) -> str:
    return FLOPS.format(run=run)


def minibatch_curve(run: str, policy: str) -> str:
    """results/<run>/minibatch/<policy>/curve.parquet: a minibatch AdamW run's per-step curve."""
    return MINIBATCH_CURVE.format(run=run, mpolicy=policy)


def minibatch_costs(run: str, policy: str) -> str:
    """results/<run>/minibatch/<policy>/costs.json: its chosen τ or B, FLOPs and seconds."""
    return MINIBATCH_COSTS.format(run=run, mpolicy=policy)


def learning_law(run: str, name: str) -> str:
    """results/<run>/learning_law/<name>."""
    return LEARNING_LAW.format(run=run, name=name)


def data_file(name: str, file: str) -> str:
    """results/data/<data set>/<file>: train.parquet, vocab.json, …"""
    return DATA.format(name=name, file=file)


def data_split(name: str, split: str) -> str:
    return data_file(name, f"{split}.parquet")


def table(name: str, ext: str = "csv") -> str:
    """results/tables/<name>.<ext>."""
    return f"{RESULTS}/tables/{name}.{ext}"


def figure(name: str, ext: str) -> str:
    """results/figures/<name>.<ext> (pdf, png)."""
    return f"{RESULTS}/figures/{name}.{ext}"


def log(name: str) -> str:
    """results/logs/<name>.log."""
    return f"{RESULTS}/logs/{name}.log"


def benchmark(run: str, stage: str) -> str:
    """results/benchmarks/<run>/<stage>.tsv: Snakemake's time and memory of a training job."""
    return f"{RESULTS}/benchmarks/{run}/{stage}.tsv"
