"""The ablations (Perceptron, Transformer), the Perceptron seeds and the scale study: θ_0,
validation selection, the runs, tables and figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from pipeline.analysis import findings
from pipeline.analysis.ablation import AblationRun, run_metrics, shown_table, variant_table
from pipeline.analysis.judges import NO_DATA
from pipeline.config import ConfigError, ablation_runs, run_settings, validate_config
from pipeline.data.perceptron import make_perceptron_data
from pipeline.experiment import initial_parameters, load_run
from pipeline.jobs import training as jobs
from pipeline.models.perceptron import Perceptron
from pipeline.policy.optimize import optimize_policy
from tests.conftest import (
    SMOKE,
    assert_drawn,
    caption_title,
    copy_of_smoke_run,
    fake_snakemake,
    merged_config,
    report_html,
    snakemake,
)

# -- θ_0 -------------------------------------------------------------------------------------


def test_uniform_init_matches_pytorch_linear_default_in_distribution():
    dim = 128
    ours = torch.cat(
        [
            Perceptron(dim, init="uniform").init_params(torch.Generator().manual_seed(s))
            for s in range(40)
        ]
    )
    torch.manual_seed(0)
    theirs = torch.cat(
        [torch.nn.Linear(dim, 1, bias=False).weight.detach().flatten() for _ in range(40)]
    )
    bound = 1 / math.sqrt(dim)
    assert ours.abs().max() <= bound
    assert ours.min() < -0.98 * bound and ours.max() > 0.98 * bound  # the whole interval
    assert stats.ks_2samp(ours.numpy(), theirs.numpy()).pvalue > 0.01
    # and it is not the zero or a Gaussian initialisation of the same scale
    gaussian = (
        torch.randn(ours.numel(), generator=torch.Generator().manual_seed(1)) * bound / 3**0.5
    )
    assert stats.ks_2samp(ours.numpy(), gaussian.numpy()).pvalue < 1e-3


def test_zero_init_starts_every_loss_at_one_bit():
    theta = Perceptron(8).init_params(torch.Generator().manual_seed(0))
    assert torch.equal(theta, torch.zeros(8))


@pytest.fixture(scope="module")
def data_dir(perceptron_data):
    """The directory of the smoke preset's Perceptron data."""
    return Path(perceptron_data[1]["train"]).parent


def _evaluate(config, data_dir, out_dir, policy="conventional", policies_dir=None):
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs = {"data": [str(data_dir / "train.parquet")]}
    if policies_dir is not None:
        inputs["policies"] = str(policies_dir)
    settings = run_settings(config, "perceptron")
    jobs.evaluate_policy(
        fake_snakemake(
            config,
            inputs,
            {
                "steps": str(out_dir / "steps.parquet"),
                "examples": str(out_dir / "examples.parquet"),
            },
            {"settings": settings, "policy": policy, "seed": settings["seed"]},
        )
    )
    return pd.read_parquet(out_dir / "steps.parquet")


def test_uniform_init_is_shared_by_every_policy_of_a_run(data_dir, tmp_path):
    config = merged_config(
        {"perceptron": {"model": {"init": "uniform"}, "policy": {"epochs": 2, "save_every": 1}}}
    )
    settings = run_settings(config, "perceptron")
    policies = tmp_path / "policies"
    jobs.optimize_policy(
        fake_snakemake(
            config,
            {"data": [str(data_dir / "train.parquet")]},
            {"policies": str(policies), "history": str(tmp_path / "history.parquet")},
            {
                "settings": settings,
                "saved_epochs": [0, 1, 2],
                "resume_dir": str(tmp_path / "resume"),
                "seed": 0,
            },
        )
    )
    history = pd.read_parquet(tmp_path / "history.parquet")
    first_losses = []
    for policy in ("conventional", "epoch0001", "epoch0002"):
        steps = _evaluate(config, data_dir, tmp_path / policy, policy, policies)
        first_losses.append((steps["desired_loss"].iloc[0], steps["test_loss"].iloc[0]))
    assert len(set(first_losses)) == 1  # the same θ_0 under every policy
    assert abs(first_losses[0][1] - math.log(2)) > 1e-3  # and not the zero initialisation
    # the optimisation ran from that θ_0 too: its epoch-0 J is the conventional desired AUC
    conventional = _evaluate(config, data_dir, tmp_path / "again")
    assert history["objective"].iloc[0] == pytest.approx(
        conventional["desired_loss"].iloc[1:].sum(), rel=1e-5
    )


# -- validation selection --------------------------------------------------------------------


#: A policy step large enough that the smoke Perceptron's policy moves in a few epochs.
OVERFITTING_STEP = {"step_size": 3.0e-3, "objective_scale": "sum", "schedule": "constant"}


def _optimise_with_validation(config, data_dir, out):
    settings = run_settings(config, "perceptron")
    run = load_run(settings, data_dir, torch.device("cpu"), torch.float32)
    policies = {e: out / f"epoch{e:04d}.pt" for e in (0, settings["policy"]["epochs"])}
    out.mkdir(parents=True)
    history = optimize_policy(
        run,
        initial_parameters(run, 0),
        policies,
        out / "history.parquet",
        out / "resume",
        0,
        selected_path=out / "selected.pt",
    )
    return run, history, torch.load(out / "selected.pt")


def test_validation_selection_never_reads_the_test_set(data_dir, tmp_path):
    config = merged_config(
        {"perceptron": {"policy": OVERFITTING_STEP | {"epochs": 6, "selection": "validation"}}}
    )
    run, history, selected = _optimise_with_validation(config, data_dir, tmp_path / "clean")
    # the held-out quarter is out of J: J is computed on 48 of the 64 desired examples
    assert run.desired["x"].shape[0] == 48 and run.validation["x"].shape[0] == 16
    assert history["selected"].sum() == 1

    corrupt = tmp_path / "corrupt_data"
    corrupt.mkdir()
    for split in ("train", "desired"):
        (corrupt / f"{split}.parquet").write_bytes((data_dir / f"{split}.parquet").read_bytes())
    test = pd.read_parquet(data_dir / "test.parquet")
    test["y"] = 1 - test["y"]  # every test label flipped: the test AUCs change completely
    test.to_parquet(corrupt / "test.parquet")
    _, corrupted, selected_corrupt = _optimise_with_validation(config, corrupt, tmp_path / "c")

    assert not np.allclose(history["test_auc"], corrupted["test_auc"])
    pd.testing.assert_series_equal(history["selected"], corrupted["selected"])
    pd.testing.assert_series_equal(history["validation_auc"], corrupted["validation_auc"])
    assert torch.equal(selected, selected_corrupt)


def test_the_selected_policy_is_the_epoch_with_the_lowest_validation_auc(data_dir, tmp_path):
    config = merged_config(
        {"perceptron": {"policy": OVERFITTING_STEP | {"epochs": 6, "selection": "validation"}}}
    )
    _, history, selected = _optimise_with_validation(config, data_dir, tmp_path / "run")
    best = int(history["validation_auc"].idxmin())
    assert history["selected"].tolist() == [i == best for i in range(len(history))]
    if best == 6:
        assert torch.equal(selected, torch.load(tmp_path / "run" / "epoch0006.pt"))
    elif best == 0:
        assert torch.allclose(selected, torch.full_like(selected, 1 / selected.shape[1]))


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overlay", "named"),
    [
        ({"perceptron": {"model": {"init": "gaussian"}}}, "perceptron.model.init"),
        ({"perceptron": {"policy": {"selection": "best"}}}, "perceptron.policy.selection"),
        (
            {"transformer": {"policy": {"validation_fraction": 1.5}}},
            "transformer.policy.validation_fraction",
        ),
        ({"perceptron_ablation": {"seeds": [-1]}}, "perceptron_ablation.seeds"),
        (
            {"transformer": {"data": {"n_desired_base": 17}}},  # the smoke preset's K is 16
            "`transformer.data.n_desired_base` = 17 exceeds `transformer.data.n_desired` = 16",
        ),
        ({"perceptron_ablation": {"variants": ["defualt"]}}, "Did you mean `default`?"),
        (
            {"perceptron_ablation": {"definitions": {"x": {"policy": {"step_sise": 1.0}}}}},
            "unknown setting `perceptron_ablation.definitions.x.policy.step_sise`",
        ),
        (
            {"perceptron_ablation": {"definitions": {"x": {"model": {"init": "normal"}}}}},
            "perceptron_ablation.definitions.x.model.init",
        ),
        ({"perceptron_ablation": {"definitions": {"Bad-Name": {}}}}, "Bad-Name"),
        (
            {"perceptron_ablation": {"definitions": {"x": {"policy": {"step_size": "fast"}}}}},
            "`perceptron_ablation.definitions.x.policy.step_size` = 'fast' is not a number",
        ),
    ],
)
def test_new_settings_reject_bad_values(overlay, named):
    with pytest.raises(ConfigError) as err:
        validate_config(merged_config(overlay))
    assert named in str(err.value)


def test_variant_values_given_as_strings_take_the_types_of_the_perceptron_block():
    """--config hands nested values over as strings; variants are typed as `perceptron`."""
    config = merged_config(
        {"perceptron_ablation": {"definitions": {"x": {"policy": {"step_size": "5e-6"}}}}}
    )
    validate_config(config)
    assert config["perceptron_ablation"]["definitions"]["x"]["policy"]["step_size"] == 5e-6


def test_ablation_runs_share_the_main_run_and_name_the_others():
    config = merged_config(
        {"perceptron_ablation": {"seeds": [0, 3], "variants": ["default", "k2048", "paper_step"]}}
    )
    validate_config(config)
    runs = ablation_runs(config)
    assert [r for *_, r in runs] == [
        "perceptron",
        "perceptron-default-s3",
        "perceptron-k2048-s0",
        "perceptron-k2048-s3",
        "perceptron-paper_step-s0",
        "perceptron-paper_step-s3",
    ]
    k2048 = run_settings(config, "perceptron-k2048-s3")
    assert k2048["seed"] == 3 and k2048["data"]["n_desired"] == 2048
    assert k2048["data_name"] == "perceptron-s3-n_desired2048"
    assert run_settings(config, "perceptron-default-s3")["data_name"] == "perceptron-s3"
    paper_step = run_settings(config, "perceptron-paper_step-s0")
    assert paper_step["model"]["init"] == config["perceptron"]["model"]["init"]
    assert paper_step["policy"]["step_size"] == 5.0e-6
    assert paper_step["policy"]["schedule"] == "constant"
    assert paper_step["data_name"] == "perceptron"  # the main run's data
    with pytest.raises(ConfigError, match="unknown run"):
        run_settings(config, "perceptron-nosuch-s0")


def test_a_larger_desired_set_keeps_the_test_set_and_extends_the_desired_one():
    settings = merged_config()["perceptron"]["data"]
    small = make_perceptron_data(settings, seed=5)
    large = make_perceptron_data({**settings, "n_desired": 4 * settings["n_desired"]}, seed=5)
    pd.testing.assert_frame_equal(small["test"], large["test"])
    pd.testing.assert_frame_equal(small["train"], large["train"])
    k = settings["n_desired"]
    head = large["desired"].iloc[:k].reset_index(drop=True)
    assert np.array_equal(np.stack(head["x"]), np.stack(small["desired"]["x"]))
    assert np.array_equal(head["y"], small["desired"]["y"])


# -- the table -------------------------------------------------------------------------------


def _steps(path, test_loss, desired_loss):
    pd.DataFrame(
        {"step": np.arange(len(test_loss)), "test_loss": test_loss, "desired_loss": desired_loss}
    ).to_parquet(path)


def test_run_metrics_on_hand_made_curves(tmp_path):
    t = np.arange(11, dtype=float)
    conventional = 1.0 / (1.0 + t)  # final loss 1/11
    fast = 1.0 / (1.0 + 5.0 * t)  # reaches 1/11 at t = 2: AR 5
    slow = 1.0 / (1.0 + 0.5 * t)  # never reaches 1/11; conventional reaches 1/6 at t = 5: 0.5
    _steps(tmp_path / "conv.parquet", conventional, conventional)
    _steps(tmp_path / "last.parquet", slow, fast)
    _steps(tmp_path / "sel.parquet", fast, fast)
    pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "objective": [10.0, 8.0, 6.0],
            "test_auc": [3.0, 2.0, 2.5],
            "selected": [False, True, False],
            "test_acceleration_ratio": [1.0, 5.0, 0.5],
        }
    ).to_parquet(tmp_path / "history.parquet")
    files = AblationRun(
        "v",
        0,
        "perceptron-v-s0",
        *(
            str(tmp_path / f)
            for f in ("conv.parquet", "last.parquet", "sel.parquet", "history.parquet")
        ),
    )
    m = run_metrics(files, steps=10, log_vocab=math.log(2))
    assert m["test_ar_selected"] == pytest.approx(5.0)
    assert m["test_ar_last"] == pytest.approx(0.5)
    assert m["desired_ar"] == pytest.approx(5.0)
    assert m["j_reduction_pct"] == pytest.approx(40.0)
    assert m["best_test_epoch"] == 1 and m["selected_epoch"] == 1
    assert (m["test_ar_epoch0001"], m["test_ar_epoch0002"]) == (5.0, 0.5)  # the history's
    assert m["best_ar_epoch"] == 1 and m["test_ar_best_epoch"] == 5.0
    assert "test_ar_epoch0000" not in m  # the conventional policy is the reference
    assert m["test_cr_conventional"] == pytest.approx(10 * math.log(2) / conventional[1:].sum())

    table = variant_table(pd.DataFrame([m, {**m, "seed": 1, "test_ar_last": 1.5}]), ["v"])
    assert table.loc[0, "test_ar_last_mean"] == pytest.approx(1.0)
    assert table.loc[0, "test_ar_last_sd"] == pytest.approx(np.std([0.5, 1.5], ddof=1))
    assert table.loc[0, "seeds"] == 2


def test_shown_table_prints_epochs_as_integers_and_ars_with_two_decimals():
    runs = pd.DataFrame(
        {
            "variant": "a",
            "seed": [0, 1],
            "test_ar_best_epoch": [1.5789, 1.5625],
            "best_ar_epoch": [15, 16],
        }
        | {
            c: [1.5, 1.5]
            for c in ("test_ar_last", "test_ar_selected", "desired_ar", "j_reduction_pct")
        }
        | {c: [1.3, 1.3] for c in ("test_cr_conventional", "test_cr_last", "test_cr_selected")}
        | {c: [20, 20] for c in ("best_test_epoch", "selected_epoch")}
    )
    row = shown_table(variant_table(runs, ["a"])).iloc[0]
    assert row["test AR, epoch of highest"] == "1.57 ± 0.01"
    assert row["epoch of highest test AR"] == "16 ± 1"


def test_smoke_ablations_seeds_and_scale_targets(smoke_run, tmp_path):
    """The four targets outside `all` in one run on a copy of the session's smoke run (whose
    Perceptron run is the ablation's default at seed 0, whose sweep runs are the scale study's
    at seed 0); every number checked is recomputed here from the files it comes from."""
    copy_of_smoke_run(smoke_run, tmp_path)
    entries = {entry.name: entry for entry in findings.ENTRIES}
    targets = ["perceptron_ablation", "transformer_ablation", "perceptron_seeds",
               "transformer_scale"]  # fmt: skip
    snakemake(tmp_path, *targets, "--configfile", SMOKE, str(tmp_path / "stories.yaml"))
    tables = tmp_path / "results" / "tables"

    # the Perceptron ablation: names and outputs as before the generalisation
    table = pd.read_csv(tables / "perceptron_ablation.csv")
    runs = pd.read_csv(tables / "perceptron_ablation_runs.csv")
    assert table["variant"].tolist() == ["default", "validation"]
    assert table["seeds"].tolist() == [2, 2]
    assert runs["run"].tolist() == [
        "perceptron",  # the default variant at the main seed is the main run
        "perceptron-default-s1",
        "perceptron-validation-s0",
        "perceptron-validation-s1",
    ]
    validation = runs[runs["variant"] == "validation"]
    selected = torch.load(tmp_path / "results" / "perceptron-validation-s1" / "policies"
                          / "selected.pt")  # fmt: skip
    assert selected.shape == (100, 256)  # T × N of the smoke Perceptron, each row on the simplex
    torch.testing.assert_close(selected.sum(1), torch.ones(100, dtype=selected.dtype))
    assert validation["selected_epoch"].between(0, 4).all()
    markdown = (tables / "perceptron_ablation.md").read_text()
    assert "5.50" in markdown and "± " in markdown
    # the variant with the main run's settings is marked, and the at-a-glance judge reads it
    assert table["main"].tolist() == [True, False]
    assert "- `default`: the main settings ← the main run's settings" in markdown
    found = findings.judge(entries["perceptron_ablation"], tmp_path)
    seed_ars = runs.loc[runs["variant"] == "default", "test_ar_selected"]
    assert found.ours.startswith(
        f"default (the main run's settings): test AR {seed_ars.mean():.2f} ± "
        f"{seed_ars.std(ddof=1):.2f}× over 2 seeds"
    )

    # the Transformer ablation: the same table writer, the AR of every epoch (saved or not)
    table = pd.read_csv(tables / "transformer_ablation.csv")
    runs = pd.read_csv(tables / "transformer_ablation_runs.csv")
    assert table["variant"].tolist() == ["authors", "todays_reading"]
    assert runs["run"].tolist() == [
        "transformer-authors-s0",
        "transformer-authors-s1",
        "transformer-todays_reading-s0",
        "transformer-todays_reading-s1",
    ]
    means = runs.groupby("variant")["test_ar_last"].mean()
    np.testing.assert_allclose(
        table.set_index("variant")["test_ar_last_mean"], means[table["variant"]]
    )
    # two policy epochs, the first not saved: the optimisation's AR of the last epoch is the
    # evaluation's (the same curve computed twice), and epoch 1 has one without an evaluation
    np.testing.assert_array_equal(runs["test_ar_epoch0002"], runs["test_ar_last"])
    assert runs["test_ar_epoch0001"].between(0.5, 5).all()
    assert not list((tmp_path / "results" / "transformer-authors-s0" / "dumps").glob("epoch0001"))
    best = np.where(runs["test_ar_epoch0002"] > runs["test_ar_epoch0001"], 2, 1)  # ties: 1
    assert runs["best_ar_epoch"].tolist() == best.tolist()
    assert "2.41" in (tables / "transformer_ablation.md").read_text()
    authors = run_settings(merged_config(yaml_file(SMOKE)), "transformer-authors-s1")
    assert authors["model"]["init"] == "pytorch" and authors["train"]["eta"] == 0.1
    # the ablation's base differs from the main run's `transformer`: no variant is judged
    assert not table["main"].any()
    found = findings.judge(entries["transformer_ablation"], tmp_path)
    assert found.verdict == NO_DATA and "no variant has the main run's settings" in found.ours

    # the Perceptron seeds: the ablation's runs, the distribution, the data's properties
    seeds = pd.read_csv(tables / "perceptron_seeds_runs.csv")
    assert seeds["run"].tolist() == ["perceptron", "perceptron-default-s1"]
    distribution = pd.read_csv(tables / "perceptron_seeds.csv")
    assert distribution.loc[0, "test_ar_last_median"] == pytest.approx(
        float(np.median(seeds["test_ar_last"]))
    )
    desired = pd.read_parquet(tmp_path / "results" / "data" / "perceptron-s1" / "desired.parquet")
    assert seeds.loc[1, "desired_label_balance"] == pytest.approx(desired["y"].mean())
    assert seeds["teacher_desired_angle"].between(0, 180).all()
    correlation = pd.read_csv(tables / "perceptron_seeds_correlation.csv")
    assert len(correlation) == 3 and (correlation["seeds"] == 2).all()
    assert "Spearman" in (tables / "perceptron_seeds.md").read_text()

    # the scale study: the sweep's two settings over 2 seeds, the fit as numpy's polyfit
    scale = pd.read_csv(tables / "transformer_scale_runs.csv")
    assert scale["run"].tolist() == [
        "transformer-T10-N32-V96",  # the sweep's run at the main seed
        "transformer-T10-N32-V96-s1",
        "transformer",  # the main run
        "transformer-T20-N64-V128-s1",
    ]
    assert scale["policy_epochs"].tolist() == [1, 1, 2, 2]  # T10's own epochs, then the base's
    assert "| 10 | 32 | 96 | 2 | 1 |" in (tables / "transformer_scale.md").read_text()
    np.testing.assert_allclose(scale["ln_TN"], np.log(scale["steps"] * scale["n_train"]))
    fit = json.loads((tables / "transformer_scale_fit.json").read_text())
    slope, intercept = np.polyfit(scale["ln_TN"], scale["test_ar"], 1)
    assert fit["b"] == pytest.approx(slope) and fit["a"] == pytest.approx(intercept)
    assert fit["prediction_low"] < fit["predicted_ar"] < fit["prediction_high"]
    found = findings.judge(entries["transformer_scale"], tmp_path)  # its at-a-glance row
    assert f"{fit['predicted_ar']:.2f}×, 95 % prediction interval" in found.ours

    figures = tmp_path / "results" / "figures"
    for name in ("perceptron_ablation", "transformer_ablation", "perceptron_seeds",
                 "transformer_scale"):  # fmt: skip
        for ext in ("pdf", "png"):
            assert_drawn(figures / f"{name}.{ext}")
    # their report: every figure and table with its caption, in the studies' own subcategory
    report = tmp_path / "results" / "report-fidelity.html"
    result = snakemake(tmp_path, *targets, "--configfile", SMOKE, str(tmp_path / "stories.yaml"),
                       "--report", str(report))  # fmt: skip
    html = report_html(result, report)
    assert "Fidelity (beyond the paper)" in html
    for name in ("perceptron_ablation", "transformer_ablation", "perceptron_seeds",
                 "transformer_scale"):  # fmt: skip
        assert f"{name}.png" in html, f"{name}.png is not in the report"
    for kind in ("Perceptron", "Transformer"):
        assert f"{kind} ablation — what the acceleration ratio depends on." in html
    for name in ("perceptron_seeds", "perceptron_seeds_table", "transformer_scale",
                 "transformer_scale_table"):  # fmt: skip
        title = caption_title(name)
        assert title in html, f"the caption of {name} ({title!r}) is not in the report"

    # none of them is part of `all`
    assert not (smoke_run / "results" / "tables" / "perceptron_ablation.csv").exists()
    assert not (smoke_run / "results" / "transformer-authors-s0").exists()


def yaml_file(path: str) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def test_difficulty_correlation_ranks_the_ar_against_each_property_of_a_draw():
    from pipeline.analysis.seeds import correlation_footer, difficulty_correlation

    ar = [1.0, 1.2, 1.1, 1.5, 1.3]
    runs = pd.DataFrame(
        {
            "variant": "default",
            "test_ar_last": ar,
            "test_cr_conventional": [3.0, 5.0, 4.0, 9.0, 6.0],  # same order as the AR: ρ = +1
            "desired_label_balance": [0.5, 0.4, 0.6, 0.3, 0.2],
            "teacher_desired_angle": [95.0, 90.0, 92.0, 80.0, 85.0],  # reverse order: ρ = −1
        }
    )
    table = difficulty_correlation(runs, ["default"]).set_index("property")
    assert table.loc["conventional test CR", "spearman_rho"] == pytest.approx(1.0)
    assert table.loc["angle(teacher, desired mean)", "spearman_rho"] == pytest.approx(-1.0)
    rho = stats.spearmanr(runs["desired_label_balance"], ar).statistic
    assert table.loc["desired share of y = 1", "spearman_rho"] == pytest.approx(rho)
    assert -1 < rho < 0  # ranks [3, 2, 4, 1, 0] against [0, 2, 1, 4, 3]: neither order
    assert "| default | +1.00 (0.000) |" in correlation_footer(table.reset_index())
    constant = runs.head(2).assign(desired_label_balance=0.5)  # 2 seeds, one property constant
    with pytest.warns(stats.ConstantInputWarning):
        two_seeds = difficulty_correlation(constant, ["default"])
    assert "| default | +1.00 (–) | – (–) | -1.00 (–) |" in correlation_footer(two_seeds)


def test_scale_fit_recovers_a_known_line_and_its_intervals_cover():
    from pipeline.analysis.scale import fit_line

    rng = np.random.default_rng(1)
    x = np.repeat(np.log([50 * 64, 100 * 128, 150 * 256, 300 * 512]), 3)
    exact = fit_line(x, 0.4 + 0.15 * x)
    assert exact.slope == pytest.approx(0.15) and exact.intercept == pytest.approx(0.4)
    covered, new_covered, trials = 0, 0, 1000
    x0 = np.log(4000 * 16384)
    for _ in range(trials):
        fit = fit_line(x, 0.4 + 0.15 * x + rng.normal(0, 0.05, len(x)))
        low, high = fit.slope_interval()
        covered += low <= 0.15 <= high
        new = 0.4 + 0.15 * x0 + rng.normal(0, 0.05)
        new_covered += abs(new - fit.predict(x0)) <= fit.half_width(x0, new_run=True)
    # 95 % intervals cover about 95 % of the time (± 3 binomial sd of 1000 trials)
    assert 0.93 <= covered / trials <= 0.97
    assert 0.93 <= new_covered / trials <= 0.97
    with pytest.raises(ValueError, match="transformer_scale"):
        fit_line(np.array([1.0, 1.0, 1.0]), np.array([1.0, 2.0, 3.0]))


def test_ablation_figure_draws_every_variant_and_the_paper_line(tmp_path):
    from pipeline.plots.ablation import plot_ablation

    rng = np.random.default_rng(0)
    runs = pd.DataFrame(
        [
            {
                "variant": v,
                "seed": s,
                "test_ar_last": rng.uniform(0.8, 1.2),
                "test_ar_selected": rng.uniform(1.0, 1.3),
                "desired_ar": rng.uniform(2, 4),
            }
            for v in ("a", "b", "c", "d")
            for s in range(3)
        ]
    )
    fig = plot_ablation(runs, ["a", "b", "c", "d"], [str(tmp_path / "f.png")])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "paper: 5.50× (test set)" in labels
    assert sum(label.startswith(("test set", "desired set")) for label in labels) == 3
    assert len(ax.containers) == 3  # one error-bar series per quantity
    means = np.asarray(ax.containers[2].lines[0].get_ydata(), dtype=float)  # desired set
    expected = runs.groupby("variant")["desired_ar"].mean().to_numpy()
    np.testing.assert_allclose(means, expected)
    assert_drawn(tmp_path / "f.png")
