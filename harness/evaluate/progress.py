"""Progress of one eval task: items done of total, generated tokens/s and time left.

Long tasks (HumanEval's 164 problems take minutes on a CPU) must not look hung. In a
terminal the progress is a rich bar on stderr; anywhere else (a log file, CI, a pipe) it is
one plain line through the run's `log` every `interval_s` seconds, and a last line when
the task's generation ends, so a log shows that a task is moving and how long it has left:

    humaneval: 48/164 items, 212 tokens/s, 1m52s elapsed, ~4m31s left

Time left is the elapsed time per item so far times the items still to do. Batches are
generated longest prompt first, so early estimates lean high.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

INTERVAL_S = 30.0   # between plain progress lines


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Counts items and generated tokens of one task; a context manager around its generation."""

    def __init__(self, label: str, total: int, log: Callable[[str], None] | None = print,
                 interval_s: float = INTERVAL_S, live: bool | None = None, clock=time.perf_counter) -> None:
        self.label, self.total, self.log, self.interval_s, self.clock = label, total, log, interval_s, clock
        self.live = _terminal() if live is None else live
        self.done = self.tokens = 0
        self.started = self.last_line = clock()
        self._bar = self._task = None

    # ---------------------------------------------------------------- figures

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.elapsed, 1e-9)

    @property
    def seconds_left(self) -> float | None:
        if not self.done:
            return None
        return self.elapsed / self.done * (self.total - self.done)

    def line(self) -> str:
        left = self.seconds_left
        text = (f"{self.label}: {self.done}/{self.total} items, {self.tokens_per_s:.0f} tokens/s, "
                f"{duration(self.elapsed)} elapsed")
        if self.done < self.total:
            text += f", ~{duration(left)} left" if left is not None else ", time left unknown"
        return text

    # ---------------------------------------------------------------- updates

    def __enter__(self) -> "Progress":
        self.started = self.last_line = self.clock()
        if self.live:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("left"),
                            TimeRemainingColumn(), console=Console(stderr=True), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, rate="- tokens/s")
        return self

    def advance(self, items: int, tokens: int = 0) -> None:
        self.done += items
        self.tokens += tokens
        if self._bar is not None:
            self._bar.update(self._task, advance=items, rate=f"{self.tokens_per_s:.0f} tokens/s")
        elif self.log and self.done < self.total and self.clock() - self.last_line >= self.interval_s:
            self.last_line = self.clock()
            self.log(self.line())

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self.log and exc[0] is None and self.total:
            self.log(self.line())


def _terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):   # replaced or closed stream
        return False
