"""Progress of the long jobs (policy optimisation, evaluation) that a person can read.

On a terminal: one tqdm bar, the epoch and phase in its description and the ETA of the epoch and
of the job beside it. Always, through logging (so in the rule's log file, and on stderr when it is
not a terminal: SLURM, CI, a redirected run): a plain line, never a carriage-return bar, at most
every `interval` seconds, with the step, the phase and both ETAs, e.g.

    transformer: policy epoch 2/8, adjoint step 75/150; epoch ETA 1m05s, job ETA 12m30s

An epoch runs its phases in a fixed order (policy optimisation: `forward` then `adjoint`, T steps
each). The ETA of a phase comes from its own pace so far, or from the last epoch's when it has
just started; that of the job from the mean duration of the finished epochs. The loops call it
with one line each: `for t in progress.track("forward", range(T))`, or `progress.start(...)`
and `progress.update()`.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger("pipeline.progress")
INTERVAL = 30.0  # seconds between two progress lines in the log
Item = TypeVar("Item")


def duration(seconds: float | None) -> str:
    """'1h02m', '3m05s', '42s'; '?' when not known yet."""
    if seconds is None:
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Where a job is (epoch, phase, step) and how long the epoch and the job still take."""

    def __init__(
        self,
        name: str,
        phases: dict[str, int],
        epochs: int = 1,
        first_epoch: int = 0,
        unit: str = "policy epoch",
        interval: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.phases, self.epochs, self.unit = name, dict(phases), epochs, unit
        self.epoch, self.clock = first_epoch, clock
        self.interval = INTERVAL if interval is None else interval
        self.phase: str | None = None
        self.done = self.total = 0
        self.pace: dict[str, float] = {}  # seconds per step of each phase, last measured
        self.epoch_seconds: list[float] = []
        now = clock()
        self.epoch_start = self.phase_start = self.last_line = self._bar_etas = now
        self.stream = sys.stderr if stream is None else stream
        self.bar = None  # drawn from the first phase on, on a terminal only
        self._redirect = None
        steps = " + ".join(f"{n} {phase}" for phase, n in self.phases.items())
        what = f"{epochs - first_epoch} {unit}s of " if epochs > 1 else ""
        log.info(
            "%s: %s%s steps; a progress line every %s", name, what, steps, duration(self.interval)
        )

    # -- the loops' calls ------------------------------------------------------------------------
    def start(self, phase: str, total: int | None = None) -> None:
        """A phase of the current epoch begins (the previous one, if any, has ended)."""
        self._end_phase()
        self.phase, self.done = phase, 0
        self.total = self.phases[phase] if total is None else total
        self.phase_start = self.clock()
        if self.bar is None and self.stream.isatty():
            self._redirect = logging_redirect_tqdm()  # log lines above the bar, not through it
            self._redirect.__enter__()
            self.bar = tqdm(
                total=self.total, file=self.stream, leave=False, dynamic_ncols=True, mininterval=0.5
            )
        if self.bar is not None:
            self.bar.reset(total=self.total)
            self.bar.set_description(f"{self.name}: {self._where()}")

    def update(self, steps: int = 1) -> None:
        """`steps` more steps of the current phase are done."""
        self.done += steps
        now = self.clock()
        if self.bar is not None:
            if now - self._bar_etas >= 1.0:  # the ETAs beside the bar, once a second
                self._bar_etas = now
                self.bar.set_postfix_str(self._etas(now), refresh=False)
            self.bar.update(steps)
        if now - self.last_line >= self.interval:
            self.last_line = now
            where = f"{self._where()} step {self.done}/{self.total}"
            log.info("%s: %s; %s", self.name, where, self._etas(now))

    def track(self, phase: str, items: Iterable[Item], total: int | None = None) -> Iterator[Item]:
        """`items`, each counted as one step of `phase`."""
        self.start(phase, total if total is not None else len(items))  # type: ignore[arg-type]
        for item in items:
            yield item
            self.update()

    def end_epoch(self) -> None:
        """The current epoch is done: its duration feeds the job's ETA."""
        self._end_phase()
        now = self.clock()
        self.epoch_seconds.append(now - self.epoch_start)
        self.epoch += 1
        self.epoch_start = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)
            self._redirect = None

    # -- estimates -------------------------------------------------------------------------------
    def epoch_eta(self, now: float | None = None) -> float | None:
        """Seconds until the current epoch ends, or None before every phase's pace is known."""
        now = self.clock() if now is None else now
        names = list(self.phases)
        later = names[names.index(self.phase) + 1 :] if self.phase in names else names
        pace = self.pace.get(self.phase) if self.phase else None
        if self.phase and self.done:
            pace = (now - self.phase_start) / self.done
        remaining = 0.0
        if self.phase:
            if pace is None:
                return None
            remaining += (self.total - self.done) * pace
        for phase in later:
            if phase not in self.pace:
                return None
            remaining += self.phases[phase] * self.pace[phase]
        return remaining

    def job_eta(self, now: float | None = None) -> float | None:
        """Seconds until the last epoch ends, or None while the epoch's ETA is unknown."""
        now = self.clock() if now is None else now
        left = self.epoch_eta(now)
        if left is None:
            return None
        per_epoch = (
            sum(self.epoch_seconds) / len(self.epoch_seconds)
            if self.epoch_seconds
            else now - self.epoch_start + left
        )
        return left + max(0, self.epochs - self.epoch - 1) * per_epoch

    # -- text ------------------------------------------------------------------------------------
    def _where(self) -> str:
        # the epoch's index, as in the epoch lines and file names, over the count (tqdm's n/total)
        epoch = f"{self.unit} {self.epoch}/{self.epochs}, " if self.epochs > 1 else ""
        return f"{epoch}{self.phase}"

    def _etas(self, now: float) -> str:
        text = f"epoch ETA {duration(self.epoch_eta(now))}" if self.epochs > 1 else "ETA"
        if self.epochs > 1:
            return f"{text}, job ETA {duration(self.job_eta(now))}"
        return f"{text} {duration(self.job_eta(now))}"

    def _end_phase(self) -> None:
        if self.phase is not None and self.done:
            self.pace[self.phase] = (self.clock() - self.phase_start) / self.done
        self.phase = None


class Silent(Progress):
    """No bar and no lines (library calls and tests)."""

    def __init__(self) -> None:
        self.phases, self.bar, self._redirect = {}, None, None

    def start(self, phase: str, total: int | None = None) -> None:
        pass

    def update(self, steps: int = 1) -> None:
        pass

    def track(self, phase: str, items: Iterable[Item], total: int | None = None) -> Iterator[Item]:
        return iter(items)

    def end_epoch(self) -> None:
        pass


SILENT = Silent()
