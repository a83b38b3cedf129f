"""Learning-Law statistics (Sections 4.4–4.5) on hand-made dumps with closed-form answers, the
SIM–CR fit on synthetic points, and the figures and tables of the shared smoke run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis.learning_law import (
    SimCrFit,
    analyse_run,
    fit_sim_cr,
    mean_sim,
    perfectly_learned_weights,
    perturbed_weight_share,
    policy_compression_ratio,
    property41_fraction,
    sim_cr_curve,
    similarity_per_step,
    step_weights,
    weight_dynamics_sample,
    write_tables,
)
from tests.conftest import assert_drawn

TOL = 1e-9
SETTINGS = {
    "zero_weight_tolerance": TOL,
    "perfectly_learned_loss": 1e-6,
    "heatmap_examples": 2048,
    "heatmap_max_step": {"perceptron": 50, "transformer": 0},
}


def dump(rows: list[tuple[int, list[float], list[float], list[float]]]) -> pd.DataFrame:
    """An examples table from (step, weights, contributions, losses) per dumped step."""
    frames = [
        pd.DataFrame(
            {
                "step": step,
                "example": np.arange(len(weights)),
                "weight": np.asarray(weights, dtype=float),
                "loss": np.asarray(losses, dtype=float),
                "contribution": np.asarray(contributions, dtype=float),
            }
        )
        for step, weights, contributions, losses in rows
    ]
    return pd.concat(frames, ignore_index=True)


# --- SIM_t and SIM -----------------------------------------------------------------------------


def test_sim_of_two_examples_is_the_closed_form():
    # weights (1/4, 3/4), CT (1, 3): CT̄ = 2.5, s = sqrt(1.5² + 0.5²) = sqrt(2.5), SIM = sqrt(2.5)
    examples = dump([(0, [0.25, 0.75], [1.0, 3.0], [1.0, 1.0])])
    row = similarity_per_step(examples, TOL).iloc[0]
    assert row["ct_weighted_mean"] == pytest.approx(2.5)
    assert row["ct_std"] == pytest.approx(math.sqrt(2.5))
    assert row["sim"] == pytest.approx(math.sqrt(2.5))
    assert row["ct_mean"] == pytest.approx(2.0)


def test_zero_weight_examples_are_left_out_of_the_spread():
    # the third example (CT = 100) has γ = 0: s_t comes from the first two only
    examples = dump([(0, [0.5, 0.5, 0.0], [1.0, 3.0, 100.0], [1.0, 1.0, 1.0])])
    row = similarity_per_step(examples, TOL).iloc[0]
    assert row["sim"] == pytest.approx(2.0 / math.sqrt(2.0))
    assert row["nonzero_weight_examples"] == 2
    assert row["zero_weight_fraction"] == pytest.approx(1 / 3)


def test_identical_contributions_give_infinite_sim_and_one_weighted_example_none():
    # Σ_n 0.1 · 0.7 over ten examples is 0.7 − 1e-16: round-off that must not count as spread
    examples = dump(
        [
            (0, [0.1] * 10, [0.7] * 10, [1.0] * 10),
            (1, [1.0] + [0.0] * 9, [0.7] + [0.2] * 9, [1.0] * 10),
        ]
    )
    per_step = similarity_per_step(examples, TOL)
    assert per_step["ct_std"].iloc[0] == 0.0
    assert per_step["sim"].iloc[0] == math.inf
    assert math.isnan(per_step["sim"].iloc[1])


def test_step_weights_count_the_steps_each_dump_stands_for():
    assert step_weights(np.array([0, 1, 2, 5]), 10).tolist() == [1, 1, 3, 5]
    with pytest.raises(ValueError, match="below T"):
        step_weights(np.array([0, 10]), 10)


def test_sim_averages_steps_from_one_weighted_by_the_steps_they_stand_for():
    per_step = pd.DataFrame(
        {
            "step": [0, 1, 2, 5, 8],
            "step_weight": [1.0, 1.0, 3.0, 3.0, 2.0],
            "sim": [100.0, 1.0, 2.0, math.inf, 4.0],
        }
    )
    result = mean_sim(per_step)
    assert result["sim"] == pytest.approx((1 * 1 + 2 * 3 + 4 * 2) / 6)
    assert result["sim_unweighted"] == pytest.approx((1 + 2 + 4) / 3)
    assert result["sim_steps"] == 3 and result["sim_steps_undefined"] == 1


# --- Properties 4.1–4.3 and the perturbed examples ---------------------------------------------


def test_property41_fraction_is_one_when_every_nonpositive_contribution_gets_zero_weight():
    contributions = [-1.0, 0.0, 2.0, 3.0]
    optimal = dump(
        [
            (0, [0.0, 0.0, 0.5, 0.5], contributions, [1.0] * 4),
            (5, [0.0, 0.0, 0.2, 0.8], contributions, [1.0] * 4),
        ]
    )
    conventional = dump([(t, [0.25] * 4, contributions, [1.0] * 4) for t in (0, 5)])
    half = dump(
        [
            (0, [0.0, 0.0, 0.5, 0.5], contributions, [1.0] * 4),
            (5, [0.25] * 4, contributions, [1.0] * 4),
        ]
    )
    weights = pd.Series([5.0, 15.0], index=[0, 5])
    assert property41_fraction(optimal, TOL, weights)["property41_fraction"] == 1.0
    assert property41_fraction(conventional, TOL, weights)["property41_fraction"] == 0.0
    result = property41_fraction(half, TOL, weights)
    assert result["property41_fraction_unweighted"] == pytest.approx(0.5)
    assert result["property41_fraction"] == pytest.approx(5 / 20)
    assert result["ct_nonpositive_count"] == 4
    all_positive = dump([(0, [0.5, 0.5], [1.0, 2.0], [1.0, 1.0])])
    assert math.isnan(property41_fraction(all_positive, TOL, weights)["property41_fraction"])


def test_perfectly_learned_weights_are_relative_to_the_largest_weight_of_their_step():
    examples = dump([(3, [0.5, 0.25, 0.25, 0.0], [1.0] * 4, [1e-7, 0.5, 1e-8, 1e-9])])
    learned = perfectly_learned_weights(examples, 1e-6)
    assert learned["example"].tolist() == [0, 2, 3]
    assert learned["relative_weight"].tolist() == [1.0, 0.5, 0.0]


def test_weight_dynamics_sample_keeps_examples_contributive_throughout_the_window():
    n = 50
    rows = []
    for t in (0, 1, 2, 60):
        contributions = np.ones(n)
        contributions[:10] = -1.0 if t == 1 else 1.0  # 0–9 non-contributive once inside t ≤ 50
        contributions[10:20] = -1.0 if t == 60 else 1.0  # 10–19 only after the window
        rows.append((t, np.full(n, 1 / n), contributions, np.ones(n)))
    examples = dump(rows)
    sample = weight_dynamics_sample(examples, max_step=50, sample_size=15, seed=0)
    chosen = set(sample["example"])
    assert len(chosen) == 15 and min(chosen) >= 10
    assert set(sample["step"]) == {0, 1, 2}
    again = weight_dynamics_sample(examples, max_step=50, sample_size=15, seed=0)
    assert set(again["example"]) == chosen
    everything = weight_dynamics_sample(examples, max_step=0, sample_size=2048, seed=0)
    assert set(everything["example"]) == set(range(20, n))  # fewer than asked: all eligible


def test_perturbed_weight_share_and_zero_weight_fractions():
    perturbed = np.array([True, True, False, False])
    examples = dump([(0, [0.0, 0.1, 0.9, 0.0], [1.0] * 4, [1.0] * 4)])
    row = perturbed_weight_share(examples, perturbed, TOL).iloc[0]
    assert row["perturbed_weight_share"] == pytest.approx(0.1)
    assert row["clean_weight_share"] == pytest.approx(0.9)
    assert row["perturbed_zero_weight_fraction"] == 0.5
    assert row["clean_zero_weight_fraction"] == 0.5
    assert row["perturbed_example_fraction"] == 0.5
    with pytest.raises(ValueError, match="train.parquet has 2 rows"):
        perturbed_weight_share(examples, perturbed[:2], TOL)


def test_compression_ratio_from_the_test_losses():
    steps = pd.DataFrame({"step": range(11), "test_loss": [9.0] + [math.log(2) / 2] * 10})
    assert policy_compression_ratio(steps, 10, math.log(2)) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="train.steps"):
        policy_compression_ratio(steps, 12, math.log(2))


# --- the SIM–CR fit ----------------------------------------------------------------------------


def test_fit_recovers_known_parameters():
    a, b, c = 2.0, 3.0, 1.5
    cr = np.linspace(1.0, 2.95, 12)
    fit = fit_sim_cr(cr, c * np.log(a / (b - cr)))
    assert fit.ok and not fit.b_at_bound
    assert (fit.a, fit.b, fit.c) == pytest.approx((a, b, c), rel=1e-4)
    assert fit.r2 == pytest.approx(1.0, abs=1e-9)
    noisy = c * np.log(a / (b - cr)) + np.random.default_rng(0).normal(0, 0.02, cr.size)
    fit = fit_sim_cr(cr, noisy)
    assert fit.b == pytest.approx(b, rel=0.02) and fit.r2 > 0.99
    assert sim_cr_curve(np.array([1.0]), fit.log_a, fit.b, fit.c)[0] == pytest.approx(
        noisy[0], abs=0.1
    )


def test_fit_explains_why_it_cannot_fit():
    few = fit_sim_cr(np.array([1.0, 1.1, 1.2]), np.array([0.1, 0.2, 0.3]), "transformer")
    assert not few.ok and "≥ 4" in few.message and "transformer.policy.save_every" in few.message
    flat = fit_sim_cr(np.array([1.0, 1.1, 1.2, 1.3]), np.full(4, 0.5))
    assert not flat.ok and "different" in flat.message
    roundtrip = SimCrFit.from_json(few.to_json())
    assert roundtrip == few


# --- one run end to end on hand-made dumps -----------------------------------------------------


def test_analyse_run_writes_every_table(tmp_path):
    n, total = 4, 4
    contributions = [2.0, 1.0, -1.0, 3.0]
    policies = {
        "conventional": [0.25] * n,
        "epoch0003": [0.5, 0.25, 0.0, 0.25],
    }
    dumps = {}
    for name, weights in policies.items():
        steps = pd.DataFrame({"step": range(total + 1), "test_loss": [1.0] * (total + 1)})
        examples = dump([(t, weights, contributions, [1e-7, 1.0, 1.0, 1.0]) for t in (0, 2)])
        paths = (tmp_path / f"{name}_steps.parquet", tmp_path / f"{name}_examples.parquet")
        steps.to_parquet(paths[0])
        examples.astype({"weight": "float32", "contribution": "float32"}).to_parquet(paths[1])
        dumps[name] = paths
    tables = analyse_run(dumps, "perceptron", total, math.log(2), SETTINGS, 50, seed=0)
    policies_table = tables.policies.set_index("policy")
    assert policies_table.loc["conventional", "cr"] == pytest.approx(math.log(2))
    assert policies_table.loc["epoch0003", "epoch"] == 3
    assert policies_table.loc["epoch0003", "property41_fraction"] == 1.0
    assert policies_table.loc["conventional", "property41_fraction"] == 0.0
    # conventional, step 2: CT̄ = 1.25, s = sqrt((0.75² + 0.25² + 2.25² + 1.75²) / 3)
    s = math.sqrt((0.75**2 + 0.25**2 + 2.25**2 + 1.75**2) / 3)
    assert policies_table.loc["conventional", "sim"] == pytest.approx(1.25 / s)
    assert set(tables.property43["example"]) == {0, 1, 3}
    assert (tables.property43["policy"] == "epoch0003").all()
    assert len(tables.property42) == 4 and not tables.fit.ok
    outputs = {
        name: tmp_path / "out" / file
        for name, file in [
            ("policies", "policies.csv"),
            ("sim_per_step", "sim_per_step.parquet"),
            ("fit", "sim_cr_fit.json"),
            ("property42", "property42_weights.parquet"),
            ("property43", "property43_sample.parquet"),
        ]
    }
    write_tables(tables, outputs)
    assert pd.read_csv(outputs["policies"])["policy"].tolist() == list(policies)
    assert json.loads(outputs["fit"].read_text())["n_policies"] == 2


def test_sim_cr_figure_draws_a_fit(tmp_path):
    from pipeline.plots.learning_law import plot_sim_cr

    cr = np.linspace(1.0, 2.9, 6)
    fit = fit_sim_cr(cr, 1.5 * np.log(2.0 / (3.0 - cr)))
    policies = pd.DataFrame({"policy": [f"epoch{i:04d}" for i in range(6)], "epoch": range(6)})
    policies = policies.assign(cr=cr, sim=1.5 * np.log(2.0 / (3.0 - cr)))
    policies.to_csv(tmp_path / "policies.csv", index=False)
    (tmp_path / "fit.json").write_text(fit.to_json())
    settings = {"kind": "transformer", "train": {"steps": 20}, "data": {"n_train": 64}}
    outputs = [str(tmp_path / "figure.png")]
    fig = plot_sim_cr(tmp_path / "policies.csv", tmp_path / "fit.json", settings, outputs)
    # the fitted curve is the one the points were drawn from, its asymptote at b = 3
    (curve,) = [line for line in fig.axes[0].lines if len(line.get_xdata()) > 2]
    x, y = (np.asarray(v, float) for v in curve.get_data())
    np.testing.assert_allclose(y, 1.5 * np.log(2.0 / (3.0 - x)), rtol=1e-3, atol=1e-3)
    assert any(list(line.get_xdata()) == [pytest.approx(3.0, rel=1e-3)] * 2
               for line in fig.axes[0].lines)  # fmt: skip
    assert_drawn(tmp_path / "figure.png")


# --- the rules, on the shared smoke run --------------------------------------------------------

FIGURES = [
    "figure3b",
    "figure6a",
    "figure6b",
    "figure7a",
    "figure7b",
    "figure8a",
    "figure8b",
    "figure9",
    "figure10a",
    "figure10b",
    "figure_perturbed_weight",
]


def test_smoke_run_has_every_learning_law_figure_and_table(smoke_run):
    results = smoke_run / "results"
    for figure in FIGURES:
        for ext in ["pdf", "png"]:
            assert_drawn(results / "figures" / f"{figure}.{ext}")
    for run in ["perceptron", "transformer"]:
        table = pd.read_csv(results / run / "learning_law" / "policies.csv")
        summary = json.loads((results / run / "summary.json").read_text())
        assert table["policy"].tolist() == list(summary["policies"])
        expected = [summary["policies"][p]["compression_ratio"] for p in table["policy"]]
        assert table["cr"].to_numpy() == pytest.approx(expected)
        assert np.isfinite(table["sim"]).all()
        conventional = table.iloc[0]
        assert conventional["zero_weight_fraction"] == 0.0  # γ = 1/N everywhere
        fit = SimCrFit.from_json((results / run / "learning_law" / "sim_cr_fit.json").read_text())
        assert fit.n_policies == len(table)
    perturbed = pd.read_csv(results / "transformer" / "learning_law" / "perturbed_weight.csv")
    conventional = perturbed[perturbed["policy"] == "conventional"]
    assert conventional["perturbed_weight_share"].to_numpy() == pytest.approx(
        conventional["perturbed_example_fraction"].to_numpy(), abs=1e-5
    )
