"""Results at a glance: each figure's and table's verdict follows from the run's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis import findings
from pipeline.analysis.findings import (
    NO_DATA,
    NOT_REPRODUCED,
    PARTLY,
    REPRODUCED,
    acceleration,
    policy_optimization,
    sim_at_matched_loss,
)

ROOT = Path(__file__).resolve().parents[1]


def history(crs: list[float]) -> pd.DataFrame:
    epochs = np.arange(len(crs))
    return pd.DataFrame(
        {"epoch": epochs, "objective": 100.0 - epochs, "test_compression_ratio": crs}
    )


@pytest.mark.parametrize(
    ("crs", "verdict"),
    [
        ([5.0, 5.1, 5.2, 5.3], REPRODUCED),  # rises throughout
        ([5.0, 5.3, 5.2, 5.1], PARTLY),  # peaks early, keeps a third of the gain
        ([5.06, 5.32, 5.1, 5.01], NOT_REPRODUCED),  # the default Perceptron: below its start
    ],
)
def test_policy_optimisation_needs_the_test_cr_to_keep_rising(crs, verdict):
    assert policy_optimization("Figure 4a", history(crs)).verdict == verdict


@pytest.mark.parametrize(
    ("ours", "verdict"), [(2.0, REPRODUCED), (1.52, PARTLY), (0.86, NOT_REPRODUCED)]
)
def test_acceleration_is_judged_against_the_paired_paper_value(ours, verdict):
    summary = {"acceleration_ratio": ours, "acceleration_ratio_desired": ours, "run": "r",
               "T": 10, "paper_acceleration_ratio": 2.41}  # fmt: skip
    found = acceleration("Figure 5b", summary)
    assert found.verdict == verdict and f"{ours:.2f}×" in found.ours and "2.41×" in found.paper
    assert acceleration("x", {**summary, "paper_acceleration_ratio": None}).verdict == NO_DATA


def per_step(order: list[float]) -> pd.DataFrame:
    """Three policies along the same loss range, SIM_t offset by `order` (CR = 1, 2, 3)."""
    rows = []
    for cr, offset in zip([1.0, 2.0, 3.0], order, strict=True):
        for step in range(1, 11):
            loss = 2.0 / step
            rows.append({"policy": f"p{cr}", "cr": cr, "step": step, "test_loss": loss,
                         "sim": offset + 0.1 * step})  # fmt: skip
    return pd.DataFrame(rows)


def test_figure6_ordering_is_the_rank_correlation_at_matched_loss():
    assert sim_at_matched_loss(per_step([0.0, 1.0, 2.0])) == pytest.approx(1.0)
    assert sim_at_matched_loss(per_step([2.0, 1.0, 0.0])) == pytest.approx(-1.0)
    assert findings.sim_per_step("Figure 6a", per_step([2.0, 1.0, 0.0])).verdict == NOT_REPRODUCED


def test_every_figure_and_table_with_a_caption_has_an_entry():
    captions = {p.stem for p in (ROOT / "workflow" / "report").glob("*.rst")}
    shown = {c for c in captions if c.startswith(("figure", "table"))}
    assert shown <= {entry.name for entry in findings.ENTRIES}


def test_smoke_run_has_the_page_and_every_figure_its_row(smoke_run):
    results = smoke_run / "results"
    page = (results / "at_a_glance.md").read_text()
    rows = json.loads((results / "at_a_glance.json").read_text())
    experiments = ["perceptron", "transformer", "online_policies"]
    smoke = findings.applicable(findings.ENTRIES, experiments, sweep=True)
    assert set(rows) == {entry.name for entry in smoke}  # smoke: both experiments, a sweep
    for name, row in rows.items():
        verdicts = {REPRODUCED, PARTLY, NOT_REPRODUCED, NO_DATA, findings.OURS}
        assert row["verdict"] in verdicts, name
        assert f"| {row['item']} |" in page and row["ours"] in page.replace("\\|", "|")
    assert "<table" in (results / "at_a_glance.html").read_text()
    assert findings.report_labels("figure5a", results / "at_a_glance.json") == {
        "figure": "Figure 5a",
        "this run": rows["figure5a"]["ours"],
        "paper": rows["figure5a"]["paper"],
        "verdict": rows["figure5a"]["verdict"],
    }
    summary = json.loads((results / "perceptron" / "summary.json").read_text())
    assert f"{summary['acceleration_ratio']:.2f}×" in rows["figure5a"]["ours"]
