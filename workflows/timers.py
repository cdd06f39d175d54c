"""A durable sleep that a signal can cut short: the area workflows sleep until their next instant, and an extension
wakes them to look again (as samples-python's `updatable_timer`, but the caller computes the new instant, from an
activity, once woken)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow


class RearmableTimer:
    def __init__(self) -> None:
        self.woken = False

    def wake(self) -> None:
        """From a signal handler: the sleeper wakes (or, not sleeping yet, its next sleep returns at once)."""
        self.woken = True

    async def sleep(self, delay: timedelta) -> bool:
        """True when woken, during the sleep or before it; False when `delay` ran out (or none was left)."""
        try:
            if delay > timedelta(0) or self.woken:
                # no timer at all when none is left: a wake that came meanwhile is answered at once
                await workflow.wait_condition(lambda: self.woken, timeout=max(delay, timedelta(0)) or None)
                return True
            return False
        except asyncio.TimeoutError:
            return False
        finally:
            self.woken = False
