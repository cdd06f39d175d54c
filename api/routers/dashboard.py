"""District monitoring as JSON: an area's dashboard, a round's overview, the live feed, a school's timeline."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.dashboard_views import AreaDashboardOut, RoundOverviewOut, area_dashboard_json, round_overview_json
from api.deps import EngineDep, NowDep, TemporalDep, school_in_scope
from api.errors import ERROR_RESPONSES
from api.live import DASHBOARD, event_stream, hub_of
from api.schemas import Instant
from api.viewer import ViewerDep, area_in_scope, round_row
from api.views import instant
from api.workflow_history import school_history
from db import monitoring as reads
from db.directory import round_spec
from db.engine import session_scope
from domain.school_timeline import AuditItem, timeline
from domain.refusals import forbidden, refusal

router = APIRouter(tags=["dashboard"], responses=ERROR_RESPONSES)


def check_area(engine, user, round_id: str, area: str) -> None:
    with session_scope(engine) as session:
        round_row(session, round_id)
        area_in_scope(session, user, area)


@router.get("/rounds/{round_id}/areas/{area}/dashboard", operation_id="area_dashboard", response_model=AreaDashboardOut,
            summary="An area at a glance: funnel of schools by stage, every school's progress and open cases, "
                    "time left, and the schools at risk with a one-line reason (district: own area; admin)")
def get_area_dashboard(round_id: str, area: str, user: ViewerDep, engine: EngineDep, now: NowDep) -> Response:
    with session_scope(engine) as session:
        round_row(session, round_id)
        area_in_scope(session, user, area)
        text = area_dashboard_json(engine, round_id, area, now, session)
    return Response(text.encode(), media_type="application/json")


@router.get("/rounds/{round_id}/overview", operation_id="round_overview", response_model=RoundOverviewOut,
            summary="Every area of a round: funnel counts, schools at risk and open cases (admin)")
def get_round_overview(round_id: str, user: ViewerDep, engine: EngineDep, now: NowDep) -> Response:
    if user.role != "admin":
        raise forbidden("ดูภาพรวมทุกเขตพื้นที่ (เฉพาะผู้ดูแลระบบ)", "see every area of a round (administrators only)")
    with session_scope(engine) as session:
        round_row(session, round_id)
    return Response(round_overview_json(engine, round_id, now).encode(), media_type="application/json")


@router.get("/rounds/{round_id}/areas/{area}/events", operation_id="area_dashboard_events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: dashboard` with the area_dashboard JSON at once and on every change"}},
            summary="Live feed of an area's dashboard (Server-Sent Events; the page's session cookie or a bearer token)")
async def area_dashboard_events(round_id: str, area: str, request: Request, user: ViewerDep,
                                engine: EngineDep) -> StreamingResponse:
    await asyncio.to_thread(check_area, engine, user, round_id, area)
    return event_stream(hub_of(request.app), round_id, area, DASHBOARD, "dashboard")


class TimelineLineOut(BaseModel):
    at: Instant
    source: str
    code: str
    actor: str | None
    actor_name: str | None
    th: str
    en: str
    count: int


class TimelineOut(BaseModel):
    round_id: str
    school_code: str
    school_name: str
    history_available: bool
    lines: list[TimelineLineOut]


def _audit_items(rows) -> list[AuditItem]:
    return [AuditItem(at=r.at, actor=r.actor, action=r.action, after=r.after, before=r.before, reason=r.reason)
            for r in rows]


async def school_timeline_data(engine, client, user, round_id: str, school_code: str) -> TimelineOut:
    def load():
        with session_scope(engine) as session:
            spec = round_spec(round_row(session, round_id))
            school = school_in_scope(session, user, school_code)
            snap = reads.school_snapshot(session, round_id, school_code)
            if snap is None:
                raise refusal("round_not_started", f"ยังไม่ได้เริ่มรอบ {round_id} ของโรงเรียนนี้",
                              f"Round {round_id} has not been started for this school", 404)
            return spec, school.name, snap, _audit_items(reads.school_audit(session, round_id, school_code))

    spec, name, snap, audit = await asyncio.to_thread(load)
    history = await school_history(client, round_id, school_code)
    lines = timeline(audit, history or [], snap.schedule, spec.policy)

    def names() -> dict[str, str]:
        with session_scope(engine) as session:
            return reads.user_names(session, {line.actor for line in lines if line.actor})

    who = await asyncio.to_thread(names)
    return TimelineOut(round_id=round_id, school_code=school_code, school_name=name,
                       history_available=history is not None,
                       lines=[TimelineLineOut(at=instant(line.at), source=line.source, code=line.code, actor=line.actor,
                                              actor_name="ระบบ" if line.actor == "system" else who.get(line.actor or ""),
                                              th=line.th, en=line.en, count=line.count) for line in lines])


@router.get("/rounds/{round_id}/schools/{school_code}/timeline", operation_id="school_timeline",
            response_model=TimelineOut,
            summary="Every decision and timer of a school's round (who, what, when), from its workflow's history "
                    "and the audit trail, oldest first, in Thai dates; no personal data")
async def get_school_timeline(round_id: str, school_code: str, user: ViewerDep, engine: EngineDep,
                              client: TemporalDep) -> TimelineOut:
    return await school_timeline_data(engine, client, user, round_id, school_code)
