"""Run a training job in P processes: torchrun on one node, or SLURM tasks started by srun.

`launch` is what a training rule's script calls when its experiment asks for
`resources.processes` > 1. It writes the job's spec (plain JSON: settings, paths, seed) to a
scratch directory beside the job's outputs and starts P copies of `python -m pipeline.launch`:

- inside a SLURM allocation (SLURM_JOB_ID set and srun present: a job of profiles/slurm, which
  asks for P tasks), as P SLURM tasks by `srun`; the processes meet at this host (MASTER_ADDR,
  a free MASTER_PORT), which is the first node of the allocation, where task 0 runs;
- elsewhere by torchrun (`python -m torch.distributed.run --standalone`) on this machine.

Each process joins the process group (pipeline/distributed.py: NCCL on GPUs, gloo on CPUs),
runs the job's entry function on its share of the examples, and the first process writes every
output and the rule's log. If a process fails, the launcher (torchrun, or srun with
--kill-on-bad-exit) stops the others; `launch` then deletes the job's outputs and raises an
error naming the process that died first (from the launcher's report: torchrun's root cause,
srun's first task error) and how, by its exception or by the signal that killed it, which it
also appends to the rule's log.
"""

from __future__ import annotations

import collections
import importlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from pipeline.runtime import (
    WAIT_POLICY,
    job,
    resolve_device,
    set_thread_environment,
    thread_environment,
)

log = logging.getLogger("pipeline.launch")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def in_slurm_allocation() -> bool:
    """True inside a SLURM job whose srun can start the processes as tasks."""
    return "SLURM_JOB_ID" in os.environ and shutil.which("srun") is not None


def free_port() -> int:
    """A TCP port free on this host now (for the processes' rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def launch_command(processes: int, threads: int, gpus: bool, workdir: Path) -> list[str]:
    """The command that starts the P processes, each running `python -m pipeline.launch`."""
    worker = [sys.executable, "-m", "pipeline.launch", str(workdir)]
    if in_slurm_allocation():
        return [
            "srun",
            f"--ntasks={processes}",
            f"--cpus-per-task={threads}",
            *(["--gpus-per-task=1"] if gpus else []),
            "--kill-on-bad-exit=1",
            "--export=ALL",
            *worker,
        ]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "--max-restarts=0",
        *worker[1:],
    ]


def launch(
    entry: str,
    spec: dict,
    processes: int,
    threads: int,
    gpus: bool,
    outputs: list[str],
    log_path: str | None,
) -> None:
    """Run `entry` ("module:function", called with the spec) in `processes` processes of
    `threads` threads each (and one GPU each if `gpus`); raise naming the first failure."""
    scratch = Path(outputs[0]).parent
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".launch-", dir=scratch))
    try:
        (workdir / "errors").mkdir()
        job_spec = {**spec, "entry": entry, "threads": threads, "log": log_path}
        (workdir / "spec.json").write_text(json.dumps(job_spec, indent=1))
        command = launch_command(processes, threads, gpus, workdir)
        env = {
            **os.environ,
            # the package for every process, wherever it starts
            "PYTHONPATH": os.pathsep.join(
                [str(PACKAGE_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(":"))]
            ),
            **thread_environment(threads, spec.get("wait_policy", WAIT_POLICY)),
        }
        if command[0] == "srun":
            env.update(MASTER_ADDR=socket.gethostname(), MASTER_PORT=str(free_port()))
        log.info("starting %d processes: %s", processes, shlex.join(command))
        start = time.perf_counter()
        returncode, launcher_lines = run_teeing_stderr(command, env)
        if returncode != 0:
            for output in map(Path, outputs):
                if output.is_dir():
                    shutil.rmtree(output)
                else:
                    output.unlink(missing_ok=True)
            message = failure_message(
                workdir / "errors", processes, command, returncode, first_death(launcher_lines)
            )
            if log_path:
                with open(log_path, "a") as handle:
                    handle.write(f"\n{message}\n")
            raise RuntimeError(message)
        log.info("%d processes done in %.1f s", processes, time.perf_counter() - start)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_teeing_stderr(command: list[str], env: dict) -> tuple[int, list[str]]:
    """Run the launcher, its stderr passed on line by line (to the job's log) and its last
    lines kept: torchrun and srun say there which process died first and how."""
    kept: collections.deque[str] = collections.deque(maxlen=400)
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            kept.append(line)
        sys.stderr.flush()
    return process.returncode, list(kept)


_TORCHRUN_RANK = re.compile(r"^\s*rank\s*:\s*(\d+)")
_TORCHRUN_EXIT = re.compile(r"^\s*exitcode\s*:\s*(-?\d+)")
_SRUN_TASK = re.compile(r"srun: error: .*?task (\d+): (.+)$")


def first_death(lines: list[str]) -> tuple[int, str] | None:
    """(rank, how) of the process that failed first, from the launcher's report: torchrun's
    "Root Cause (first observed failure)" (exit code, or the signal that killed it), or srun's
    first "task N: ..." error line; None if the lines do not say."""
    if any("Root Cause" in line for line in lines):
        start = max(i for i, line in enumerate(lines) if "Root Cause" in line)
        rank = code = None
        for line in lines[start:]:
            rank = rank if rank is not None else _match_int(_TORCHRUN_RANK, line)
            code = code if code is not None else _match_int(_TORCHRUN_EXIT, line)
        # torchrun orders failures by the time it saw them, which under load can put a survivor's
        # echo ("Connection reset by peer") first; a process killed by a signal other than the
        # SIGTERM torchrun stops workers with did not fail because of another: it died first.
        killed = [
            (rank, code) for rank, code in _torchrun_failures(lines) if code < 0 and code != -15
        ]
        if killed:
            rank, code = killed[0]
        if rank is not None and code is not None:
            return rank, _exit_description(code)
    for line in lines:
        found = _SRUN_TASK.search(line.strip())
        if found:
            return int(found[1]), found[2].strip()
    return None


def _torchrun_failures(lines: list[str]) -> list[tuple[int, int]]:
    """(rank, exit code) of every failure torchrun's report lists, in its order."""
    out, rank = [], None
    for line in lines:
        rank = _match_int(_TORCHRUN_RANK, line) if rank is None else rank
        code = _match_int(_TORCHRUN_EXIT, line)
        if rank is not None and code is not None:
            out.append((rank, code))
            rank = None
    return out


def _match_int(pattern: re.Pattern, line: str) -> int | None:
    found = pattern.match(line)
    return int(found[1]) if found else None


def _exit_description(code: int) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "an unknown signal"
        return f"killed by signal {-code} ({name})"
    return f"exit code {code}"


def failure_message(
    errors: Path,
    processes: int,
    command: list[str],
    code: int,
    first: tuple[int, str] | None = None,
) -> str:
    """What failed: the process that died first and how (`first`, from the launcher), with its
    exception if it raised one; otherwise the first exception that is not a consequence of
    another process's failure."""
    reports = [json.loads(p.read_text()) for p in sorted(errors.glob("rank*.json"))]
    # A process whose peer died fails in a collective: report the cause, not the echo.
    reports.sort(key=lambda r: (r["collective"], r["time"]))
    launcher = command[0] if command[0] == "srun" else "torchrun"
    reported = {r["rank"]: r for r in reports}
    if first is not None and first[0] not in reported:  # died without a Python error
        rank, how = first
        others = sorted(reported)
        after = f"; processes {others} failed after it" if others else ""
        echo = f" (process {others[0]}: {reported[others[0]]['error']})" if others else ""
        return (
            f"process {rank} of {processes} died first: {how}, without a Python error (out of "
            f"memory? a time limit? kill -9?){after}{echo}. The job's outputs were removed; "
            f"{launcher}'s report is above."
        )
    if first is not None:  # the launcher saw it fail first; an error outside a collective
        # still comes before it (under load the launcher may see a survivor's echo first)
        reports.sort(key=lambda r: (r["collective"], r["rank"] != first[0]))
    if not reports:
        return (
            f"{processes} processes under {launcher} failed (exit code {code}) without a Python "
            "error: a process was killed (out of memory? time limit?); its output is above"
        )
    first = reports[0]
    others = [r["rank"] for r in reports[1:]]
    also = f"; processes {others} failed after it" if others else ""
    return (
        f"process {first['rank']} of {processes} failed: {first['error']}{also}. "
        f"The job's outputs were removed.\n{first['traceback']}"
    )


# -- the worker: one of the P processes -------------------------------------------------------
def _resolve(entry: str):
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)


def _report(errors: Path, err: BaseException) -> None:
    # here, not at the top: the worker sets the thread environment before torch loads
    import torch.distributed as dist

    from pipeline.distributed import launched_environment

    index = (launched_environment() or (0, 1, 0))[0]
    peer_lost = ("Connection closed by peer", "Connection reset by peer", "NCCL communicator")
    collective = isinstance(err, getattr(dist, "DistError", ())) or any(
        text in str(err) for text in peer_lost
    )
    report = {
        "rank": index,
        "time": time.time(),
        "collective": collective,
        "error": f"{type(err).__name__}: {err}",
        "traceback": "".join(traceback.format_exception(err)[-6:]),
    }
    (errors / f"rank{index}.json").write_text(json.dumps(report))


def worker(workdir: Path) -> None:
    """Join the process group and run the job's entry function on this process's share."""
    spec = json.loads((workdir / "spec.json").read_text())
    # before torch loads (pipeline.distributed): OpenMP reads its wait policy once, at start-up
    set_thread_environment(spec["threads"], spec.get("wait_policy", WAIT_POLICY))
    from pipeline.distributed import (
        backend,
        barrier,
        destroy_process_group,
        init_process_group,
        is_main,
        world_size,
    )

    try:
        device = init_process_group(resolve_device(spec["device"]))
        spec["device"] = str(device)
        log_path = spec["log"] if is_main() else None
        wait_policy = spec.get("wait_policy", WAIT_POLICY)
        with job(log_path, spec["threads"], uses_torch=True, wait_policy=wait_policy):
            if not is_main():  # the first process logs for all
                logging.getLogger().setLevel(logging.WARNING)
            log.info(
                "%d processes started by %s, %s backend, this one on %s",
                world_size(),
                "torchrun" if "RANK" in os.environ else "srun",
                backend(),
                socket.gethostname(),
            )
            _resolve(spec["entry"])(spec)
    except BaseException as err:
        _report(workdir / "errors", err)
        logging.getLogger("pipeline").error("process failed: %s", err)
        sys.stderr.flush()
        os._exit(1)  # at once: peers blocked in a collective are stopped by the launcher
    # Leave together, then skip the interpreter's finalization: a CI run saw a process that had
    # finished its job killed by SIGABRT ("terminate called without an active exception", a C++
    # thread of torch or gloo still joinable when static objects are destroyed at exit), which
    # failed a job whose outputs were complete. Every output is closed by now; logs are flushed.
    barrier()
    destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
