"""Moving Temporal's clock in tests: always by time skipping, never by sleeping."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from domain.thai_time import BANGKOK


def bangkok_on_day(now: datetime, hour: int, minute: int = 0, second: int = 0, days: int = 1) -> datetime:
    local = now.astimezone(BANGKOK) + timedelta(days=days)
    return local.replace(hour=hour, minute=minute, second=second, microsecond=0)


async def skip_to(stack, instant: datetime) -> None:
    delta = instant - await stack.now()
    if delta > timedelta(0):
        await stack.env.sleep(delta)


async def eventually(check, timeout: float = 15.0):
    """Wait (in real time) for an effect of an activity that is already due, e.g. a mail in the catcher."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
