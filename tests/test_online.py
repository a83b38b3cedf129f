"""Online policies (pipeline/policy/online.py): the three rules on hand-made contributions, τ
chosen without the test set, and the dumps of the smoke run's online evaluation."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from pipeline.config import (
    ONLINE_POLICIES,
    online_near_optimal_runs,
    online_runs,
    run_settings,
    tau_source_run,
)
from pipeline.experiment import Run
from pipeline.jobs.training import shared_tau
from pipeline.models.perceptron import Perceptron
from pipeline.policy.online import (
    choose_tau,
    greedy_row,
    held_out_run,
    online_policy,
    online_row,
    positive_row,
    softmax_row,
)
from tests.conftest import SMOKE, merged_config, snakemake

CT = torch.tensor([1.0, 0.0, -1.0, 2.0], dtype=torch.float64)


def test_greedy_is_the_projection_of_a_step_from_uniform():
    # 1/4 + 0.1·CT = [.35, .25, .15, .45] sums to 1.2: the projection subtracts 0.05 from each
    assert torch.allclose(greedy_row(CT, 0.1), torch.tensor([0.3, 0.2, 0.1, 0.4], dtype=CT.dtype))
    # 1/4 + 0.5·CT = [.75, .25, −.25, 1.25]: support {0, 3}, threshold 0.5
    assert torch.allclose(greedy_row(CT, 0.5), torch.tensor([0.25, 0, 0, 0.75], dtype=CT.dtype))
    assert torch.equal(greedy_row(CT, 0.5)[1:3], torch.zeros(2, dtype=CT.dtype))  # exact zeros


def test_positive_keeps_only_contributive_examples():
    ct = torch.tensor([1.0, 0.0, -1.0, 3.0])
    assert torch.allclose(positive_row(ct), torch.tensor([0.25, 0, 0, 0.75]))
    none_positive = torch.tensor([-1.0, 0.0, -2.0, -0.5])  # every CT ≤ 0: the conventional row
    assert torch.equal(positive_row(none_positive), torch.full((4,), 0.25))


def test_softmax_of_contributions_over_a_temperature():
    tau = 0.5
    ct = tau * torch.log(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.allclose(softmax_row(ct, tau), torch.tensor([1, 2, 3], dtype=ct.dtype) / 6)
    huge = softmax_row(torch.tensor([1000.0, 1000.0, -1000.0]), 0.01)  # no overflow
    assert torch.allclose(huge, torch.tensor([0.5, 0.5, 0.0]))


def test_unknown_rule_is_named():
    with pytest.raises(ValueError, match="online_greedy, online_positive, online_softmax"):
        online_row("online_best", CT, 1.0)


def _toy_run(test: dict | None = None) -> Run:
    """A Perceptron run of hand-made data (N = 64, K = 32 of which 8 held out, T = 30)."""
    g = torch.Generator().manual_seed(0)
    dim = 4
    teacher = torch.randn(dim, generator=g, dtype=torch.float64)

    def split(n: int, shift: float) -> dict:
        x = torch.randn(n, dim, generator=g, dtype=torch.float64) + shift
        return {"x": x, "y": (x @ teacher > 0).to(torch.float64)}

    train, desired, validation = split(64, 0.0), split(24, 0.5), split(8, 0.5)
    settings = {"name": "toy", "kind": "perceptron", "train": {"eta": 0.5, "steps": 30}}
    return Run(settings, Perceptron(dim), train, desired, test or split(16, 0.5),
               torch.device("cpu"), torch.float64, validation=validation)  # fmt: skip


@pytest.mark.parametrize("rule", ["online_greedy", "online_softmax"])
def test_tau_never_reads_the_test_set(rule, one_thread):
    run = _toy_run()
    theta0 = torch.zeros(4, dtype=torch.float64)
    grid = [1e-3, 1e-2, 1e-1, 1.0, 10.0]
    chosen = choose_tau(held_out_run(run), theta0, rule, grid)
    flipped = {"x": run.test["x"], "y": 1 - run.test["y"]}
    garbage = {"x": torch.full_like(run.test["x"], math.nan), "y": run.test["y"]}
    for test in (flipped, garbage):
        again = choose_tau(held_out_run(_toy_run(test)), theta0, rule, grid)
        assert again["tau"] == chosen["tau"]
        assert again["held_out_auc"] == chosen["held_out_auc"]
    assert len(set(chosen["held_out_auc"])) == len(grid)  # τ matters: the choice is a real one


def test_online_runs_reuse_the_ablation_names():
    config = merged_config({"online": {"seeds": [0, 1, 2]}})
    assert online_runs(config, "perceptron") == [
        (0, "perceptron"), (1, "perceptron-default-s1"), (2, "perceptron-default-s2")
    ]  # fmt: skip
    settings = run_settings(config, "transformer-s2")
    main = run_settings(config, "transformer")["data_name"]  # tinystories-<content hash>
    assert re.fullmatch(r"tinystories-[0-9a-f]{8}", main)
    assert (settings["seed"], settings["data_name"]) == (2, f"{main}-s2")
    # the Transformer's near-optimal policy at other seeds only when `optimise_other_seeds` asks
    assert online_near_optimal_runs(config, "transformer") == [(0, "transformer")]
    assert len(online_near_optimal_runs(config, "perceptron")) == 3


def test_online_dumps_have_the_schema_of_every_policy(smoke_run):
    results = smoke_run / "results"
    for run in ("perceptron", "transformer"):
        conventional = results / run / "dumps" / "conventional"
        for policy in ONLINE_POLICIES:
            dumps = results / run / "dumps" / policy
            for name in ("steps.parquet", "examples.parquet"):
                assert pq.read_schema(dumps / name) == pq.read_schema(conventional / name)
            examples = pd.read_parquet(dumps / "examples.parquet")
            weights = examples.groupby("step")["weight"].sum()
            assert weights.sub(1).abs().max() < 1e-4  # a row of the simplex at every dump step
        costs = json.loads((results / run / "online" / "costs.json").read_text())
        assert set(costs["policies"]) == set(ONLINE_POLICIES)
        table = pd.read_csv(results / "tables" / f"online_policies_{run}.csv")
        assert list(table["policy"]) == ["conventional", "near_optimal", *ONLINE_POLICIES]
        law = pd.read_csv(results / run / "learning_law" / "online_policies.csv")
        assert list(law["policy"]) == ONLINE_POLICIES


def test_online_figures_read_well(smoke_run, tmp_path):
    from pipeline.plots.online import plot_online_policies
    from tests.test_figures import check_legends, check_log_ticks

    for run in ("perceptron", "transformer"):
        runs = pd.read_csv(smoke_run / "results" / "tables" / f"online_policies_{run}_runs.csv")
        fig = plot_online_policies(runs, run, [str(tmp_path / "online.png")])
        check_legends(fig)
        check_log_ticks(fig)
        heights = [[bar.get_height() for bar in ax.patches] for ax in fig.axes]
        assert heights[0] == pytest.approx(list(runs["test_ar"]))  # one seed: the bar is its AR


def test_at_a_glance_row_names_the_online_policy_nearest_the_near_optimal_ar_unjudged():
    from pipeline.analysis import judges

    def table(differences):
        rows = [("near_optimal", 1.5, 0.0, 1.2, 500.0)]
        rows += [
            (p, 1.5 + d, d, 1.1, 5.0) for p, d in zip(ONLINE_POLICIES, differences, strict=True)
        ]
        columns = ["policy", "test_ar_mean", "ar_minus_near_optimal_mean",
                   "test_auc_ratio_mean", "cost_conventional_runs_mean"]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    found = judges.online_policies(
        "Online", table([-0.4, -0.1, math.nan]), table([math.nan, math.nan, math.nan])
    )
    assert found.verdict == judges.OURS and found.paper == "–"
    assert (
        "Perceptron: online_positive AR 1.40× vs near-optimal 1.50× (-0.10; test AUC ratio "
        "1.100 vs 1.200)" in found.ours
    )


def test_ar_difference_is_averaged_over_the_seeds_with_a_near_optimal_policy_and_edges_marked():
    """Seed 1 has no near-optimal policy (the Transformer's default): its AR difference is NaN
    and must not turn the mean into NaN; a τ at an end of its grid is marked."""
    from pipeline.analysis.online import policy_table

    rows = [
        (0, "conventional", math.nan, False, 1.0, math.nan),
        (0, "near_optimal", math.nan, False, 1.5, 0.0),
        (0, "online_greedy", 0.1, True, 1.25, -0.25),
        (1, "conventional", math.nan, False, 1.0, math.nan),
        (1, "online_greedy", 0.01, False, 1.35, math.nan),
    ]
    runs = pd.DataFrame(rows, columns=["seed", "policy", "tau", "tau_at_edge", "test_ar",
                                       "ar_minus_near_optimal"])  # fmt: skip
    for column in ("test_cr", "test_auc_ratio", "j", "cost_seconds", "cost_conventional_runs",
                   "cost_flops", "cost_flops_conventional_runs"):  # fmt: skip
        runs[column] = 1.0
    table = policy_table(runs).set_index("policy")
    assert table.loc["online_greedy", "ar_minus_near_optimal_mean"] == pytest.approx(-0.25)
    assert table.loc["online_greedy", "test_ar_mean"] == pytest.approx(1.3)  # over both seeds
    assert table.loc["online_greedy", "seeds"] == 2
    assert table.loc["online_greedy", "tau"] == "0.1* 0.01"


def test_the_comparison_with_the_near_optimal_policy_stays_finite_when_its_ar_is_near_one(
    tmp_path,
):
    """At an unseen seed the near-optimal AR was 1.0015 and the old share (AR − 1)/(AR_opt − 1)
    came out in the thousands. AR − AR_opt and the test AUC ratio stay of the size of the
    curves' differences."""
    from pipeline.analysis.online import seed_rows

    steps = 2000
    t = np.arange(steps + 1)
    conventional = 1.0 / (1.0 + 0.01 * t)
    near = 1.0 / (1.0 + 0.010015 * t)  # reaches the conventional final loss ≈ 3 steps early
    online = 1.0 / (1.0 + 0.02 * t)  # about twice as fast
    rows = seed_rows(
        0, "toy", _dumps(tmp_path, {"conventional": conventional, "near_optimal": near,
                                    "online_greedy": online}),  # fmt: skip
        {"conventional_seconds": 1.0, "policies": {"online_greedy": {"tau": 1.0, "grid": [1.0],
                                                                     "seconds": 1.0}}},
        {"conventional_run": 1, "policy_epoch": 4, "policies": {"online_greedy": {"total": 2}}},
        _history(tmp_path, [1.0]), steps, 1.0,
    )  # fmt: skip
    rows = {row["policy"]: row for row in rows}
    assert 1.0 < rows["near_optimal"]["test_ar"] < 1.01  # the flat case of the issue
    old_share = (rows["online_greedy"]["test_ar"] - 1) / (rows["near_optimal"]["test_ar"] - 1)
    assert old_share > 100  # what the table used to print
    difference = rows["online_greedy"]["ar_minus_near_optimal"]
    assert 0.9 < difference < 1.1  # ≈ 2× − 1.0015×
    assert 1.0 < rows["online_greedy"]["test_auc_ratio"] < 2.0
    assert rows["near_optimal"]["ar_minus_near_optimal"] == 0.0
    assert rows["conventional"]["test_auc_ratio"] == 1.0


def _dumps(folder, curves: dict) -> dict:
    """Steps dumps (step, desired and test loss) of hand-made test-loss curves in `folder`."""
    paths = {}
    for name, curve in curves.items():
        path = folder / f"{name}.parquet"
        frame = pd.DataFrame({"step": np.arange(len(curve)), "test_loss": curve,
                              "desired_loss": curve})  # fmt: skip
        frame.to_parquet(path)
        paths[name] = str(path)
    return paths


def _history(folder, seconds: list[float]) -> str:
    path = folder / "history.parquet"
    pd.DataFrame({"seconds": seconds}).to_parquet(path)
    return str(path)


def test_flops_of_a_run_extend_exactly_from_one_and_two_steps(one_thread):
    """The counted FLOPs of T steps (from 1 and 2) equal the count of the whole run, for the
    conventional, an online policy, and a policy epoch with and without checkpoints."""
    from pipeline.policy.flops import count_flops, epoch_flops, evaluation_flops, shortened
    from pipeline.policy.optimize import conventional_policy, epoch_gradient
    from pipeline.training.evaluate import evaluate_policy

    run = _toy_run()
    theta0 = torch.zeros(4, dtype=torch.float64)
    conventional = evaluation_flops(run, theta0)
    assert conventional == count_flops(lambda: evaluate_policy(run, theta0, None, []))
    online = evaluation_flops(
        run, theta0, lambda short: online_policy("online_positive", None, short)
    )
    policy = online_policy("online_positive", None, run)
    assert online == count_flops(lambda: evaluate_policy(run, theta0, policy, []))
    assert 0 < conventional < online  # CT_t's JVP over the training set each step
    for k in (1, 3):
        run.settings["policy"] = {"checkpoint_every": k}
        whole = count_flops(lambda: epoch_gradient(run, theta0, conventional_policy(run)))
        assert epoch_flops(run, theta0) == whole, k
    assert shortened(run, 2).steps == 2 and run.steps == 30


def test_seed_rows_count_the_costs_of_each_policy(tmp_path):
    """Hand-made dumps, costs and FLOPs of one seed: the near-optimal policy costs one policy
    epoch's FLOPs per history row (the last row's adjoint pass gives its gap), an online policy
    its counted total, each over a conventional run; AR, the AR difference and the test AUC
    ratio from the curves."""
    from pipeline.analysis.online import seed_rows

    def dump(name, test_loss):
        path = tmp_path / f"{name}.parquet"
        steps = list(range(len(test_loss)))
        pd.DataFrame({"step": steps, "test_loss": test_loss, "desired_loss": test_loss}).to_parquet(
            path
        )
        return str(path)

    dumps = {
        "conventional": dump("conventional", [4.0, 3.0, 2.0, 1.0]),  # reaches 1.0 at t = 3
        "near_optimal": dump("near_optimal", [4.0, 2.0, 1.0, 0.5]),  # at t = 2: AR 1.5
        "online_greedy": dump("online_greedy", [4.0, 1.0, 0.5, 0.4]),  # at t = 1: AR 3
    }
    history = tmp_path / "history.parquet"
    pd.DataFrame({"seconds": [10.0, 10.0, 2.0], "step_size": [0.1, 0.05, math.nan]}).to_parquet(
        history
    )  # three adjoint passes: two epochs that step and the last one's (its gap)
    greedy_cost = {"tau": 0.1, "grid": [0.01, 0.1, 1.0], "seconds": 8.0}
    costs = {"conventional_seconds": 2.0, "policies": {"online_greedy": greedy_cost}}
    flops = {"conventional_run": 100, "policy_epoch": 300,
             "policies": {"online_greedy": {"total": 450}}}  # fmt: skip
    rows = seed_rows(0, "toy", dumps, costs, flops, history, steps=3, log_vocab=1.0)
    rows = {row["policy"]: row for row in rows}
    near, greedy = rows["near_optimal"], rows["online_greedy"]
    assert near["cost_flops"] == 3 * 300 and near["cost_flops_conventional_runs"] == 9.0
    assert near["cost_seconds"] == 22.0 and near["cost_conventional_runs"] == 11.0
    assert greedy["cost_flops_conventional_runs"] == 4.5 and greedy["cost_conventional_runs"] == 4.0
    assert near["test_ar"] == 1.5 and greedy["test_ar"] == 3.0
    assert greedy["ar_minus_near_optimal"] == pytest.approx(3.0 - 1.5)
    assert greedy["test_auc_ratio"] == pytest.approx((3.0 + 2.0 + 1.0) / (1.0 + 0.5 + 0.4))
    assert greedy["tau"] == 0.1 and not greedy["tau_at_edge"]
    assert rows["conventional"]["cost_flops_conventional_runs"] == 1.0


def test_a_shared_tau_is_chosen_at_the_main_seed_only():
    """`online.shared_tau`: the other seeds' online jobs take the main seed's τ (its costs.json is
    their input), the experiments not listed choose their own; with the main seed not compared,
    the first compared seed chooses."""
    config = merged_config({"online": {"seeds": [0, 1, 2], "shared_tau": ["transformer"]}})
    assert tau_source_run(config, "transformer", "transformer") is None
    assert tau_source_run(config, "transformer", "transformer-s2") == "transformer"
    assert tau_source_run(config, "perceptron", "perceptron-default-s1") is None
    not_main = merged_config({"online": {"seeds": [1, 2], "shared_tau": ["transformer"]}})
    assert tau_source_run(not_main, "transformer", "transformer-s2") == "transformer-s1"
    assert tau_source_run(not_main, "transformer", "transformer-s1") is None
    source = {
        "run": "transformer",
        "policies": {
            "online_softmax": {
                "tau": 0.1,
                "grid": [0.01, 0.1],
                "held_out_auc": [5.0, 4.0],
                "selection_seconds": 7.0,
            }
        },
    }
    assert shared_tau(source, "online_softmax") == {
        "tau": 0.1, "grid": [0.01, 0.1], "held_out_auc": [5.0, 4.0], "seconds": 7.0,
        "tau_from": "transformer"}  # fmt: skip


def test_another_seed_runs_with_the_main_seeds_tau(tmp_path, stories_path):
    """The online job of a second seed reads the main seed's τ and runs no τ candidate."""
    overlay = tmp_path / "overlay.yaml"
    grid = {"online_greedy": [1.0e-3, 1.0e-2], "online_softmax": [0.1, 1.0]}
    overlay.write_text(yaml.safe_dump({
        "transformer": {"data": {"local_files": [str(stories_path)]}},
        "online": {"seeds": [0, 1], "shared_tau": ["transformer"],
                   "tau_grid": {"transformer": grid}}}))  # fmt: skip
    snakemake(tmp_path, "results/transformer-s1/online/costs.json", "--configfile", SMOKE,
              str(overlay))  # fmt: skip
    main = json.loads((tmp_path / "results/transformer/online/costs.json").read_text())
    other = json.loads((tmp_path / "results/transformer-s1/online/costs.json").read_text())
    for rule in ("online_greedy", "online_softmax"):
        assert other["policies"][rule]["tau"] == main["policies"][rule]["tau"]
        assert other["policies"][rule]["tau_from"] == "transformer"
        assert "tau_from" not in main["policies"][rule]
    log = (tmp_path / "results/logs/transformer-s1/evaluate_online.log").read_text()
    assert "chosen at transformer's held-out" in log and "held-out AUC per τ" not in log
