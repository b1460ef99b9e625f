"""The machine's cores, shared between the decodes running at the same time.

One big file gets every core (for libheif's tile threads and the codec's own), while many files decoded at
once in many threads each get an equal share, so they never oversubscribe the machine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["cores", "core_share"]


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


_running = 0
_running_lock = threading.Lock()


@contextmanager
def core_share() -> Iterator[int]:
    """The cores one decode may use while it runs: all of them alone, an equal share beside others."""
    global _running
    with _running_lock:
        _running += 1
        share = max(1, cores() // _running)
    try:
        yield share
    finally:
        with _running_lock:
            _running -= 1
