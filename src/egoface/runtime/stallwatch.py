"""Stalls of the whole machine, seen from outside the measured process.

A soak on a shared or virtual machine can drop frames because the machine itself stopped running us for a while
(a hypervisor, another process), not because of anything the tracker did. `StallWatch` runs a separate, idle
process that wakes every millisecond and records every wake-up that came more than `threshold_ms` late; a stall of
the tracker that the watcher saw too at the same moment was the machine's. Times are `time.monotonic()` seconds,
comparable across processes on one machine.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from types import TracebackType

__all__ = ["StallWatch"]


def _watch(stop: Connection, results: Connection, threshold_s: float) -> None:
    """The watcher's loop: sleep 1 ms, record (end, seconds) of every gap above `threshold_s`, until `stop`."""
    stalls: list[tuple[float, float]] = []
    results.send("ready")
    last = time.monotonic()
    while not stop.poll():
        time.sleep(0.001)
        now = time.monotonic()
        if now - last > threshold_s:
            stalls.append((now, now - last))
        last = now
    results.send(stalls)


class StallWatch:
    """Context manager: `with StallWatch(20.0) as watch: ...` then `watch.stalls`, a list of (end time, length in
    seconds) of the machine-wide stalls longer than `threshold_ms` during the block."""

    def __init__(self, threshold_ms: float = 20.0) -> None:
        self.threshold_ms = threshold_ms
        self.stalls: list[tuple[float, float]] = []
        context = multiprocessing.get_context("spawn")  # a fork would copy the measured process's thread pools
        self._stop_receiver, self._stop_sender = context.Pipe(duplex=False)
        self._result_receiver, self._result_sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_watch,
            args=(self._stop_receiver, self._result_sender, threshold_ms / 1000.0),
            name="egoface-stallwatch",
            daemon=True,
        )

    def __enter__(self) -> StallWatch:
        self.process.start()
        if not self._result_receiver.poll(60.0) or self._result_receiver.recv() != "ready":
            self.process.kill()
            raise RuntimeError("the stall watcher process did not start within 60 s")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop_sender.send(True)
        if self._result_receiver.poll(10.0):
            self.stalls = self._result_receiver.recv()
        self.process.join(timeout=10.0)
        if self.process.is_alive():
            self.process.kill()

    def overlapping(self, times: list[float], margin_s: float = 0.1) -> int:
        """How many of `times` (monotonic seconds) fall within a recorded stall or `margin_s` after its end."""
        return sum(any(end - length <= t <= end + margin_s for end, length in self.stalls) for t in times)
