"""Section 4.6: the scaling-law fit recovers known curves, fails clearly on degenerate ones, and
Tables 1, 2 and Figure 11 come out of the smoke DAG with the paper's values beside ours."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pipeline import paper
from pipeline.analysis.scaling_law import (
    Curve,
    ScalingLawError,
    SearchSettings,
    acceleration_ratio_eq9,
    compare_policies,
    fit_power_law,
    fit_shared,
    table1,
    table2,
)
from pipeline.config import run_names, run_settings, scaling_sweep_runs
from pipeline.metrics import acceleration_ratio
from tests.conftest import assert_drawn, merged_config

SEARCH = SearchSettings(
    t0=None,
    L0=None,
    t0_fractions=(0.0, 0.05, 0.1, 0.2),
    L0_grid=64,
    L0_max_fraction=0.99,
    L0_refinements=3,
    min_points=8,
)


def power_law_curve(
    name: str, B: float, beta: float, L0: float, steps: int = 2000, noise: float = 0.0, seed=0
) -> Curve:
    """L_t = L0 + (B/t)^β for t = 1..T (times 1 + noise·ε), and a higher L_0 at t = 0."""
    t = np.arange(steps + 1)
    loss = np.empty(steps + 1)
    loss[1:] = L0 + (B / t[1:]) ** beta
    loss[1:] *= 1 + noise * np.random.default_rng(seed).standard_normal(steps)
    loss[0] = 2 * loss[1]
    return Curve(name, t, loss)


def steps_frame(curve: Curve) -> pd.DataFrame:
    return pd.DataFrame({"step": curve.steps, "test_loss": curve.loss})


def test_fit_recovers_known_coefficients_without_noise():
    curve = power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8)
    (fit,) = fit_shared([curve], SEARCH)
    assert math.isclose(fit.L0, 0.8, abs_tol=1e-3)
    assert fit.beta == pytest.approx(0.3, rel=1e-3)
    assert math.isclose(fit.B, 3e4, rel_tol=1e-2)
    assert fit.r2 > 0.999999
    assert fit.n_points == 2000 - fit.t0


def test_fit_with_noise_and_shared_L0_recovers_both_curves():
    slow = power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8, noise=0.003, seed=1)
    fast = power_law_curve("near-optimal", B=5e3, beta=0.36, L0=0.8, noise=0.003, seed=2)
    conv, opt = fit_shared([slow, fast], SEARCH)
    assert conv.L0 == opt.L0 and conv.t0 == opt.t0
    assert math.isclose(conv.L0, 0.8, abs_tol=0.1)
    assert conv.beta == pytest.approx(0.3, rel=0.1)
    assert opt.beta == pytest.approx(0.36, rel=0.1)
    assert math.log(conv.B) == pytest.approx(math.log(3e4), rel=0.05)
    assert math.log(opt.B) == pytest.approx(math.log(5e3), rel=0.05)
    assert min(conv.r2, opt.r2) > 0.95


def test_eq9_matches_the_measured_acceleration_of_exact_power_laws():
    slow = power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8)
    fast = power_law_curve("near-optimal", B=5e3, beta=0.36, L0=0.8)
    conv, opt = fit_shared([slow, fast], SEARCH)
    predicted = acceleration_ratio_eq9(conv, opt, 2000)
    exact = 3e4 ** (0.3 / 0.36) / 5e3 * 2000 ** (1 - 0.3 / 0.36)
    assert predicted == pytest.approx(exact, rel=1e-2)
    assert predicted == pytest.approx(acceleration_ratio(slow.loss, fast.loss), rel=2e-2)
    assert predicted > 1


def test_fixed_t0_and_L0_are_used_as_given():
    curve = power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8)
    fixed = SearchSettings(**{**SEARCH.__dict__, "t0": 400, "L0": 0.5})
    (fit,) = fit_shared([curve], fixed)
    assert (fit.t0, fit.L0, fit.n_points) == (400, 0.5, 1600)
    assert fit.r2 < 1  # the wrong L0 bends the line


def test_flat_curve_fails_clearly():
    flat = Curve("conventional", np.arange(101), np.full(101, 2.0))
    with pytest.raises(ScalingLawError, match="flat"):
        fit_shared([flat], SEARCH)


def test_too_few_points_fails_clearly():
    short = power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8, steps=6)
    with pytest.raises(ScalingLawError, match="too few points.*min_points = 8"):
        fit_shared([short], SEARCH)
    with pytest.raises(ScalingLawError, match="only 3 steps t > t0 = 3"):
        fit_power_law(short, t0=3, L0=0.0, min_points=8)


def test_L0_above_the_curve_fails_naming_the_setting():
    curve = power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8)
    with pytest.raises(ScalingLawError, match=r"scaling_law.L0 = 5 is not below"):
        fit_shared([curve], SearchSettings(**{**SEARCH.__dict__, "L0": 5.0}))


def test_increasing_curve_has_no_power_law():
    rising = Curve("near-optimal", np.arange(101), 1.0 + 0.01 * np.arange(101))
    with pytest.raises(ScalingLawError, match="decrease"):
        fit_shared([rising], SEARCH)


def test_comparison_without_fit_gives_nan_and_a_note():
    short = power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8, steps=6)
    comparison = compare_policies(steps_frame(short), steps_frame(short), SEARCH)
    assert not comparison.fitted and comparison.note.startswith("no fit: too few points")
    assert math.isnan(comparison.dB_over_B) and math.isnan(comparison.ar_eq9)
    assert comparison.ar_measured == pytest.approx(1.0)
    numbers, shown = table1(comparison)
    assert numbers["ours"].isna().sum() > 0 and (numbers["note"] == comparison.note).all()
    assert "–" in set(shown["ours"])


def test_table2_pairs_settings_with_the_papers_by_position():
    slow = steps_frame(power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8))
    fast = steps_frame(power_law_curve("near-optimal", B=5e3, beta=0.36, L0=0.8))
    comparisons = [compare_policies(slow, fast, SEARCH)] * 5
    entries = [{"steps": 2000, "n_train": 2**k, "vocab_size": 100} for k in range(5)]
    numbers, shown = table2(comparisons, entries, [f"run{k}" for k in range(5)])
    assert list(numbers["paper_AR_eq9"][:4]) == [2.16, 2.31, 2.41, 2.48]  # Table 2
    assert math.isnan(numbers["paper_AR_eq9"][4]) and shown["paper's setting"][4] == "–"
    assert shown["paper's setting"][0] == "T=1000, N=2^12, V=4000"
    assert numbers["dB_over_B"][0] == pytest.approx(1 - 5e3 / 3e4, rel=0.02)


def test_the_main_run_faces_the_papers_main_setting_and_summaries_agree_with_table2():
    smoke = merged_config()  # sweep: T=10 (a run of its own), then the main run
    runs = scaling_sweep_runs(smoke)
    assert runs == ["transformer-T10-N32-V96", "transformer"]
    assert paper.table2_pairing(runs) == paper.TABLE2[1:3]  # 2K beside T=10, 4K beside main
    slow = steps_frame(power_law_curve("conventional", B=3e4, beta=0.3, L0=0.8))
    fast = steps_frame(power_law_curve("near-optimal", B=5e3, beta=0.36, L0=0.8))
    comparisons = [compare_policies(slow, fast, SEARCH)] * 2
    numbers, _ = table2(comparisons, smoke["transformer"]["scaling_sweep"], runs)
    # Table 2's AR of T=2K and T=4K (the paper's main setting): in table2.md and the summaries
    assert list(numbers["paper_AR_eq9"]) == [2.31, 2.41]
    assert [paper.acceleration_ratio_reference("transformer", r, runs)["value"] for r in runs] == [
        2.31,
        2.41,
    ]
    assert paper.acceleration_ratio_reference("transformer", runs[0], runs) == {
        "value": 2.31,
        "source": "Table 2 (Eq. 9), T=2000, N=2^13, V=4500",
    }
    assert paper.acceleration_ratio_reference("transformer", "transformer", runs)["value"] == 2.41
    assert paper.acceleration_ratio_reference("perceptron", "perceptron", runs)["value"] == 5.50
    # The default sweep has the main run third: by position.
    default = ["transformer-T50-N64-V512", "transformer-T100-N128-V768", "transformer"]
    assert [row["AR"] for row in paper.table2_pairing(default)] == [2.16, 2.31, 2.41]
    assert paper.table2_pairing(["a", "b", "c", "d", "e"])[4] is None


def test_sweep_entries_set_their_own_policy_epochs():
    config = merged_config(
        {
            "transformer": {
                "scaling_sweep": [
                    {"steps": 10, "n_train": 32, "vocab_size": 96, "policy_epochs": 1},
                    {"steps": 20, "n_train": 64, "vocab_size": 128},
                    {"steps": 20, "n_train": 64, "vocab_size": 128, "policy_epochs": 7},
                ]
            },
            # at other seeds the scale study's runs of the two T20-N64-V128 settings would share
            # a name (test_registry.py: refused); the main seed's are the sweep's own
            "transformer_scale": {"seeds": [0]},
        }
    )
    runs = scaling_sweep_runs(config)
    assert runs == ["transformer-T10-N32-V96", "transformer", "transformer-T20-N64-V128"]
    assert set(runs) <= set(run_names(config))
    assert run_settings(config, runs[0])["policy"]["epochs"] == 1
    assert run_settings(config, runs[0])["data_name"].startswith("tinystories-N32-V96-")
    assert run_settings(config, runs[2])["policy"]["epochs"] == 7


def test_smoke_dag_builds_tables_and_figure11(smoke_run):
    """The smoke run's curves (T = 20 and 10) are long enough for Eq. 8: every fit is made, and
    the tables' numbers describe the dumped curves they were fitted to."""
    tables = smoke_run / "results" / "tables"
    for name in ["table1", "table2"]:
        assert (tables / f"{name}.md").read_text().count("\n|") >= 3
    for ext in ["pdf", "png"]:
        assert_drawn(smoke_run / "results" / "figures" / f"figure11.{ext}")

    t1 = pd.read_csv(tables / "table1.csv").set_index("quantity")
    assert t1.loc["B, conventional", "paper"] == paper.SCALING_LAW["conventional"]["B"]
    assert t1.loc["|Δβ/β|", "paper"] == paper.SCALING_LAW_IMPROVEMENT["dbeta_over_beta"]
    assert t1.loc["T (training steps)", "ours"] == 20
    assert t1["note"].isna().all()  # fitted: no "no fit: …" note
    ours = t1["ours"]
    dumps = smoke_run / "results" / "transformer" / "dumps"
    curves = {
        policy: pd.read_parquet(dumps / dump / "steps.parquet")["test_loss"].to_numpy()
        for policy, dump in [("conventional", "conventional"), ("near-optimal", "epoch0002")]
    }
    for policy, curve in curves.items():
        B, beta, L0 = ours[f"B, {policy}"], ours[f"β, {policy}"], ours["L0 (nats, shared)"]
        assert B > 0 and beta > 0 and ours[f"r², {policy}"] > 0.9
        assert ours[f"steps fitted (t > t0), {policy}"] == 20 - ours["t0 (steps, shared)"]
        # Eq. 8 with the table's coefficients gives back the dumped loss at t = T/2 and T
        # within 1 % (20 steps at the default η = 0.1 are only roughly a power law), closer
        # than the other policy's curve is
        other = curves["near-optimal" if policy == "conventional" else "conventional"]
        for t in (10, 20):
            fitted = L0 + (B / t) ** beta
            assert fitted == pytest.approx(curve[t], rel=1e-2)
            assert abs(fitted - curve[t]) < abs(fitted - other[t])
    # The paper's AR = T / t*, t* = min{t : L^opt_t ≤ L^conv_T}, for a conventional curve still
    # falling at its end (or, if the near-optimal curve never gets there, the inverse the other way)
    conv, opt = curves["conventional"], curves["near-optimal"]
    if opt.min() <= conv[-1]:
        assert conv[-1] < conv[:-1].min()  # still falling: T is where it first got there
        t_star = next(t for t, loss in enumerate(opt) if loss <= conv[-1])
        assert ours["AR, measured"] == pytest.approx(20 / t_star)
    else:
        assert opt[-1] < opt[:-1].min()
        t_star = next(t for t, loss in enumerate(conv) if loss <= opt[-1])
        assert ours["AR, measured"] == pytest.approx(t_star / 20)
    ratio = ours["β, conventional"] / ours["β, near-optimal"]
    eq9 = ours["B, conventional"] ** ratio / ours["B, near-optimal"] * 20 ** (1 - ratio)
    assert ours["AR, Eq. 9"] == pytest.approx(eq9, rel=1e-6)

    t2 = pd.read_csv(tables / "table2.csv")
    assert list(t2["run"]) == ["transformer-T10-N32-V96", "transformer"]
    assert list(t2["T"]) == [10, 20]
    assert list(t2["paper_T"]) == [2000, 4000]  # the main run faces the paper's main setting
    assert t2["note"].isna().all()
    assert (t2[["r2_conventional", "r2_near_optimal"]] > 0.9).all().all()
    # the sweep row of the main run is Table 1's fit
    main = t2.set_index("run").loc["transformer"]
    assert main["AR_eq9"] == pytest.approx(ours["AR, Eq. 9"], rel=1e-12)
    assert main["B_conventional"] == pytest.approx(ours["B, conventional"], rel=1e-12)
