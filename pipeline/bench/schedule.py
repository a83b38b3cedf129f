"""The schedule of one Snakemake run, read from its log: which job ran when, per rule how long.

`python -m pipeline.bench.schedule [LOG] --out results/bench/schedule` reads the log a
`snakemake` invocation writes (`.snakemake/log/<timestamp>.snakemake.log`; by default the newest
one that started a job) and writes

- `schedule.csv`: one row per job (jobid, rule, wildcards, first output, start, end, wall
  seconds, status: done, failed or unfinished);
- `schedule.md`: the run's wall time, the cores kept busy, the per-rule breakdown, the longest
  jobs;
- `schedule.{png,pdf}`: a Gantt chart, one bar per job in order of start, coloured by rule.

Snakemake stamps each job's start (`[<asctime>]` then `rule|localrule|checkpoint <name>:` or
`Job <id>: <message>`) and its end (`Finished jobid: <id> (Rule: <name>)`, or `Error in rule
<name>:` with the job's id) to the second, in the machine's local time. A job that started and
neither finished nor failed (the run was interrupted, or is still running) is kept, with no end,
as `unfinished`.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from pipeline.analysis.tables import markdown_table
from pipeline.plots.style import new_figure, save_figure

TIMESTAMP = re.compile(r"^\s*\[(\w{3} \w{3} +\d{1,2} \d\d:\d\d:\d\d \d{4})\]\s*$")
JOB_START = re.compile(r"^\s*(local)?(rule|checkpoint) (\S+):\s*$")
JOB_MESSAGE = re.compile(r"^\s*Job (\d+): ")
JOB_FIELD = re.compile(r"^\s+(\w+): (.*)$")
FINISHED = re.compile(r"^\s*Finished (?:jobid: (\d+) \(Rule: (\S+)\)|job (\d+)\.)")
ERROR = re.compile(r"^\s*Error in rule (\S+):\s*$")
LONGEST_LABELLED = 15
COLUMNS = [
    "jobid",
    "rule",
    "local",
    "wildcards",
    "output",
    "start",
    "end",
    "wall_s",
    "status",
]


class ScheduleError(ValueError):
    """A log that cannot give a schedule (missing, or no job in it)."""


@dataclass
class _Job:
    """One job as the log tells it, filled in line by line."""

    rule: str
    local: bool
    start: datetime
    jobid: int | None = None
    wildcards: str = ""
    output: str = ""
    end: datetime | None = None
    status: str = "unfinished"
    fields: dict[str, str] = field(default_factory=dict)


def _time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%a %b %d %H:%M:%S %Y")


def parse_log(text: str) -> pd.DataFrame:
    """The jobs of one Snakemake log, in order of start: `COLUMNS` (start and end as
    timestamps, end NaT and wall_s NaN for an unfinished job). A job that is retried appears
    once per attempt."""
    jobs: list[_Job] = []
    running: dict[int, _Job] = {}
    stamp: datetime | None = None  # the timestamp line just before, if the previous line was one
    current: _Job | None = None  # the job whose indented fields are being read
    error_rule: str | None = None  # an `Error in rule` block whose jobid is still to come
    error_time: datetime | None = None
    for line in text.splitlines():
        if current is not None or error_rule is not None:
            match = JOB_FIELD.match(line)
            if match:
                key, value = match.groups()
                if current is not None:
                    _set_field(current, key, value, running)
                elif key == "jobid":
                    job = running.pop(int(value), None)
                    if job is not None:
                        job.end, job.status = error_time, "failed"
                    error_rule = None
                continue
            current = error_rule = None
        if match := TIMESTAMP.match(line):
            stamp = _time(match[1])
            continue
        if stamp is not None:
            if match := JOB_START.match(line):
                current = _Job(rule=match[3], local=bool(match[1]), start=stamp)
                jobs.append(current)
            elif match := JOB_MESSAGE.match(line):
                # a rule with a `message:` names no rule here; `Finished` will
                current = _Job(rule="", local=False, start=stamp)
                _set_field(current, "jobid", match[1], running)
                jobs.append(current)
                current = None
            elif match := FINISHED.match(line):
                jobid = int(match[1] or match[3])
                job = running.pop(jobid, None)
                if job is not None:
                    job.end, job.status = stamp, "done"
                    job.rule = job.rule or (match[2] or "")
            elif match := ERROR.match(line):
                error_rule, error_time = match[1], stamp
        stamp = None
    rows = [
        {
            "jobid": job.jobid,
            "rule": job.rule or "?",
            "local": job.local,
            "wildcards": job.wildcards,
            "output": job.output,
            "start": pd.Timestamp(job.start),
            "end": pd.Timestamp(job.end) if job.end else pd.NaT,
            "wall_s": (job.end - job.start).total_seconds() if job.end else math.nan,
            "status": job.status,
        }
        for job in jobs
        if job.jobid is not None
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["start"] = pd.to_datetime(frame["start"])
    frame["end"] = pd.to_datetime(frame["end"])
    return frame.sort_values(["start", "jobid"], kind="stable").reset_index(drop=True)


def _set_field(job: _Job, key: str, value: str, running: dict[int, _Job]) -> None:
    job.fields[key] = value
    if key == "jobid":
        job.jobid = int(value)
        running[job.jobid] = job
    elif key == "wildcards":
        job.wildcards = value
    elif key == "output":
        job.output = value.split(", ")[0]


def label(job: pd.Series) -> str:
    """What tells a job from the others of its rule: its wildcards, else its first output."""
    return str(job["wildcards"] or job["output"] or f"job {job['jobid']}")


def summary(jobs: pd.DataFrame) -> dict:
    """The run as a whole: its wall time (first start to last end), the jobs' wall times summed,
    the mean number of jobs running (sum / wall: the cores kept busy), and the jobs per status.
    """
    finished = jobs[jobs["end"].notna()]
    wall = (
        (finished["end"].max() - jobs["start"].min()).total_seconds() if len(finished) else math.nan
    )
    busy = float(finished["wall_s"].sum())
    return {
        "start": jobs["start"].min(),
        "end": finished["end"].max() if len(finished) else pd.NaT,
        "wall_s": wall,
        "jobs_wall_s": busy,
        "busy_cores": busy / wall if wall > 0 else math.nan,
        "jobs": len(jobs),
        "done": int((jobs["status"] == "done").sum()),
        "failed": int((jobs["status"] == "failed").sum()),
        "unfinished": int((jobs["status"] == "unfinished").sum()),
    }


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, unfinished jobs, wall seconds summed over its finished jobs, the longest
    job and its label, the share of the run's wall time (rules run side by side, so the shares
    sum to the busy cores) and of the jobs' summed wall time; longest total first."""
    run = summary(jobs)
    rows = []
    for rule, group in jobs.groupby("rule", sort=False):
        finished = group[group["wall_s"].notna()]
        longest = finished.loc[finished["wall_s"].idxmax()] if len(finished) else None
        total = float(finished["wall_s"].sum())
        rows.append(
            {
                "rule": rule,
                "jobs": len(group),
                "unfinished": int((group["status"] == "unfinished").sum()),
                "wall_s": total,
                "longest_s": float(longest["wall_s"]) if longest is not None else math.nan,
                "longest_job": label(longest) if longest is not None else "",
                "share_of_run": total / run["wall_s"] if run["wall_s"] > 0 else math.nan,
                "share_of_jobs": total / run["jobs_wall_s"] if run["jobs_wall_s"] > 0 else math.nan,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["wall_s", "rule"], ascending=[False, True]).reset_index(drop=True)


def duration(seconds: float) -> str:
    """Seconds as `1 h 02 min 03 s`, `4 min 05 s` or `6 s`; `–` for NaN."""
    if not math.isfinite(seconds):
        return "–"
    s = round(seconds)
    h, m, s = s // 3600, s // 60 % 60, s % 60
    if h:
        return f"{h} h {m:02d} min {s:02d} s"
    return f"{m} min {s:02d} s" if m else f"{s} s"


def busy(run: dict) -> str:
    """The mean number of jobs running, two decimals (`–` if no job finished)."""
    return f"{run['busy_cores']:.2f}" if math.isfinite(run["busy_cores"]) else "–"


def percent(share: float) -> str:
    return f"{share:.1%}" if math.isfinite(share) else "–"


def markdown(jobs: pd.DataFrame, log: str, longest: int = 10) -> str:
    """schedule.md: the run's wall time and busy cores, the per-rule table, the longest jobs."""
    run = summary(jobs)
    rules = per_rule(jobs)
    shown = pd.DataFrame(
        {
            "rule": rules["rule"],
            "jobs": [
                f"{n} ({u} unfinished)" if u else str(n)
                for n, u in zip(rules["jobs"], rules["unfinished"], strict=True)
            ],
            "wall time, summed": rules["wall_s"].map(duration),
            "longest job": rules["longest_s"].map(duration),
            "its wildcards": rules["longest_job"],
            "share of the run's wall time": rules["share_of_run"].map(percent),
            "share of the jobs' time": rules["share_of_jobs"].map(percent),
        }
    )
    top = jobs[jobs["wall_s"].notna()].nlargest(longest, "wall_s")
    top_shown = pd.DataFrame(
        {
            "jobid": top["jobid"],
            "rule": top["rule"],
            "wildcards or output": top.apply(label, axis=1),
            "start (min)": ((top["start"] - run["start"]).dt.total_seconds() / 60).map(
                lambda x: f"{x:.1f}"
            ),
            "wall time": top["wall_s"].map(duration),
        }
    )
    lines = [
        "# The schedule of a Snakemake run",
        "",
        f"From `{log}`: {run['jobs']} jobs ({run['done']} done, {run['failed']} failed, "
        f"{run['unfinished']} unfinished).",
        "",
        f"- wall time (first start to last end): {duration(run['wall_s'])}",
        f"- the jobs' wall times summed: {duration(run['jobs_wall_s'])}",
        f"- jobs running on average (sum / wall, the cores kept busy): {busy(run)}",
        "",
        "## Per rule",
        "",
        markdown_table(shown),
    ]
    if len(top):
        lines += [f"## The {len(top)} longest jobs", "", markdown_table(top_shown)]
    unfinished = jobs[jobs["status"] == "unfinished"]
    if len(unfinished):
        lines += [
            "## Unfinished jobs (started, no end in the log: interrupted or still running)",
            "",
            markdown_table(unfinished[["jobid", "rule", "wildcards", "start"]]),
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def gantt(jobs: pd.DataFrame, outputs: list[Path], labelled: int = LONGEST_LABELLED):
    """One horizontal bar per job, top to bottom in order of start, x in minutes since the run's
    start, coloured by rule; the `labelled` longest jobs carry their wildcards. A failed job is
    edged in black, an unfinished one is hatched and runs to the last start or end in the log."""
    run = summary(jobs)
    t0 = run["start"]
    last = max(jobs["end"].max() if jobs["end"].notna().any() else t0, jobs["start"].max())
    begin = (jobs["start"] - t0).dt.total_seconds() / 60
    end = (jobs["end"].fillna(last) - t0).dt.total_seconds() / 60
    span = max(float(end.max()), 1 / 60)
    # at least one second wide, so a job of a second is visible
    width = np.maximum(end - begin, span / 400)
    rules = list(per_rule(jobs)["rule"])  # the legend's order: most time first
    # tab20's dark shades first, then its light ones: the first ten rules get ten distinct hues
    palette = plt.get_cmap("tab20")
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    colour = {rule: palette(order[i % 20]) for i, rule in enumerate(rules)}
    n = len(jobs)
    fig, ax = new_figure(width=10, height=min(max(3.5, 1.6 + 0.11 * n), 60))
    y = np.arange(n)
    for status, style in {
        "done": {"edgecolor": "none"},
        "failed": {"edgecolor": "black", "linewidth": 0.8},
        "unfinished": {"edgecolor": "black", "linewidth": 0.4, "hatch": "////", "alpha": 0.6},
    }.items():
        rows = (jobs["status"] == status).to_numpy()
        if rows.any():
            ax.barh(
                y[rows],
                width[rows],
                left=begin[rows],
                height=0.8,
                color=[colour[r] for r in jobs["rule"][rows]],
                **style,
            )
    top = jobs["wall_s"].nlargest(labelled).index
    for i in top:
        failed = ", failed" if jobs.at[i, "status"] == "failed" else ""
        text = f"{label(jobs.loc[i])} ({duration(jobs.at[i, 'wall_s'])}{failed})"
        right = end[i] < 0.6 * span
        ax.text(
            end[i] + span * 0.005 if right else begin[i] - span * 0.005,
            i,
            text,
            va="center",
            ha="left" if right else "right",
            fontsize=5.5,
        )
    ax.set_ylim(n - 0.4, -0.6)
    ax.set_xlim(0, span * 1.01)
    ax.set_yticks([])
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("minutes since the run's start")
    ax.set_ylabel(f"jobs in order of start ({n})")
    ax.set_title(
        f"Schedule: wall {duration(run['wall_s'])}, {busy(run)} jobs running on average",
        fontsize=10,
    )
    handles = [Patch(color=colour[r], label=r) for r in rules]
    if run["failed"]:
        handles.append(Patch(facecolor="white", edgecolor="black", label="failed"))
    if run["unfinished"]:
        handles.append(
            Patch(facecolor="white", edgecolor="black", hatch="////", label="unfinished")
        )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        frameon=False,
        title="rule",
        title_fontsize=8,
    )
    return save_figure(fig, outputs)


def newest_log(workdir: Path) -> Path:
    """The newest log in `<workdir>/.snakemake/log/` that started a job (a `--unlock` or a run
    with nothing to do writes a log without one)."""
    folder = workdir / ".snakemake" / "log"
    logs = sorted(folder.glob("*.snakemake.log"), key=lambda p: (p.stat().st_mtime, p.name))
    if not logs:
        raise ScheduleError(
            f"no Snakemake log in {folder}: run `snakemake` in {workdir} first, or pass the path "
            "of a log (LOG)"
        )
    for log in reversed(logs):
        if len(parse_log(log.read_text(errors="replace"))):
            return log
    raise ScheduleError(
        f"none of the {len(logs)} logs in {folder} started a job (the newest: {logs[-1].name}); "
        "pass the log of a run that did (LOG)"
    )


def write(log: Path, out: Path) -> pd.DataFrame:
    """schedule.csv, schedule.md and schedule.{png,pdf} of the run that wrote `log`, in `out`."""
    if not log.is_file():
        raise ScheduleError(f"{log}: no such log; pass a file from .snakemake/log/ (LOG)")
    jobs = parse_log(log.read_text(errors="replace"))
    if jobs.empty:
        raise ScheduleError(
            f"{log} holds no job (no job start in it): pass the log of a run that ran jobs (LOG)"
        )
    out.mkdir(parents=True, exist_ok=True)
    jobs.to_csv(out / "schedule.csv", index=False)
    (out / "schedule.md").write_text(markdown(jobs, str(log)))
    gantt(jobs, [out / "schedule.png", out / "schedule.pdf"])
    return jobs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench.schedule",
        description="The schedule of a Snakemake run from its log: a table, a per-rule "
        "breakdown and a Gantt chart.",
    )
    parser.add_argument(
        "log",
        nargs="?",
        type=Path,
        help="a .snakemake/log/*.snakemake.log (default: the newest one that started a job)",
    )
    parser.add_argument("--out", type=Path, default=Path("results/bench/schedule"))
    parser.add_argument(
        "--workdir", type=Path, default=Path("."), help="where to look for .snakemake/log/"
    )
    args = parser.parse_args(argv)
    try:
        log = args.log or newest_log(args.workdir)
        jobs = write(log, args.out)
    except ScheduleError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    run = summary(jobs)
    print(
        f"{log}: {run['jobs']} jobs, wall {duration(run['wall_s'])}, "
        f"{busy(run)} jobs running on average → {args.out}/schedule.{{csv,md,png,pdf}}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
