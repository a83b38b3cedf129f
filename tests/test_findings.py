"""Results at a glance: each figure and table gets a judge and a row; the page counts each
judgement once. The judges themselves: tests/test_judges.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.analysis import findings
from pipeline.analysis.judges import (
    NO_DATA,
    NOT_REPRODUCED,
    OURS,
    PARTLY,
    REPRODUCED,
    VERDICTS,
    Finding,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_figure_and_table_with_a_caption_has_an_entry():
    captions = {p.stem for p in (ROOT / "workflow" / "report").glob("*.rst")}
    shown = {c for c in captions if c.startswith(("figure", "table"))}
    assert shown <= {entry.name for entry in findings.ENTRIES}


def test_rows_judging_the_same_files_the_same_way_are_one_judgement():
    groups = [[e.name for e in g] for g in findings.judgements(findings.ENTRIES)]
    shared = sorted(g for g in groups if len(g) > 1)
    assert shared == [
        ["figure2", "figure5b"],
        ["figure3b", "figure7b"],
        ["perceptron_ablation", "perceptron_ablation_table"],
        ["transformer_ablation", "transformer_ablation_table"],
    ]  # figure11 and table1 read the same table but judge it on different paper numbers
    assert len(groups) == len(findings.ENTRIES) - 4


def test_page_counts_each_judgement_once_and_names_every_verdict(tmp_path):
    entries = [e for e in findings.ENTRIES if e.name in ("figure2", "figure5b", "figure4a",
                                                          "figure9", "table1")]  # fmt: skip
    verdicts = {"figure2": PARTLY, "figure5b": PARTLY, "figure4a": REPRODUCED,
                "figure9": NO_DATA, "table1": NOT_REPRODUCED}  # fmt: skip
    found = {name: Finding(name, "claim", "p", f"ours {name}", verdict, f"rule {name}")
             for name, verdict in verdicts.items()}  # fmt: skip
    paths = [str(tmp_path / f"at_a_glance.{ext}") for ext in ("md", "csv", "json")]
    findings.write_page(entries, found, *paths)
    page = Path(paths[0]).read_text()
    assert "4 judgements over 5 rows: 1 reproduced, 1 partly, 1 not reproduced, 1 no data" in page
    assert "counted once: Figure 2 = Figure 5b" in page
    assert "- Figure 2, Figure 5b (partly): rule figure2\n" in page
    for name in verdicts:
        assert f"| ours {name} |" in page
    table = pd.read_csv(paths[1]).set_index("name")
    assert table.loc["figure5b", "shared_with"] == "Figure 2"
    assert table.loc["figure9", "verdict"] == NO_DATA
    assert pd.isna(table.loc["figure9", "shared_with"])
    assert json.loads(Path(paths[2]).read_text())["table1"]["verdict"] == NOT_REPRODUCED


def test_smoke_run_has_the_page_and_every_figure_its_row(smoke_run):
    results = smoke_run / "results"
    page = (results / "at_a_glance.md").read_text()
    rows = json.loads((results / "at_a_glance.json").read_text())
    experiments = ["perceptron", "transformer", "online_policies"]
    smoke = findings.applicable(findings.ENTRIES, experiments, sweep=True)
    assert set(rows) == {entry.name for entry in smoke}  # smoke: both experiments, a sweep
    table = pd.read_csv(results / "at_a_glance.csv").set_index("name")
    for name, row in rows.items():
        assert row["verdict"] in (*VERDICTS, OURS), name
        assert f"| {row['item']} |" in page and row["ours"] in page.replace("\\|", "|")
        assert list(table.loc[name, ["verdict", "ours"]]) == [row["verdict"], row["ours"]]
    assert findings.report_labels("figure5a", results / "at_a_glance.json") == {
        "figure": "Figure 5a",
        "this run": rows["figure5a"]["ours"],
        "paper": rows["figure5a"]["paper"],
        "verdict": rows["figure5a"]["verdict"],
    }
    summary = json.loads((results / "perceptron" / "summary.json").read_text())
    assert f"{summary['acceleration_ratio']:.2f}×" in rows["figure5a"]["ours"]
