"""Progress of long jobs: plain lines at most every `interval` seconds with the epoch, the phase,
the step and the ETA of the epoch and of the job; a bar only on a terminal."""

from __future__ import annotations

import io
import logging
import re

from pipeline import progress
from pipeline.config import run_settings, saved_epochs
from pipeline.jobs import training as jobs
from pipeline.progress import Progress, duration
from tests.conftest import fake_snakemake, merged_config


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_epoch(bar: Progress, clock: Clock, forward: float, adjoint: float) -> None:
    """One epoch of 10 forward steps of `forward` seconds and 10 adjoint ones of `adjoint`."""
    for _ in bar.track("forward", range(10)):
        clock.now += forward
    bar.start("adjoint")
    for _ in range(10):
        clock.now += adjoint
        bar.update()
    bar.end_epoch()


def progress_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pipeline.progress"]


def test_a_line_at_most_every_interval_with_phase_step_and_both_etas(caplog):
    caplog.set_level(logging.INFO)
    clock = Clock()
    bar = Progress("run", {"forward": 10, "adjoint": 10}, epochs=3, interval=30, clock=clock,
                   stream=io.StringIO())  # fmt: skip
    run_epoch(bar, clock, forward=1.0, adjoint=3.0)  # 40 s: forward 10 s, adjoint 30 s
    lines = progress_lines(caplog)
    assert (
        lines[0]
        == "run: 3 policy epochs of 10 forward + 10 adjoint steps; a progress line every 30s"
    )
    # The first line after 30 s: adjoint step 7 at t = 31 s; its pace (3 s) and nothing later.
    assert lines[1] == (
        "run: policy epoch 0/3, adjoint step 7/10; epoch ETA 9s, job ETA 1m29s"
    )  # job: 9 s + 2 more epochs of (31 + 9) s
    assert len(lines) == 2  # at most one line per 30 s
    bar.start("forward")  # epoch 1, from t = 40 s, at 6 s a step: the next line at step 4
    for _ in range(4):
        clock.now += 6.0
        bar.update()
    # epoch: 6 forward steps at this epoch's pace (6 s) + 10 adjoint ones at the last (3 s);
    # job: that + one more epoch of the mean duration so far (40 s).
    assert progress_lines(caplog)[-1] == (
        "run: policy epoch 1/3, forward step 4/10; epoch ETA 1m06s, job ETA 1m46s"
    )


def test_the_first_epoch_says_its_eta_is_not_known_until_every_phase_has_started(caplog):
    caplog.set_level(logging.INFO)
    clock = Clock()
    bar = Progress("run", {"forward": 10, "adjoint": 10}, epochs=2, interval=5, clock=clock,
                   stream=io.StringIO())  # fmt: skip
    for _ in bar.track("forward", range(10)):
        clock.now += 1.0
    assert progress_lines(caplog)[1] == (
        "run: policy epoch 0/2, forward step 5/10; epoch ETA ?, job ETA ?"
    )
    bar.start("adjoint")
    clock.now += 5.0
    bar.update()  # one adjoint step of 5 s: 9 more in this epoch, then one epoch of 60 s
    assert progress_lines(caplog)[-1] == (
        "run: policy epoch 0/2, adjoint step 1/10; epoch ETA 45s, job ETA 1m45s"
    )


def test_off_a_terminal_no_bar_is_drawn():
    stream = io.StringIO()
    bar = Progress("run", {"evaluate": 5}, stream=stream)
    for _ in bar.track("evaluate", range(5)):
        pass
    bar.close()
    assert stream.getvalue() == ""


def test_on_a_terminal_a_bar_with_the_phase_and_the_etas():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    clock, stream = Clock(), Terminal()
    bar = Progress("run", {"forward": 10, "adjoint": 10}, epochs=2, clock=clock, stream=stream)
    run_epoch(bar, clock, forward=1.0, adjoint=2.0)
    for _ in bar.track("forward", range(3)):
        clock.now += 1.0
    bar.close()
    drawn = stream.getvalue()
    assert "policy epoch 1/2, forward" in drawn and "job ETA" in drawn


def test_durations_read_as_hours_minutes_seconds():
    assert [duration(s) for s in (None, 4.4, 65, 3725)] == ["?", "4s", "1m05s", "1h02m"]


def test_the_optimisation_log_gets_clean_progress_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.0)  # a line at every step
    config = merged_config({"perceptron": {"train": {"steps": 6}, "policy": {"epochs": 2}}})
    data = {split: str(tmp_path / f"{split}.parquet") for split in ("train", "desired", "test")}
    jobs.perceptron_data(
        fake_snakemake(config, {}, data, {"settings": config["perceptron"]["data"], "seed": 0})
    )
    settings = run_settings(config, "perceptron")
    log = tmp_path / "optimize_policy.log"
    jobs.optimize_policy(
        fake_snakemake(
            config,
            {"data": list(data.values())},
            {"policies": str(tmp_path / "policies"), "history": str(tmp_path / "history.parquet")},
            {
                "settings": settings,
                "saved_epochs": saved_epochs(2, settings["policy"]["save_every"]),
                "resume_dir": str(tmp_path / "resume"),
                "seed": 0,
            },
            log=str(log),
        )
    )
    text = log.read_text()
    assert "\r" not in text
    assert (
        # 2 epochs that step and the last one's pass (its stationarity gap)
        "perceptron: 3 policy epochs of 6 forward + 6 adjoint steps; a progress line every 0s"
        in text
    )
    for epoch in (0, 1):
        for phase in ("forward", "adjoint"):
            assert re.search(
                rf"perceptron: policy epoch {epoch}/3, {phase} step 6/6; "
                r"epoch ETA (\d+s|\?), job ETA (\d+s|\?)",
                text,
            ), (epoch, phase, text)
