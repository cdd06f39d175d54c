"""Live pages (issue 17): the school's home and the district's queue follow changes made elsewhere.

A live page is rendered with the digest of what it shows (db/live_pulse.py, read before the page's data,
so a change between the two reads is never missed) and subscribes to its feed here: Server-Sent Events
from the shared per-area poller (api/live.py), one statement per area and tick however many pages watch.
An event carries only a digest; when it differs from the page's, the page's script (web/static/live.js)
fetches the page again through its own route, the one that checks the scope, and replaces its live part.

Scope is checked here too, on the server: a school's feed for its own staff and director (and its area's
officers, administrators), an area's queue feed for that area's officers (administrators, any area).
Without script the pages are the same pages, current when loaded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from sqlmodel import Session

from api.deps import EngineDep, require_role, school_in_scope
from api.live import QUEUE, SCHOOL, event_stream, hub_of
from api.viewer import PageUserDep, area_in_scope, round_row
from db.engine import session_scope
from db.live_pulse import pulse, queue_digest, school_digest
from db.models import SchoolRound, User
from db.monitoring import latest_round
from domain.refusals import refusal
from web.app import PageRoute, remember
from web.homes import school_round_for

router = APIRouter(route_class=PageRoute, tags=["workbench"])
Key = Annotated[str, Path(max_length=120)]


@dataclass
class Live:
    feed: str  # the event stream's URL
    src: str  # the page's own URL (GET), fetched again on a change
    version: str  # the digest the page was rendered with


def school_live(session: Session, round_id: str, school_code: str, now: datetime, src: str) -> Live:
    """A school's home: call before reading what the page shows."""
    version = school_digest(pulse(session, round_id, now, school=school_code))
    return Live(feed=f"/live/schools/{quote(school_code, safe='')}/rounds/{quote(round_id, safe='')}", src=src,
                version=version)


def queue_live(session: Session, round_id: str, area: str, now: datetime, src: str) -> Live:
    """An area's queue (and the officer's home, which counts it): call before reading what the page shows."""
    version = queue_digest(pulse(session, round_id, now, area=area))
    return Live(feed=f"/live/areas/{quote(area, safe='')}/rounds/{quote(round_id, safe='')}/queue", src=src,
                version=version)


def home_live(session: Session, user: User, round_id: str | None, now: datetime) -> Live | None:
    """The live part of a user's home (`/`): a school's own round, or the district officer's area queue's counts;
    None where nothing is followed (no round yet, an administrator's every-area home)."""
    if user.role in ("staff", "director") and user.school_code:
        chosen = school_round_for(session, user.school_code, round_id)
        if chosen is None or session.get(SchoolRound, (chosen, user.school_code)) is None:
            return None
        return school_live(session, chosen, user.school_code, now, f"/?round={quote(chosen, safe='')}")
    if user.role == "district" and user.area:
        chosen = latest_round(session)
        return queue_live(session, chosen.id, user.area, now, "/") if chosen else None
    return None


@router.get("/live/schools/{school_code}/rounds/{round_id}", operation_id="workbench_school_feed",
            include_in_schema=False)
async def school_feed(request: Request, school_code: Key, round_id: Key, page_user: PageUserDep,
                      engine: EngineDep) -> Response:
    """A school's changes, for its home: its own staff and director only (officers of its area, admins)."""
    remember(request, page_user)

    def scope() -> str:
        with session_scope(engine) as session:
            school_in_scope(session, page_user.user, school_code)
            row = session.get(SchoolRound, (round_id, school_code))
            if row is None:
                raise refusal("round_not_started", f"ยังไม่ได้เริ่มรอบ {round_id} ของโรงเรียนนี้",
                              f"Round {round_id} has not been started for this school", 404)
            return row.area  # the feed of the school's area, read from the projection, never from the browser

    area = await asyncio.to_thread(scope)
    return event_stream(hub_of(request.app), round_id, area, SCHOOL + school_code, "change")


@router.get("/live/areas/{area}/rounds/{round_id}/queue", operation_id="workbench_queue_feed",
            include_in_schema=False)
async def queue_feed(request: Request, area: Key, round_id: Key, page_user: PageUserDep,
                     engine: EngineDep) -> Response:
    """An area's queue changes: that area's officers, or administrators."""
    remember(request, page_user)
    require_role(page_user.user, "district", "admin", what_th="ติดตามงานของเขตพื้นที่",
                 what_en="follow an area's work queue")

    def scope() -> None:
        with session_scope(engine) as session:
            round_row(session, round_id)
            area_in_scope(session, page_user.user, area)

    await asyncio.to_thread(scope)
    return event_stream(hub_of(request.app), round_id, area, QUEUE, "change")
