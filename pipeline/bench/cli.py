"""The bench's command line: `python -m pipeline.bench [--quick] [--only <part>]`.

Loads the configuration as the workflow does (config.yaml, a preset merged in with
`pipeline.config.merged`, then `validate_config`), measures the chosen parts (pipeline/bench/
__init__.py), and writes bench.json and bench.md (`--only` keeps the other parts of an
earlier bench.json).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import torch
import yaml

from pipeline.bench import SECTIONS, data_parallel, memory, report, timing
from pipeline.bench.contention import bench_contention
from pipeline.bench.measure import bench_run
from pipeline.bench.online import bench_online
from pipeline.config import merged, run_settings, validate_config, with_steps
from pipeline.runtime import job

log = logging.getLogger("pipeline.bench")
ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "workflow" / "presets"


def load_config(path: Path, preset: str | None = None) -> dict:
    """The configuration at `path` with `workflow/presets/<preset>.yaml` merged in (as
    `--configfile` does), validated by the pipeline's schema and checks."""
    config = yaml.safe_load(path.read_text())
    if preset is not None:
        config = merged(config, yaml.safe_load((PRESETS / f"{preset}.yaml").read_text()))
    validate_config(config)
    return config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench", description="Benchmark of the policy-optimisation engine"
    )
    parser.add_argument("--quick", action="store_true", help="smoke-preset sizes, seconds")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        help="these parts only (merged into an existing bench.json)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=0, help="timed repeats (0: 3, quick: 1)")
    parser.add_argument(
        "--perceptron-epochs", type=int, default=20, help="run, then extrapolate (0: all)"
    )
    parser.add_argument(
        "--transformer-steps", type=int, default=20, help="T of the ratio (it does not depend on T)"
    )
    parser.add_argument("--memory-steps", type=int, default=400)
    parser.add_argument(
        "--paper-chunk", type=int, default=64, help="paper-size sequences measured per chunk"
    )
    parser.add_argument(
        "--contention-epochs", type=int, default=50, help="Perceptron policy epochs timed per run"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled Transformer")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def measure(section: str, args: argparse.Namespace, config: dict, repeats: int) -> dict:
    """One part of the bench (`SECTIONS`) at the sizes of `config` and the options."""
    quick, seed = args.quick, args.seed
    transformer_steps = min(args.transformer_steps, 4) if quick else args.transformer_steps
    if section == "perceptron":
        epochs = min(args.perceptron_epochs, 3) if quick else args.perceptron_epochs
        return timing.bench_perceptron(config, seed, repeats, epochs)
    if section == "transformer":
        compiled = not (quick or args.no_compile)
        return timing.bench_transformer(config, seed, repeats, transformer_steps, compiled)
    if section == "projection":
        rows, n = (200, 2048) if quick else (4000, 16384)
        return timing.bench_projection(rows, n, seed, repeats)
    if section == "memory":
        steps = 16 if quick else args.memory_steps
        return memory.bench_memory(config, seed, steps, 8 if quick else 32)
    if section == "paper_scale":
        paper = run_settings(load_config(args.config, "paper"), "transformer")
        return memory.bench_paper_scale(paper, seed, 4 if quick else args.paper_chunk)
    if section == "data_parallel":
        args.out.mkdir(parents=True, exist_ok=True)
        return data_parallel.bench_data_parallel(config, seed, transformer_steps, repeats, args.out)
    if section == "contention":
        args.out.mkdir(parents=True, exist_ok=True)
        transformer = run_settings(config, "transformer")
        workloads = {
            "perceptron": run_settings(config, "perceptron"),
            "transformer": with_steps(transformer, transformer_steps),
        }
        epochs = {"perceptron": min(args.contention_epochs, 2) if quick else args.contention_epochs}
        epochs["transformer"] = 1
        return bench_contention(workloads, epochs, seed, repeats, args.out)
    if section == "online":  # an online policy's run (pipeline/policy/online.py)
        return {
            kind: bench_online(bench_run(run_settings(config, kind), seed), seed, repeats)
            for kind in ("perceptron", "transformer")
        }
    raise ValueError(f"unknown bench part `{section}`; parts: {', '.join(SECTIONS)}")


def run_bench(args: argparse.Namespace) -> dict:
    """Measure the chosen parts and write bench.json and bench.md to `args.out`."""
    repeats = args.repeats or (1 if args.quick else 3)
    config = load_config(args.config, "smoke" if args.quick else None)
    results: dict = {"machine": timing.machine(), "quick": args.quick}
    for section in args.only or SECTIONS:
        log.info("bench: %s", section)
        results[section] = measure(section, args, config, repeats)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench.json"
    if args.only and path.exists():  # keep the other parts of an earlier full run
        results = {**json.loads(path.read_text()), **results}
    path.write_text(json.dumps(results, indent=2) + "\n")
    table = report.markdown(results)
    (args.out / "bench.md").write_text(table)
    log.info("wrote %s\n%s", path, table)
    return results


def main(argv: list[str] | None = None, log_path: str | None = None) -> dict:
    """The command line; set up as a pipeline job is (threads, deterministic algorithms, log)."""
    args = parse_args(argv)
    with job(log_path, args.threads or torch.get_num_threads()):
        return run_bench(args)
