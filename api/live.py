"""The dashboard's live feed: Server-Sent Events, one shared poller per watched area.

Every `POLL_SECONDS` the poller of an area reads the area's fingerprint from the projection (row
count, newest `updated_at`, sum of versions, open cases: a few indexed aggregates, never a workflow
query). When it changed, or `REFRESH_SECONDS` passed (time alone moves stages and at-risk reasons),
it builds the area's dashboard once and hands it to every page watching that area. A poller runs
only while a page is subscribed, so an idle API polls nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine

from api.dashboard_views import area_dashboard_json
from db import monitoring as reads
from db.engine import session_scope

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
REFRESH_SECONDS = 30.0


@dataclass
class _Feed:
    subscribers: set[asyncio.Queue] = field(default_factory=set)
    latest: str | None = None  # the area_dashboard JSON last sent
    task: asyncio.Task | None = None


class LiveHub:
    def __init__(self, engine: Engine, clock: Callable[[], Awaitable[datetime]], poll_seconds: float = POLL_SECONDS,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.engine, self.clock = engine, clock
        self.poll_seconds, self.refresh_seconds = poll_seconds, refresh_seconds
        self.feeds: dict[tuple[str, str], _Feed] = {}

    def _fingerprint(self, round_id: str, area: str) -> tuple:
        with session_scope(self.engine) as session:
            return reads.area_fingerprint(session, round_id, area)

    async def _poll(self, key: tuple[str, str], feed: _Feed) -> None:
        round_id, area = key
        last, sent_at = None, None
        while feed.subscribers:
            try:
                fingerprint = await asyncio.to_thread(self._fingerprint, round_id, area)
                now = await self.clock()
                due = sent_at is None or (now - sent_at).total_seconds() >= self.refresh_seconds
                if fingerprint != last or due:
                    feed.latest = await asyncio.to_thread(area_dashboard_json, self.engine, round_id, area, now)
                    last, sent_at = fingerprint, now
                    for queue in list(feed.subscribers):
                        _put_latest(queue, feed.latest)
            except Exception:  # a database hiccup: keep the pages connected and try again
                log.exception("live feed of one area failed; retrying")
            await asyncio.sleep(self.poll_seconds)

    @contextlib.asynccontextmanager
    async def subscribe(self, round_id: str, area: str) -> AsyncIterator[asyncio.Queue]:
        key = (round_id, area)
        feed = self.feeds.setdefault(key, _Feed())
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        feed.subscribers.add(queue)
        if feed.latest is not None:
            _put_latest(queue, feed.latest)
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._poll(key, feed))
        try:
            yield queue
        finally:
            feed.subscribers.discard(queue)
            if not feed.subscribers:
                if feed.task is not None:
                    feed.task.cancel()
                self.feeds.pop(key, None)


def _put_latest(queue: asyncio.Queue, item) -> None:
    """A slow page gets the newest state, never a backlog of old ones."""
    with contextlib.suppress(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(item)


def hub_of(app) -> LiveHub:
    hub = getattr(app.state, "live_hub", None)
    if hub is None:
        hub = app.state.live_hub = LiveHub(app.state.engine, app.state.clock)
    return hub
