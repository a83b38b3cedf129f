"""`train.compile`: which jobs compile the Transformer, and a machine that cannot compile."""

import logging

import pytest
import torch

from pipeline.jobs import training
from pipeline.runtime import compile_unavailable

CPU = torch.device("cpu")


def settings(kind: str, mode: str) -> dict:
    return {"kind": kind, "train": {"compile": mode}}


@pytest.mark.parametrize(
    ("kind", "mode", "trains_many_runs", "expected"),
    [
        ("transformer", "policy", True, True),  # optimisation, online jobs
        ("transformer", "policy", False, False),  # a lone evaluation
        ("transformer", "always", False, True),
        ("transformer", "never", True, False),
        ("perceptron", "always", True, False),  # closed forms: nothing to compile
    ],
)
def test_which_jobs_compile(monkeypatch, kind, mode, trains_many_runs, expected):
    monkeypatch.setattr(training, "compile_unavailable", lambda device: None)
    assert training.compiles(settings(kind, mode), CPU, trains_many_runs) is expected


def test_a_machine_that_cannot_compile_runs_eagerly_and_says_why(monkeypatch, caplog):
    monkeypatch.setattr(training, "compile_unavailable", lambda device: "no C++ compiler on PATH")
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        assert training.compiles(settings("transformer", "policy"), CPU, True) is False
    assert "no C++ compiler on PATH" in caplog.text and "running eagerly" in caplog.text


def test_the_toolchain_check_names_what_is_missing(monkeypatch):
    monkeypatch.setenv("CXX", "")
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert "no C++ compiler" in compile_unavailable(CPU)
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr("sysconfig.get_paths", lambda: {"include": "/nonexistent"})
    assert "Python headers" in compile_unavailable(CPU)
