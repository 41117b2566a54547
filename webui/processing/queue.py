"""The generation queue shared by the UI and the API: one job on the model at a time, with visible positions."""
from __future__ import annotations

import contextlib
import itertools
import threading
from typing import Callable, Iterator, TypeVar

from webui.processing.jobs import JobState

T = TypeVar("T")


class GenerationQueue:
    """First come, first served; `current` is the running job (what /progress, Interrupt and Skip act on)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._waiting: list[tuple[int, JobState]] = []
        self._current: JobState | None = None

    @property
    def current(self) -> JobState | None:
        return self._current

    def position(self, job: JobState) -> int | None:
        """0 while running, 1.. while waiting (1 = next), None when not queued."""
        with self._cond:
            if job is self._current:
                return 0
            for index, (_, waiting) in enumerate(self._waiting):
                if waiting is job:
                    return index + 1
            return None

    def pending(self) -> int:
        with self._cond:
            return len(self._waiting)

    @contextlib.contextmanager
    def slot(self, job: JobState) -> Iterator[JobState]:
        """Wait for this job's turn, run the body as the current job, then hand over to the next one."""
        ticket = next(self._tickets)
        with self._cond:
            self._waiting.append((ticket, job))
            self._cond.wait_for(lambda: self._current is None and self._waiting[0][0] == ticket)
            self._waiting.pop(0)
            self._current = job
        try:
            yield job
        finally:
            with self._cond:
                self._current = None
                self._cond.notify_all()

    def run(self, job: JobState, work: Callable[[], T]) -> T:
        with self.slot(job):
            return work()

    def interrupt_current(self) -> bool:
        job = self._current
        if job is not None:
            job.interrupt()
        return job is not None

    def interrupt_all(self) -> int:
        """Interrupt the running job and every waiting one (shutting down); returns how many were told."""
        with self._cond:
            jobs = [job for _, job in self._waiting] + ([self._current] if self._current is not None else [])
        for job in jobs:
            job.interrupt()
        return len(jobs)

    def skip_current(self) -> bool:
        job = self._current
        if job is not None:
            job.skip()
        return job is not None
