"""`snakemake --report` after the smoke run: every figure, each with its caption."""

from __future__ import annotations

import json
import shutil

from tests.conftest import SMOKE, caption_title, report_html, snakemake


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
