"""The optimum's machinery: mirror descent, the stationarity gap, the time-independent form, the
warm start from an online rule, and the frontier's table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.analysis.judges import VERDICTS, Finding
from pipeline.analysis.optimum_verdicts import (
    acceleration_at,
    convergence,
    property41_at_optimum,
    sim_at_optimum,
    weakest,
)
from pipeline.models.perceptron import Perceptron
from pipeline.policy.adjoint import policy_gradient
from pipeline.policy.optimize import form_gradient, policy_update, stationarity_gap
from pipeline.policy.simplex import exponentiated_step, frank_wolfe_gap, project_to_simplex
from tests.conftest import SMOKE, assert_drawn, copy_of_smoke_run, snakemake
from tests.test_adjoint import tiny_problem, unrolled_objective


def test_mirror_descent_reaches_the_known_optimum_of_a_convex_problem_on_simplices():
    """f(γ) = Σ_t ½‖γ_t − c_t‖² with c_t on the simplex (some entries 0) has its minimum at
    γ = c. Exponentiated gradient from uniform gets there, and the Frank–Wolfe gap, an upper
    bound of f − f* for a convex f, falls to 0 with it."""
    g = torch.Generator().manual_seed(0)
    target = project_to_simplex(torch.randn(4, 6, generator=g, dtype=torch.float64) * 2)
    assert (target == 0).any() and (target > 0).any()  # the optimum lies on faces too
    policy = torch.full_like(target, 1 / 6)
    gaps = []
    for _ in range(3000):
        grad = policy - target
        gaps.append(frank_wolfe_gap(policy, grad))
        policy = exponentiated_step(policy, grad, 1.0)
    torch.testing.assert_close(policy.sum(-1), torch.ones(4, dtype=torch.float64))
    assert (policy - target).abs().max() < 1e-3
    value = 0.5 * float(((policy - target) ** 2).sum())
    assert value <= gaps[-1] + 1e-12 and gaps[-1] < 1e-3 < gaps[0]
    assert frank_wolfe_gap(target, target - target) == 0.0


def test_the_gap_is_zero_at_a_stationary_point_and_positive_elsewhere():
    """A hand-made stationary point: every row puts its weight only where g is that row's
    minimum (two tied minima share it); moving any weight to a higher g gives a positive gap
    equal to the weight times the difference."""
    grad = torch.tensor([[1.0, 0.5, 0.5, 2.0], [-1.0, 3.0, 0.0, -1.0]], dtype=torch.float64)
    stationary = torch.tensor([[0.0, 0.3, 0.7, 0.0], [0.5, 0.0, 0.0, 0.5]], dtype=torch.float64)
    assert frank_wolfe_gap(stationary, grad) == 0.0
    moved = stationary.clone()
    moved[1] = torch.tensor([0.4, 0.1, 0.0, 0.5], dtype=torch.float64)  # 0.1 onto g = 3
    assert frank_wolfe_gap(moved, grad) == pytest.approx(0.1 * (3.0 - (-1.0)))
    uniform = torch.full_like(grad, 0.25)
    assert frank_wolfe_gap(uniform, grad) > 0


def test_mirror_descent_keeps_rows_on_the_simplex_and_revives_zeros():
    """A step keeps every row on the simplex (no overflow for a huge step), and an exact zero
    whose gradient is the row's lowest gains weight instead of staying at 0 forever."""
    policy = torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]], dtype=torch.float32)
    grad = torch.tensor([[-1.0, 0.0, 0.0], [1e6, 0.0, -1e6]], dtype=torch.float32)
    out = exponentiated_step(policy, grad, 1.0)
    torch.testing.assert_close(out.sum(-1), torch.ones(2))
    assert torch.isfinite(out).all() and out[1, 2] == pytest.approx(1.0)
    for _ in range(200):
        out = exponentiated_step(out, grad, 1.0)
    assert out[0, 0] > 0.99


def test_time_independent_gradient_equals_autograd_through_a_shared_row():
    """γ_t = γ for every t: the form's gradient Σ_t ∂J/∂γ_t equals autograd of J through the
    unrolled loop with one row shared by all steps, and its update keeps the rows equal."""
    train, desired, theta0, policy = tiny_problem(seed=2)
    model, eta = Perceptron(dim=4, closed_form=False), 0.7
    shared = policy[:1].expand_as(policy).clone()
    result = policy_gradient(model, theta0, train, desired, shared, eta)
    row = policy[0].clone().requires_grad_(True)
    theta = theta0.clone().requires_grad_(True)
    objective = unrolled_objective(model, theta, train, desired, row.expand_as(policy), eta)
    (expected,) = torch.autograd.grad(objective, row)
    grad = form_gradient("time_independent", result.grad)
    torch.testing.assert_close(grad[0], expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad[-1], expected, rtol=1e-10, atol=1e-12)
    for optimizer in ("projected_gradient", "mirror_descent"):
        stepped = policy_update(optimizer, shared, grad, 0.05)
        assert torch.equal(stepped, stepped[:1].expand_as(stepped)), optimizer
        assert not torch.equal(stepped, shared)
    gap = stationarity_gap("time_independent", shared, result.grad)
    assert gap == pytest.approx(frank_wolfe_gap(shared[:1], expected[None].detach()))


def _toy_run(**policy):
    """A small Perceptron run in memory (N = 16, K = 12 of which 3 held out, T = 20) with the
    policy settings given on top of mirror descent from the conventional policy."""
    from pipeline.experiment import Run

    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(4, generator=g, dtype=torch.float64)

    def split(count, shift):
        x = torch.randn(count, 4, generator=g, dtype=torch.float64) + shift
        return {"x": x, "y": (x @ teacher > 0).to(torch.float64)}

    settings = {
        "name": "toy", "kind": "perceptron", "train": {"eta": 0.5, "steps": 20},
        "data": {}, "model": {},
        "policy": {"epochs": 3, "step_size": 0.5, "objective_scale": "sum",
                   "schedule": "constant", "save_every": 1, "checkpoint_every": 1,
                   "selection": "validation", "validation_fraction": 0.25,
                   "optimizer": "mirror_descent", "init": "conventional", "init_mix": 0.01,
                   "form": "per_step", **policy},
    }  # fmt: skip
    train, desired, validation, test = split(16, 0.0), split(9, 0.5), split(3, 0.5), split(12, 0.5)
    return Run(settings, Perceptron(4), train, desired, test, torch.device("cpu"), torch.float64,
               validation=validation)  # fmt: skip


def test_a_warm_start_begins_at_the_online_rule_policy_and_its_ar_is_against_the_conventional(
    tmp_path,
):
    """With `policy.init: online_greedy` epoch 0 is the greedy rule's T × N policy (computed
    from the desired examples J uses) mixed by init_mix with uniform, and the AR of every epoch
    is measured against the conventional policy, not against epoch 0."""
    from pipeline.policy.online import online_policy_matrix
    from pipeline.policy.optimize import conventional_run_curves, optimize_policy

    run = _toy_run(init="online_greedy")
    theta0 = torch.zeros(4, dtype=torch.float64)
    greedy = online_policy_matrix(run, theta0, "online_greedy", 5.0)
    assert greedy.shape == (20, 16) and (greedy == 0).any()  # the projection's exact zeros
    paths = {e: tmp_path / f"epoch{e}.pt" for e in range(4)}
    history = optimize_policy(
        run, theta0, paths, tmp_path / "h.parquet", tmp_path / "resume", 0,
        warm_start=lambda: online_policy_matrix(run, theta0, "online_greedy", 5.0),
        warm_start_tau=5.0,
    )  # fmt: skip
    start = torch.load(paths[0])
    torch.testing.assert_close(start, 0.99 * greedy + 0.01 / 16)
    assert (start > 0).all()
    from pipeline.metrics import acceleration_ratio

    conventional = conventional_run_curves(run, theta0)
    greedy_result = policy_gradient(run.model, theta0, run.train, run.desired, start, run.eta,
                                    test=run.test)  # fmt: skip
    expected = acceleration_ratio(conventional["test"], greedy_result.test_losses.tolist())
    assert history.loc[0, "test_acceleration_ratio"] == pytest.approx(expected)
    assert history.loc[0, "test_acceleration_ratio"] != 1.0  # epoch 0 is not the reference
    assert history["objective"].iloc[-1] < history["objective"].iloc[0]
    assert {"stationarity_gap", "relative_gap", "validation_auc"} <= set(history.columns)
    assert history["stationarity_gap"].notna().all()  # the last epoch's too


def test_the_frontier_table_picks_the_lowest_j_the_held_out_and_the_test_best_per_seed():
    """Hand-made points of two seeds: each choice picks the point that minimises its column,
    the oracle row is the lowest test AUC, and the Pareto front keeps only undominated points."""
    from pipeline.analysis.frontier import choices, frontier_table, pareto_front

    rows = []
    for seed in (0, 1):
        for epoch, (j, held, test) in enumerate([(10, 5, 5), (8, 4, 6), (6, 4.5, 7)]):
            rows.append({"path": "mirror", "seed": seed, "epoch": epoch, "objective": j + seed,
                         "validation_auc": held, "test_auc": test,
                         "test_acceleration_ratio": 10.0 / test, "test_auc_ratio": 5.0 / test,
                         "test_compression_ratio": 1.0, "relative_gap": 0.1 * epoch,
                         "gap_reduction": 1.0})  # fmt: skip
    points = pd.DataFrame(rows)
    picked = choices(points).set_index(["choice", "seed"])["epoch"]
    assert picked["lowest J", 0] == 2 and picked["validation-selected", 1] == 1
    assert picked["test-best (oracle: chooses nothing)", 0] == 0
    table = frontier_table(points, ["mirror"], near_optimal_gap=0.15).set_index("row")
    assert table.loc["lowest J", "test_auc_mean"] == 7.0
    assert table.loc["validation-selected", "near_optimal_seeds"] == 2  # gap 0.1 < 0.15
    assert table.loc["last epoch of mirror", "picked"] == "mirror@2 mirror@2"
    front = pareto_front(points[points["seed"] == 0])
    assert list(front["epoch"]) == [2, 1, 0]  # lower J but lower AR: none dominates another
    worse = points.iloc[:1].assign(objective=20.0, test_acceleration_ratio=0.5)
    dominated = pd.concat([worse, points[points["seed"] == 0]], ignore_index=True)
    assert len(pareto_front(dominated)) == 3
    assert np.isfinite(table.loc["lowest J", "test_acceleration_ratio_sd"])  # two seeds


def _frontier_rows(lowest_ar: float, near: int, fall: float) -> pd.DataFrame:
    """A frontier table of two seeds with its conventional, lowest-J and held-out rows."""

    def row(name, j, ar, gap_fall, near_seeds):
        return {"row": name, "seeds": 2, "objective_mean": j, "objective_sd": 1.0,
                "test_acceleration_ratio_mean": ar, "test_acceleration_ratio_sd": 0.1,
                "test_auc_ratio_mean": ar, "test_auc_ratio_sd": 0.1, "relative_gap_mean": 0.5,
                "relative_gap_sd": 0.1, "gap_reduction_mean": gap_fall, "gap_reduction_sd": 0.0,
                "near_optimal_seeds": near_seeds, "picked": "mirror@9 mirror@9"}  # fmt: skip

    return pd.DataFrame([row("conventional", 300.0, 1.0, 1.0, 0),
                         row("lowest J", 40.0, lowest_ar, fall, near),
                         row("validation-selected", 50.0, 1.5, fall, near)])  # fmt: skip


def test_the_verdicts_against_the_optimum_follow_their_criteria():
    """Figure 4 by the gap (near-optimal at every seed, or a gap that fell 10×), Figure 5 by
    the paper's AR, Figures 6–8 against the conventional policy; the weakest seed wins."""
    assert convergence("F4", _frontier_rows(1.0, 2, 0.5), 0.01).verdict == "reproduced"
    assert convergence("F4", _frontier_rows(1.0, 1, 0.05), 0.01).verdict == "partly"
    assert convergence("F4", _frontier_rows(1.0, 1, 0.5), 0.01).verdict == "not reproduced"
    assert convergence("F4", _frontier_rows(1.0, 1, 0.5).iloc[:1], 0.01).verdict == "no data"
    table = _frontier_rows(4.2, 0, 0.5)
    assert acceleration_at("F5", table, "lowest J", 5.5).verdict == "reproduced"  # ≥ 0.75 × 5.5
    assert acceleration_at("F5", table, "validation-selected", 5.5).verdict == "partly"
    assert acceleration_at("F5", _frontier_rows(0.2, 0, 0.5), "lowest J", 5.5).verdict == (
        "not reproduced")  # fmt: skip
    law = pd.DataFrame([
        {"row": "conventional", "epochs": "0 0", "sim_mean": 0.03, "sim_sd": 0.0, "r2_mean": np.nan,
         "r2_sd": np.nan, "property41_fraction_mean": 0.0, "property41_fraction_sd": 0.0},
        {"row": "mirror: lowest J", "epochs": "9 9", "sim_mean": 0.05, "sim_sd": 0.01,
         "r2_mean": 0.7, "r2_sd": 0.1, "property41_fraction_mean": 0.95,
         "property41_fraction_sd": 0.01},
    ])  # fmt: skip
    assert sim_at_optimum("F6", law, "mirror").verdict == "partly"  # SIM rises, r² < 0.8
    assert sim_at_optimum("F6", law.assign(r2_mean=0.9), "mirror").verdict == "reproduced"
    assert sim_at_optimum("F6", law, "validation").verdict == "no data"
    assert property41_at_optimum("F8", law, "mirror").verdict == "reproduced"
    lower = law.assign(property41_fraction_mean=[0.1, 0.05])
    assert property41_at_optimum("F8", lower, "mirror").verdict == "not reproduced"
    seeds = [(s, Finding("", "c", "p", f"o{s}", v, "r"))
             for s, v in ((0, "reproduced"), (1, "partly"), (2, "reproduced"))]  # fmt: skip
    both = weakest("F9", seeds)
    assert both.verdict == "partly" and both.ours == "s0: o0; s1: o1; s2: o2"


def test_smoke_frontier_and_k_targets(smoke_run, tmp_path):
    """`policy_frontier` and `optimum_k` at smoke size on a copy of the session's smoke run:
    every path's every epoch is a point, the online and conventional policies are points of
    each seed, the chosen rows come from those points, and every figure is drawn."""
    copy_of_smoke_run(smoke_run, tmp_path)
    snakemake(tmp_path, "policy_frontier", "optimum_k", "--configfile", SMOKE,
              str(tmp_path / "stories.yaml"))  # fmt: skip
    tables, figures = tmp_path / "results" / "tables", tmp_path / "results" / "figures"
    for kind, paths in (("perceptron", 6), ("transformer", 3)):
        points = pd.read_csv(tables / f"policy_frontier_{kind}_points.csv")
        epochs = {"perceptron": 4, "transformer": 2}[kind]
        on_paths = points[~points["path"].str.startswith(("online_", "conventional"))]
        assert len(on_paths) == paths * (epochs + 1)  # epochs 0..E of each path, seed 0
        assert set(points["path"]) >= {"conventional", "online_greedy", "online_positive",
                                       "online_softmax"}  # fmt: skip
        assert points["stationarity_gap"].ge(0).all() and points["objective"].gt(0).all()
        conventional = points[points["path"] == "conventional"].iloc[0]
        assert conventional["test_auc_ratio"] == 1.0
        assert conventional["test_acceleration_ratio"] == 1.0
        table = pd.read_csv(tables / f"policy_frontier_{kind}.csv").set_index("row")
        assert table.loc["lowest J", "objective_mean"] == pytest.approx(points["objective"].min())
        held_out = points.loc[points["validation_auc"].idxmin(), "test_auc"]
        assert table.loc["validation-selected", "test_auc_mean"] == pytest.approx(held_out)
        for name in (f"policy_frontier_{kind}", f"optimum_k_{kind}"):
            assert_drawn(figures / f"{name}.png")
        law = pd.read_csv(tables / f"optimum_learning_law_{kind}.csv")
        assert law["row"].tolist() == ["conventional", "validation: lowest J", "mirror: lowest J"]
        verdicts = pd.read_csv(tables / f"optimum_verdicts_{kind}.csv")
        assert verdicts["item"].tolist()[:3] == [
            "Figure 4", "Figure 5 (lowest J)", "Figure 5 (validation-selected)"
        ]  # fmt: skip
        assert len(verdicts) == 3 + 4 * 2  # Figures 6–7, 8, 9, 10 of each law path
        assert verdicts["verdict"].isin(VERDICTS).all()
    k = pd.read_csv(tables / "optimum_k_perceptron.csv")
    assert k["k"].tolist() == [64, 2048]
