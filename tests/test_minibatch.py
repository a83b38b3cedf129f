"""Minibatch AdamW with online weighting (`minibatch_online`, pipeline/policy/minibatch.py):
the batch weights and the top-b selection on hand-made contributions, the schedule and the
batches, a conventional run against torch.optim.AdamW bit for bit, τ chosen without the test
set, and the target end to end at the smoke size."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline.config import ConfigError, minibatch_runs, validate_config
from pipeline.experiment import Run
from pipeline.models.transformer import Transformer, TransformerShape
from pipeline.policy.minibatch import (
    batch_weights,
    choose_value,
    offline_pool,
    run_policy,
    select_weighting,
    top_b,
    training_pool,
)
from pipeline.policy.online import held_out_run
from pipeline.training.minibatch import (
    AdamWSchedule,
    learning_rate,
    sample_batches,
    train_minibatch,
    uniform_weighting,
)
from tests.conftest import SMOKE, assert_drawn, merged_config, snakemake

VOCAB, SEQ = 24, 8
BLOCK = {"steps": 12, "batch_size": 4, "candidate_batch": [8, 16], "desired_batch": None,
         "lr": 1e-2, "warmup": 3,
         "min_lr_fraction": 0.1, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.95, "eval_every": 4,
         "tau_grid": {"online_greedy": [1.0, 100.0], "online_softmax": [1e-3, 1.0]}}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _tokens(n: int, generator: torch.Generator) -> dict:
    return {"tokens": torch.randint(3, VOCAB, (n, SEQ), generator=generator)}


def _toy_run(test: dict | None = None) -> Run:
    """A one-layer Transformer on random tokens: N = 32, 12 desired of which 4 held out."""
    g = torch.Generator().manual_seed(0)
    shape = TransformerShape(vocab_size=VOCAB, seq_len=SEQ, n_layer=1, n_embd=8, n_head=2,
                             ffn_mult=2, pad_id=0, attention_scale="hidden",
                             norm="rmsnorm_bias")  # fmt: skip
    model = Transformer(shape, chunk_size=None, device="cpu", init="pytorch")
    train, desired, validation = _tokens(32, g), _tokens(8, g), _tokens(4, g)
    settings = {"name": "toy", "kind": "transformer", "train": {"eta": 0.1, "steps": 12}}
    return Run(settings, model, train, desired, test or _tokens(8, g), torch.device("cpu"),
               torch.float32, validation=validation)  # fmt: skip


def _theta0(run: Run) -> torch.Tensor:
    return run.model.init_params(torch.Generator().manual_seed(0))


# --- hand-made contributions ----------------------------------------------------------------


def test_batch_weights_follow_the_online_rules_on_hand_made_contributions():
    ct = torch.tensor([0.3, -0.1, 0.0, 0.2], dtype=torch.float64)
    # Π_Δ(1/4 + CT): 1/4 + CT sums to 1.4, every entry stays positive after subtracting 0.1
    greedy = batch_weights("online_greedy", ct, 1.0)
    assert torch.allclose(greedy, torch.tensor([0.45, 0.05, 0.15, 0.35], dtype=torch.float64))
    # a large τ puts everything on the best example
    assert torch.equal(
        batch_weights("online_greedy", ct, 1e6), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)
    )
    positive = batch_weights("online_positive", ct, None)
    assert torch.allclose(positive, torch.tensor([0.6, 0.0, 0.0, 0.4], dtype=torch.float64))
    none_positive = batch_weights("online_positive", -ct.abs(), None)
    assert torch.equal(none_positive, torch.full((4,), 0.25, dtype=torch.float64))
    softmax = batch_weights("online_softmax", ct, 0.1)
    expected = torch.exp(ct / 0.1) / torch.exp(ct / 0.1).sum()
    assert torch.allclose(softmax, expected)
    for weights in (greedy, positive, softmax):
        assert math.isclose(float(weights.sum()), 1.0, rel_tol=1e-12)


def test_top_b_keeps_the_highest_contributions_the_earlier_of_equals_first():
    ct = torch.tensor([0.1, 0.5, -0.2, 0.5, 0.3])
    assert top_b(ct, 3).tolist() == [1, 3, 4]
    assert top_b(ct, 1).tolist() == [1]
    assert sorted(top_b(ct, 5).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch_size"):
        top_b(ct, 6)


def test_offline_selection_keeps_the_examples_the_policy_weighs_most():
    scores = torch.tensor([0.05, 0.30, 0.0, 0.25, 0.30, 0.10])
    assert offline_pool(scores, 0.5).tolist() == [1, 3, 4]  # in index order
    assert offline_pool(scores, 1 / 6).tolist() == [1]  # the earlier of equals
    assert offline_pool(scores, 1.0).tolist() == list(range(6))


def test_selection_keeps_the_candidates_whose_contribution_is_highest():
    """`online_select` on a real run: the b chosen candidates are those of the highest CT, by
    the same JVP, each weighted 1/b."""
    from pipeline.policy.minibatch import desired_contributions

    run = _toy_run()
    theta = _theta0(run)
    candidates = torch.tensor([5, 9, 0, 17, 30, 2, 11, 23])
    chosen, weights = select_weighting(run, 3, lambda: run.desired)(theta, candidates)
    ct = desired_contributions(run, theta, candidates, run.desired)
    best = candidates[torch.argsort(ct, descending=True)[:3]]
    assert chosen.tolist() == best.tolist()
    assert torch.equal(weights, torch.full((3,), 1 / 3))


def test_a_desired_batch_draws_its_desired_examples_anew_each_step_from_the_seed():
    """`desired_batch`: each step's CT from that many desired examples, a seeded draw; all K of
    them give the whole set's CT (up to the order of the sum); fewer cost fewer FLOPs."""
    from pipeline.policy.minibatch import desired_contributions, desired_sampler, step_flops

    run = _toy_run()
    draws = desired_sampler(run, 3, seed=5)
    first, second = draws()["tokens"], draws()["tokens"]
    assert first.shape[0] == second.shape[0] == 3
    assert not torch.equal(first, second)  # a new draw each step
    again = desired_sampler(run, 3, seed=5)
    assert torch.equal(again()["tokens"], first) and torch.equal(again()["tokens"], second)
    assert desired_sampler(run, None, seed=5)() is run.desired

    theta, candidates = _theta0(run), torch.arange(6)
    every = desired_contributions(run, theta, candidates, desired_sampler(run, 8, seed=1)())
    whole = desired_contributions(run, theta, candidates, run.desired)
    assert torch.allclose(every, whole, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="desired_batch"):
        desired_sampler(run, 9, seed=0)

    perturbed = torch.zeros(32, dtype=torch.bool)
    full = step_flops(run, theta, "online_greedy", 1.0, {**BLOCK, "desired_batch": None}, perturbed)
    small = step_flops(run, theta, "online_greedy", 1.0, {**BLOCK, "desired_batch": 2}, perturbed)
    assert small < full


# --- schedule and batches -------------------------------------------------------------------


def test_learning_rate_warms_up_linearly_then_decays_along_a_cosine_to_the_floor():
    schedule = AdamWSchedule(steps=100, lr=1e-3, warmup=10, min_lr_fraction=0.1,
                             weight_decay=0.0, betas=(0.9, 0.95))  # fmt: skip
    rates = [learning_rate(t, schedule) for t in range(100)]
    assert rates[:10] == pytest.approx([1e-3 * (t + 1) / 10 for t in range(10)])
    assert rates[10] == pytest.approx(1e-3) and rates[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[55] == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * 45 / 89)) * 9e-4)


def test_batches_are_seeded_without_repeats_and_cover_each_epoch():
    pool = torch.arange(20)
    batches = sample_batches(pool, 6, 9, seed=3)
    assert batches.shape == (9, 6)
    assert torch.equal(batches, sample_batches(pool, 6, 9, seed=3))
    assert not torch.equal(batches, sample_batches(pool, 6, 9, seed=4))
    assert all(b.unique().numel() == 6 for b in batches)
    epoch = batches[:3].flatten()  # 3 batches of 6 per epoch of 20, two left out
    assert epoch.unique().numel() == 18
    clean = training_pool("clean_only", torch.tensor([True, False, False, True, False]))
    assert clean.tolist() == [1, 2, 4]
    assert set(sample_batches(clean, 2, 5, seed=0).flatten().tolist()) <= {1, 2, 4}
    with pytest.raises(ValueError, match="batch_size"):
        sample_batches(clean, 4, 1, seed=0)


# --- AdamW ----------------------------------------------------------------------------------


def test_a_conventional_run_equals_torch_adamw_on_the_same_batches_bit_for_bit():
    run = _toy_run()
    theta0 = _theta0(run)
    schedule = AdamWSchedule.from_settings(BLOCK)
    batches = sample_batches(torch.arange(32), 4, schedule.steps, seed=0)
    perturbed = torch.zeros(32, dtype=torch.bool)
    curve, theta = train_minibatch(run, theta0, uniform_weighting(), schedule, batches,
                                   BLOCK["eval_every"], perturbed)  # fmt: skip

    reference = theta0.clone().requires_grad_()
    optimizer = torch.optim.AdamW([reference], lr=schedule.lr, betas=schedule.betas,
                                  weight_decay=schedule.weight_decay)  # fmt: skip
    test_losses = []
    for t in range(schedule.steps):
        if t % BLOCK["eval_every"] == 0:
            test_losses.append(float(run.model.mean_loss(reference.detach(), run.test)))
        optimizer.param_groups[0]["lr"] = learning_rate(t, schedule)
        optimizer.zero_grad()
        run.model.losses(reference, {"tokens": run.train["tokens"][batches[t]]}).mean().backward()
        optimizer.step()
    test_losses.append(float(run.model.mean_loss(reference.detach(), run.test)))

    assert torch.equal(theta, reference.detach())
    assert curve["test_loss"].dropna().tolist() == test_losses
    assert not torch.equal(theta, theta0)  # it trained
    assert (curve["perturbed_share"].dropna() == 0).all()


def test_the_perturbed_share_is_the_weight_the_batch_gives_perturbed_examples():
    run = _toy_run()
    perturbed = torch.arange(32) % 2 == 0
    schedule = AdamWSchedule.from_settings({**BLOCK, "steps": 3})
    batches = sample_batches(torch.arange(32), 4, 3, seed=1)
    curve, _ = train_minibatch(run, _theta0(run), uniform_weighting(), schedule, batches, 4,
                               perturbed)  # fmt: skip
    expected = [float(perturbed[b].float().mean()) for b in batches]
    assert curve["perturbed_share"].iloc[:3].tolist() == pytest.approx(expected)


# --- the choice on the held-out desired examples --------------------------------------------


@pytest.mark.parametrize("policy", ["online_greedy", "online_select"])
def test_the_choice_never_reads_the_test_set(policy):
    """Flipped or blanked test tokens: the same τ (or B) and the same held-out losses."""
    run = _toy_run()
    theta0 = _theta0(run)
    perturbed = torch.arange(32) % 2 == 0
    chosen = choose_value(held_out_run(run), theta0, policy, BLOCK, 0, perturbed)
    flipped = {"tokens": VOCAB + 2 - run.test["tokens"]}
    blank = {"tokens": torch.full_like(run.test["tokens"], 3)}
    for test in (flipped, blank):
        again = choose_value(held_out_run(dataclasses.replace(run, test=test)), theta0, policy,
                             BLOCK, 0, perturbed)  # fmt: skip
        assert again["value"] == chosen["value"]
        assert again["held_out_loss"] == chosen["held_out_loss"]
    assert len(set(chosen["held_out_loss"])) == 2  # the candidates differ: a real choice


def test_run_policy_draws_candidate_batches_for_the_selection():
    run = _toy_run()
    perturbed = torch.arange(32) < 16
    curve = run_policy(run, _theta0(run), "online_select", 8, BLOCK, 0, perturbed)
    assert len(curve) == BLOCK["steps"] + 1
    assert curve["perturbed_share"].iloc[:-1].between(0, 1).all()
    clean = run_policy(run, _theta0(run), "clean_only", None, BLOCK, 0, perturbed)
    assert (clean["perturbed_share"].dropna() == 0).all()


# --- the table -------------------------------------------------------------------------------


def _curve(test_losses: list[float], share: float, step_flops: int) -> pd.DataFrame:
    """A hand-made curve of 12 steps evaluated every 4, with its FLOPs to each step (steps int32
    and FLOPs int64, as the runs write them)."""
    test = [math.nan] * 13
    for i, loss in enumerate(test_losses):
        test[4 * i] = loss
    steps = np.arange(13, dtype=np.int32)
    return pd.DataFrame({"step": steps, "test_loss": test,
                         "perturbed_share": [share] * 12 + [math.nan],
                         "flops": steps.astype(np.int64) * step_flops})  # fmt: skip


def test_the_table_counts_the_acceleration_in_steps_and_in_flops():
    """AR in steps on the evaluation grid, at equal FLOPs scaled by the FLOPs per step; CR on
    the evaluated test losses; shares averaged over the steps; mean ± sd over seeds."""
    from pipeline.analysis.minibatch import mean_curves, policy_table, runs_table

    def costs(flops: int, value=None, grid=()):
        return {"step_flops": flops, "value": value, "grid": list(grid), "run_seconds": 1.0,
                "selection_seconds": 0.0}  # fmt: skip

    runs = {
        seed: {
            # FLOPs per step beyond int32 (12 steps of the laptop's online_select: 1.0e11)
            "conventional": (_curve([3.0, 2.5, 2.2, 2.0], 0.5, 10**10), costs(10**10)),
            # reaches the conventional final 2.0 at the 2nd evaluation (step 8) instead of 12
            "online_greedy": (_curve([3.0, 2.2, 2.0 - seed / 10, 1.9], 0.1 * (seed + 1),
                                     3 * 10**10),
                              costs(3 * 10**10, 10.0, [1.0, 10.0])),
        }
        for seed in (0, 1)
    }  # fmt: skip
    per_run = runs_table(runs, log_vocab=math.log(16))
    greedy = per_run[per_run["policy"] == "online_greedy"].reset_index(drop=True)
    assert greedy["test_ar"].tolist() == [1.5, 1.5]
    assert greedy["test_ar_flops"].tolist() == pytest.approx([0.5, 0.5])
    assert greedy["test_cr"][0] == pytest.approx(math.log(16) / ((2.2 + 2.0 + 1.9) / 3))
    assert greedy["perturbed_share"].tolist() == pytest.approx([0.1, 0.2])
    assert bool(greedy["value_at_grid_end"][0])
    numbers, shown = policy_table(per_run, ["conventional", "online_greedy"])
    assert numbers["test_ar_mean"].tolist() == [1.0, 1.5]
    assert numbers.loc[1, "perturbed_share_sd"] == pytest.approx(math.sqrt(0.005))
    assert shown.loc[1, "τ or B per seed"] == "10*, 10*"
    curves = mean_curves(runs)
    last = curves[(curves["policy"] == "online_greedy") & (curves["step"] == 12)].iloc[0]
    assert last["flops"] == 12 * 3 * 10**10 and last["test_loss"] == pytest.approx(1.9)


# --- configuration --------------------------------------------------------------------------


def test_minibatch_runs_are_the_online_comparisons_transformer_runs():
    from pipeline.config import offline_selection_run, run_settings

    block = {"seeds": [0, 3], "references": ["clean_only", "offline_selection"]}
    config = merged_config({"minibatch_online": block})
    validate_config(config)
    assert minibatch_runs(config) == [(0, "transformer"), (3, "transformer-s3")]
    scores = offline_selection_run(config, 3)
    assert scores == "transformer-time_independent-s3"
    settings = run_settings(config, scores)  # in the registry: the scores' run is asked for
    assert settings["policy"]["form"] == "time_independent"
    assert settings["data_name"] == run_settings(config, "transformer-s3")["data_name"]


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"eval_every": 7}, "minibatch_online.eval_every"),
        ({"candidate_batch": [8]}, "minibatch_online.candidate_batch"),
        ({"batch_size": 40}, "minibatch_online.batch_size"),
        ({"warmup": 30}, "minibatch_online.warmup"),
        ({"desired_batch": 1000}, "minibatch_online.desired_batch"),
        (
            {"references": ["offline_selection"], "offline_fraction": 0.1},
            "minibatch_online.batch_size",
        ),
    ],
)
def test_bad_minibatch_settings_are_refused_by_name(change, setting):
    config = merged_config({"minibatch_online": change})
    with pytest.raises(ConfigError, match=setting.replace(".", r"\.")):
        validate_config(config)


# --- end to end -----------------------------------------------------------------------------


def test_the_smoke_target_writes_its_table_and_figure(tmp_path, stories_path):
    """Every policy and both references (offline_selection's time-independent policy optimised
    at the smoke size first)."""
    overlay = tmp_path / "stories.yaml"
    stories = {"data": {"local_files": [str(stories_path)]}}
    references = {"references": ["clean_only", "offline_selection"]}
    overlay.write_text(yaml.safe_dump({"transformer": stories, "minibatch_online": references}))
    snakemake(tmp_path, "minibatch_online", "--configfile", SMOKE, str(overlay))
    results = tmp_path / "results"
    table = pd.read_csv(results / "tables" / "minibatch_online.csv")
    expected = ["conventional", "online_greedy", "online_positive", "online_softmax",
                "online_select", "clean_only", "offline_selection"]  # fmt: skip
    assert table["policy"].tolist() == expected
    conventional = table.set_index("policy").loc["conventional"]
    assert conventional["test_ar_mean"] == 1 and conventional["step_flops_ratio_mean"] == 1
    online = table.set_index("policy").loc["online_greedy"]
    assert online["step_flops_ratio_mean"] > 1  # the desired gradient and the JVP are counted
    runs = pd.read_csv(results / "tables" / "minibatch_online_runs.csv")
    assert runs["test_ar"].notna().all() and runs["test_cr"].gt(0).all()
    assert "test AR (equal FLOPs)" in (results / "tables" / "minibatch_online.md").read_text()
    for ext in ("pdf", "png"):
        assert_drawn(results / "figures" / f"minibatch_online.{ext}")


def test_the_defaults_sweep_calls_a_plateau_only_a_flat_curve_that_has_not_over_fitted():
    from pipeline.bench.minibatch_sweep import plateaus

    steps = [0, 20, 40, 60, 80]
    flat = pd.DataFrame({"step": steps, "test_loss": [6.0, 4.0, 3.70, 3.695, 3.698]})
    falling = pd.DataFrame({"step": steps, "test_loss": [6.0, 5.0, 4.5, 4.2, 4.0]})
    over_fitted = pd.DataFrame({"step": steps, "test_loss": [6.0, 3.7, 3.9, 4.1, 4.11]})
    assert plateaus(flat, 0.01)
    assert not plateaus(falling, 0.01)  # its lowest is its last, but it still falls
    assert not plateaus(over_fitted, 0.01)  # flat at the end, far above its lowest
