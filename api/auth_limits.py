"""Failed sign-ins, limited per client address and per presented credential over a sliding window.

Every login path counts: a bearer token, the dashboard's login form, a session cookie. The credential is
looked up FIRST: a valid one is always let in, whatever happened at its address (behind a school's NAT
or a district's proxy, one script's wrong tokens must not lock out every officer behind it). Only a
failure is counted, once for the client address and once for the SHA-256 of what was presented; while
either has `limit` failures within `window` seconds, further failures are answered 429
`too_many_failed_logins` (with Retry-After) instead of 401. Tokens and session ids are random 192-256 bit
values: the limit is not what makes guessing them hopeless, it keeps a misbehaving client from hammering
the database and tells it to stop. A request without any credential is not a failed sign-in.

The client address is the connection's peer, or, only when that peer is one of `DMCFLOW_TRUSTED_PROXIES`,
what it wrote in X-Forwarded-For (uvicorn's ProxyHeadersMiddleware, installed by api/app.py; uvicorn's
own proxy-header handling is switched off where the API is started, so nobody else's header counts).

The counts are in this process's memory: right for one API process. Several processes (or hosts) behind
a load balancer each count on their own, so a client gets up to N times the limit; such a deployment
needs the counts in a shared store (a PostgreSQL table or Redis, keyed the same way).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import Request

from domain.refusals import Refusal, refusal

MAX_KEYS = 100_000  # addresses (and credentials) remembered at once; the oldest are forgotten first


def too_many_failed_logins(retry_after: int) -> Refusal:
    minutes = max(1, math.ceil(retry_after / 60))
    problem = refusal("too_many_failed_logins",
                      f"ใส่โทเค็นผิดหลายครั้งเกินไป กรุณารอ {minutes} นาทีแล้วลองใหม่",
                      f"Too many failed sign-ins; try again in {minutes} minute(s)", 429)
    problem.headers = {"Retry-After": str(retry_after)}
    return problem


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


class _Window:
    """Recent failures per key, bounded in keys and (since failures stop counting at the limit) per key."""

    def __init__(self) -> None:
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    def recent(self, key: str, now: float, window: float) -> deque[float]:
        failures = self.failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - window:
            failures.popleft()
        if not failures:
            del self.failures[key]
        return failures

    def add(self, key: str, now: float, window: float) -> None:
        failures = self.recent(key, now, window)
        if not failures:
            self.failures[key] = failures
        failures.append(now)
        self.failures.move_to_end(key)
        while len(self.failures) > MAX_KEYS:
            self.failures.popitem(last=False)


class FailedAuthLimiter:
    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window_seconds, clock
        # two tables, so that a flood of distinct wrong credentials cannot push the addresses out
        self._addresses, self._credentials = _Window(), _Window()
        self._lock = threading.Lock()  # the auth dependencies run in the thread pool

    def retry_after(self, address: str, credential: str) -> int | None:
        """Seconds until the address or the credential may fail again while either is over the limit, else None.
        A check only: nothing is recorded (the password form asks before it spends a hash on a guess)."""
        key = hashlib.sha256(credential.encode()).hexdigest()
        with self._lock:
            now = self.clock()
            waits = [math.ceil(failures[0] + self.window - now)
                     for failures in (self._addresses.recent(address, now, self.window),
                                      self._credentials.recent(key, now, self.window))
                     if len(failures) >= self.limit]
        return max(1, *waits) if waits else None

    def failed(self, address: str, credential: str) -> None:
        """Records a failed sign-in, or raises the 429 refusal when the address or the credential is already
        over the limit (that failure is not recorded: a locked client cannot extend its own lock forever)."""
        key = hashlib.sha256(credential.encode()).hexdigest()
        with self._lock:
            now = self.clock()
            waits = [math.ceil(failures[0] + self.window - now)
                     for failures in (self._addresses.recent(address, now, self.window),
                                      self._credentials.recent(key, now, self.window))
                     if len(failures) >= self.limit]
            if waits:
                raise too_many_failed_logins(max(1, *waits))
            self._addresses.add(address, now, self.window)
            self._credentials.add(key, now, self.window)
