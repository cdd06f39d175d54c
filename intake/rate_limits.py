"""How many messages the intake takes per key (an SMTP client's address, a sender) over a sliding window.

In this process's memory: the intake runs as one process (`dmcflow intake`). Keys are bounded: the
least recently seen are forgotten first, so a flood of new addresses cannot grow it without end.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 50_000


class SlidingWindow:
    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window_seconds, clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # called from the event loop and from threads

    def take(self, key: str) -> bool:
        """Counts one message for `key`; False (and nothing counted) when the window is already full."""
        with self._lock:
            now = self.clock()
            times = self._seen.pop(key, None) or deque()
            while times and times[0] <= now - self.window:
                times.popleft()
            allowed = len(times) < self.limit
            if allowed:
                times.append(now)
            if times:
                self._seen[key] = times  # most recently seen last
            while len(self._seen) > MAX_KEYS:
                self._seen.popitem(last=False)
            return allowed
