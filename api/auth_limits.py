"""Failed bearer authentications, limited per client address over a sliding window.

A client that presented `limit` wrong tokens within `window` seconds is answered 429
`too_many_failed_logins` (with Retry-After) until the oldest of those failures leaves the window. While
blocked its requests are refused before the token is looked up: otherwise a guess would still be
answered, and the limit would limit nothing. A successful authentication neither counts nor clears the
failures (a valid low-privilege token must not buy more guesses at an admin's). A request without any
token is not a failed authentication.

The state is in this process's memory: right for one API process. Several processes (or hosts) behind
a load balancer each count on their own, so a client gets up to N times the limit; such a deployment
needs the counts in a shared store (a PostgreSQL table or Redis, keyed the same way), and the client
address must be the real one: behind a reverse proxy, run uvicorn with --proxy-headers and
--forwarded-allow-ips set to the proxy, or every client shares the proxy's address (and its limit).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from domain.refusals import Refusal, refusal

MAX_CLIENTS = 100_000  # addresses remembered at once; the oldest are forgotten first (bounded memory)


def too_many_failed_logins(retry_after: int) -> Refusal:
    minutes = max(1, math.ceil(retry_after / 60))
    problem = refusal("too_many_failed_logins",
                      f"ใส่โทเค็นผิดหลายครั้งเกินไป กรุณารอ {minutes} นาทีแล้วลองใหม่",
                      f"Too many failed sign-ins; try again in {minutes} minute(s)", 429)
    problem.headers = {"Retry-After": str(retry_after)}
    return problem


class FailedAuthLimiter:
    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window_seconds, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # the auth dependency runs in the thread pool

    def _recent(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
        return failures

    def check(self, client: str) -> None:
        """Raises the 429 refusal while `client` is over the limit."""
        with self._lock:
            now = self.clock()
            failures = self._recent(client, now)
            if len(failures) >= self.limit:
                raise too_many_failed_logins(max(1, math.ceil(failures[0] + self.window - now)))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            failures = self._recent(client, now)
            if not failures:
                self._failures[client] = failures
            failures.append(now)
            self._failures.move_to_end(client)
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
