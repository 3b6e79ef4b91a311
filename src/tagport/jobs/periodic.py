"""A thread that does something every few seconds while a `with` block runs."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self


class Periodic:
    """Calls `tick()` every `interval` seconds on a daemon thread from `__enter__` to
    `__exit__`, which stops and joins it. `tick` returns False to stop early."""

    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def tick(self) -> bool | None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if self.tick() is False:
                return
