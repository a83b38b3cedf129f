"""`snakemake --report` after the smoke run: every figure, each with its caption; and the report
of the targets run after a run of only those."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import SMOKE, caption_title, copy_of_smoke_run, report_html, snakemake


def test_report_holds_every_figure_with_its_caption(smoke_run, tmp_path):
    workdir = tmp_path / "run"  # a copy: the report writes into the working directory
    shutil.copytree(smoke_run, workdir, symlinks=True)
    overlay = str(workdir / "stories.yaml")
    result = snakemake(workdir, "--configfile", SMOKE, overlay, "--report", "results/report.html")
    html = report_html(result, workdir / "results" / "report.html")
    figures = sorted(p.name for p in (workdir / "results" / "figures").glob("*.png"))
    assert {"figure2.png", "figure4a.png", "figure5b.png"} <= set(figures)
    missing = [figure for figure in figures if figure not in html]
    assert not missing, f"figures not in the report: {missing}"
    # The captions of workflow/rules/figures.smk (their bold first line), and the description.
    for name in ["figure2", "figure4a", "figure4b", "figure5a", "figure5b", "summary"]:
        title = caption_title(name)
        assert title in html, f"the caption of {name} ({title!r}) is not in the report"
    assert "Towards Optimal Learning of Language Models" in html
    # Results at a glance: the page, and each figure's finding beside its caption (its labels).
    assert "at_a_glance.csv" in html
    rows = json.loads((workdir / "results" / "at_a_glance.json").read_text())
    for name in ["figure4a", "figure5b", "table2"]:
        ours = json.dumps(rows[name]["ours"], ensure_ascii=False)[1:-1]  # JSON-escaped, as in it
        assert ours in html, f"the finding of {name} ({ours!r}) is not in the report"


def dag_outputs(workdir: Path, *targets: str) -> set[str]:
    """The output files of the smoke run's jobs in the DAG of `targets` (`all` when none), from
    `snakemake --summary`."""
    overlay = str(workdir / "stories.yaml")
    result = snakemake(workdir, *targets, "--configfile", SMOKE, overlay, "--summary")
    lines = [line.split("\t")[0] for line in result.stdout.splitlines() if "\t" in line]
    assert lines and lines[0] == "output_file", result.stdout[:500]
    return set(lines[1:])


def test_report_of_the_targets_run_after_a_partial_run(smoke_run, tmp_path):
    """docs/troubleshooting.md: after a run of some targets, `--report` alone fails on the files
    of the rest; given those targets, it reports what they made."""
    workdir = copy_of_smoke_run(smoke_run, tmp_path / "run")
    targets = ["figure4a", "figure5a"]  # the Perceptron's figures, from data to plots
    # What a run of only these targets leaves: every output outside their DAG deleted.
    kept = dag_outputs(workdir, *targets)
    assert {"results/figures/figure5a.png", "results/data/perceptron/train.parquet"} <= kept
    for name in dag_outputs(workdir) - kept:
        path = workdir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert not (workdir / "results" / "at_a_glance.json").exists()
    overlay = str(workdir / "stories.yaml")
    dry = snakemake(workdir, *targets, "--configfile", SMOKE, overlay, "--dry-run")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]

    report = ["--report", "results/report.html"]
    everything = snakemake(workdir, "--configfile", SMOKE, overlay, *report, check=False)
    assert everything.returncode != 0
    assert "marked for report but does not exist" in everything.stderr, everything.stderr[-2000:]
    result = snakemake(workdir, *targets, "--configfile", SMOKE, overlay, *report)
    html = report_html(result, workdir / "results" / "report.html")
    for name in targets:
        assert f"results/figures/{name}.png" in html, f"{name} is not in the report"
        assert caption_title(name) in html, f"the caption of {name} is not in the report"
    others = {p.name for p in (smoke_run / "results" / "figures").glob("*.png")} - {
        f"{name}.png" for name in targets
    }
    assert others and not [n for n in others if f"results/figures/{n}" in html]
