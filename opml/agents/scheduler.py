"""The scheduler: due work runs on a bounded pool, the nearest deadline first, one job per key at a time.

Only as many jobs are handed to the pool as it has free workers, so a job queued behind others
never waits in the pool's own first-come queue: on every call the remaining work is sorted again,
and an urgent move seen a moment later still goes ahead of a finalize that could wait. Jobs that
compute (trace runs) do not run here: they go to the agent's compute pool, so a long run never
holds a worker a move needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from .work import DueWork, WorkKey


class Scheduler:
    def __init__(self, run: Callable[[WorkKey], None], *, workers: int, name: str, on_done: Callable[[], None]):
        self._run = run
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-job")
        self._in_flight: dict[WorkKey, Future] = {}
        self._lock = threading.Lock()
        self._on_done = on_done  # wakes the agent's loop: a worker is free, more may be due

    def in_flight(self) -> int:
        with self._lock:
            self._reap()
            return len(self._in_flight)

    def running(self, key: WorkKey) -> bool:
        with self._lock:
            future = self._in_flight.get(key)
            return future is not None and not future.done()

    def dispatch(self, work: Iterable[DueWork], now: float) -> list[WorkKey]:
        """Start the due work (wake_at <= now, wall clock) nearest its deadline first, as far as workers are
        free; returns the keys started."""
        with self._lock:
            self._reap()
            due = [item for item in work if item.wake_at <= now and item.key not in self._in_flight]
            due.sort(key=lambda item: (item.deadline, item.key))
            started = []
            for item in due[: max(0, self.workers - len(self._in_flight))]:
                future = self._pool.submit(self._run, item.key)
                future.add_done_callback(lambda _: self._on_done())
                self._in_flight[item.key] = future
                started.append(item.key)
            return started

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _reap(self) -> None:
        for key in [key for key, future in self._in_flight.items() if future.done()]:
            del self._in_flight[key]
