"""A daemon thread that calls one function on a fixed schedule until stopped (the NVML
sampler, the RAPL poller)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Ticker:
    """Calls `tick` every `period_s` on a daemon thread named `name`, from now until `stop()`.

    An exception ends the thread with a line in `notes` instead of a traceback: telemetry
    must never take the run down.
    """

    def __init__(self, name: str, period_s: float, tick: Callable[[], None], notes: list[str]):
        self.name = name
        self.period_s = period_s
        self._tick = tick
        self._notes = notes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and wait for the thread. Safe to call twice."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as err:  # telemetry must never take the run down
                self._notes.append(f"{self.name} stopped: {type(err).__name__}: {err}")
                return
            # A fixed schedule keeps the rate; after a stall, resume rather than catch up.
            next_tick = max(next_tick + self.period_s, time.monotonic())
            self._stop.wait(max(0.0, next_tick - time.monotonic()))
