"""The live feed: Server-Sent Events, one shared poller per watched area, whoever watches it.

Every `POLL_SECONDS` the poller of an area reads the area's pulse (db/live_pulse.py: one statement, a
few indexed GROUP BYs over the projection and the case tables, never a workflow query) and hands each
kind of watcher what it watches, only when that changed:
- the dashboard (`DASHBOARD`): the area's dashboard JSON, built once per change for every page watching
  it, and again after `REFRESH_SECONDS` (time alone moves its at-risk reasons);
- the district's queue (`QUEUE`) and a school's home (`school:<code>`): a short digest of their part.
  The page fetches its own fragment again when the digest differs from the one it was rendered with,
  so a school's page learns only that its own school changed, and reads the change through its own
  scope-checked page.
The cost of a tick is one statement per area, plus one dashboard build per change when a dashboard is
watched: the same for 1 or 200 watchers. A poller runs only while a page is subscribed.
`event_stream` is the one HTTP answer of every feed (the dashboard's JSON, the live pages' digests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Engine

from api.dashboard_views import area_dashboard_json
from db import live_pulse
from db.engine import session_scope
from db.live_pulse import DASHBOARD, QUEUE, SCHOOL  # noqa: F401 (what a subscriber watches)

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
REFRESH_SECONDS = 30.0
STREAM_SECONDS = 300  # a feed ends after this long; EventSource reconnects by itself (and the login is checked again)
KEEPALIVE_SECONDS = 10


@dataclass
class _Feed:
    watchers: dict[str, set[asyncio.Queue]] = field(default_factory=dict)  # by what they watch
    latest: dict[str, str] = field(default_factory=dict)  # the last item each kind of watcher was sent
    area_digest: str | None = None  # of the pulse the dashboard was last built for
    built_at: datetime | None = None
    task: asyncio.Task | None = None


class LiveHub:
    def __init__(self, engine: Engine, clock: Callable[[], Awaitable[datetime]], poll_seconds: float = POLL_SECONDS,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.engine, self.clock = engine, clock
        self.poll_seconds, self.refresh_seconds = poll_seconds, refresh_seconds
        self.feeds: dict[tuple[str, str], _Feed] = {}

    def _pulse(self, round_id: str, area: str, now: datetime) -> list[tuple]:
        with session_scope(self.engine) as session:
            return live_pulse.pulse(session, round_id, now, area=area)

    async def tick(self, round_id: str, area: str) -> None:
        """One poll of one area: its pulse, then to each kind of watcher what changed for it."""
        feed = self.feeds.get((round_id, area))
        if feed is None or not feed.watchers:
            return
        now = await self.clock()
        digests = live_pulse.Digests(await asyncio.to_thread(self._pulse, round_id, area, now))
        for watch, queues in list(feed.watchers.items()):
            if watch == DASHBOARD:
                due = feed.built_at is None or (now - feed.built_at).total_seconds() >= self.refresh_seconds
                if DASHBOARD in feed.latest and digests.whole == feed.area_digest and not due:
                    continue
                item = await asyncio.to_thread(area_dashboard_json, self.engine, round_id, area, now)
                feed.area_digest, feed.built_at = digests.whole, now
            else:
                item = digests.of(watch)
                if item == feed.latest.get(watch):
                    continue
            feed.latest[watch] = item
            for queue in list(queues):
                _put_latest(queue, item)

    async def _poll(self, key: tuple[str, str], feed: _Feed) -> None:
        while feed.watchers:
            try:
                await self.tick(*key)
            except Exception:  # a database hiccup: keep the pages connected and try again
                log.exception("live feed of one area failed; retrying")
            await asyncio.sleep(self.poll_seconds)

    @contextlib.asynccontextmanager
    async def subscribe(self, round_id: str, area: str, watch: str = DASHBOARD) -> AsyncIterator[asyncio.Queue]:
        """A queue that receives what `watch` shows of the area (`DASHBOARD`, `QUEUE` or `SCHOOL + code`):
        the last one at once if the area is already watched, then each change."""
        key = (round_id, area)
        feed = self.feeds.setdefault(key, _Feed())
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        feed.watchers.setdefault(watch, set()).add(queue)
        if watch in feed.latest:
            _put_latest(queue, feed.latest[watch])
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._poll(key, feed))
        try:
            yield queue
        finally:
            queues = feed.watchers.get(watch, set())
            queues.discard(queue)
            if not queues:
                feed.watchers.pop(watch, None)
                feed.latest.pop(watch, None)
            if not feed.watchers:
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


def event_stream(hub: LiveHub, round_id: str, area: str, watch: str, event: str) -> StreamingResponse:
    """Server-Sent Events of what `watch` shows of the area (`hub.subscribe`), each as `event`; a comment every
    `KEEPALIVE_SECONDS` keeps an idle connection open through proxies, and the stream ends after `STREAM_SECONDS`."""
    async def stream():
        yield "retry: 2000\n\n"
        ends = time.monotonic() + STREAM_SECONDS
        async with hub.subscribe(round_id, area, watch) as queue:
            while time.monotonic() < ends:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: {event}\ndata: {item}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
