from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, status
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from api.deps import (
    EngineDep, NowDep, SessionDep, SettingsDep, TemporalDep, UserDep, actor_of, require_role, school_in_scope,
)
from api.errors import ERROR_RESPONSES
from api.schemas import ExtensionIn, ExtensionOut, RoundIn, RoundOut, StartedOut
from api.views import instant, round_view
from api.workflow_updates import school_update
from db.directory import create_round as create
from db.engine import session_scope
from db.models import Area, AuditEvent, Round, utcnow
from dmcflow import round_ops
from domain.messages import ExtendDeadline, FanoutInput, SchoolDecided
from domain.refusals import forbidden, invalid, not_found, refusal
from domain.rounds import RoundPolicy, RoundSpec
from domain.school_round import SchoolRoundState, check_later_cutoff
from domain.thai_time import as_bangkok_input
from workflows import search_attributes as sa
from workflows.ids import fanout_id
from workflows.round_fanout import RoundFanoutWorkflow
from workflows.school_round import SchoolRoundWorkflow

router = APIRouter(prefix="/rounds", tags=["rounds"], responses=ERROR_RESPONSES)


def _round(session, round_id: str) -> Round:
    row = session.get(Round, round_id)
    if row is None:
        raise not_found("รอบ", "round", round_id)
    return row


@router.post("", operation_id="create_round", response_model=RoundOut, status_code=status.HTTP_201_CREATED,
             summary="Create a round: its instants in Thai local time and its reminder policy (admin)")
def create_round(body: RoundIn, user: UserDep, session: SessionDep) -> RoundOut:
    require_role(user, "admin", what_th="สร้างรอบ", what_en="create rounds")
    return round_view(session, create_round_row(session, body))


def create_round_row(session, body: RoundIn) -> Round:
    """The API's and the workbench's one path: the letter's rules on the round's fields, then its row. A refusal
    keeps the validation error as its cause (the page shows the refusal beside the field it is about)."""
    try:
        spec = RoundSpec(id=body.id, academic_year=body.academic_year, opens_at=body.opens_at,
                         confirm_from=body.confirm_from, cutoff_at=body.cutoff_at, final_exam_on=body.final_exam_on,
                         policy=body.policy or RoundPolicy())
    except ValueError as exc:
        raise invalid("round_invalid", "ข้อมูลรอบไม่ถูกต้อง: ต้องเป็น เปิด ≤ เริ่มยืนยัน < ปิดระบบ และวันสอบปลายภาคไม่หลังวันปิดระบบ",
                      f"Invalid round: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}") from exc
    row = create(session, spec)
    session.flush()
    return row


@router.get("/{round_id}", operation_id="get_round", response_model=RoundOut, summary="A round and its progress")
def get_round(round_id: str, user: UserDep, session: SessionDep) -> RoundOut:
    return round_view(session, _round(session, round_id))


@router.post("/{round_id}/start", operation_id="start_round", response_model=StartedOut,
             status_code=status.HTTP_202_ACCEPTED,
             summary="Start every school's workflow of the round, in pages (admin; idempotent)")
async def start_round(round_id: str, user: UserDep, engine: EngineDep, client: TemporalDep,
                      settings: SettingsDep) -> StartedOut:
    require_role(user, "admin", what_th="เริ่มรอบ", what_en="start rounds")
    operation, schools = await round_ops.start_round(engine, client, settings, round_id)
    return StartedOut(round_id=round_id, operation_id=operation, schools=schools)


@router.get("/{round_id}/operations/{operation_id:path}", operation_id="get_round_operation",
            summary="Progress of a round-wide operation (start, extension)")
async def get_round_operation(round_id: str, operation_id: str, user: UserDep, client: TemporalDep) -> dict:
    return await operation_progress(client, user, round_id, operation_id)


async def operation_progress(client, user, round_id: str, operation_id: str) -> dict:
    """One operation's progress (one describe and one query of its workflow), for the API and the admin's page."""
    require_role(user, "admin", "district", what_th="ดูงานของรอบ", what_en="see round operations")
    parts = operation_id.split("/")
    if not parts[0].startswith("round-") or len(parts) < 2 or parts[1] != round_id:
        raise not_found("งาน", "operation", operation_id)
    handle = client.get_workflow_handle(operation_id)
    try:
        desc = await handle.describe()
    except Exception:
        raise not_found("งาน", "operation", operation_id) from None
    # a district sees its own area's operations only; round-wide ones (no area) are the admin's (issue 15, finding 9)
    if user.role != "admin" and desc.typed_search_attributes.get(sa.AREA) != user.area:
        raise not_found("งาน", "operation", operation_id)
    try:
        progress = await handle.query(RoundFanoutWorkflow.status)
    except Exception:
        raise not_found("งาน", "operation", operation_id) from None
    return {"operation_id": operation_id, "status": desc.status.name.lower() if desc.status else "unknown", **progress}


@router.post("/{round_id}/deadline-extensions", operation_id="extend_deadline", response_model=ExtensionOut,
             summary="Move the cutoff of one school, an area or the whole round (admin; district for its area)")
async def extend_deadline(round_id: str, body: ExtensionIn, user: UserDep, engine: EngineDep,
                          client: TemporalDep, settings: SettingsDep, now: NowDep) -> ExtensionOut:
    return await extend_round_deadline(engine, client, settings, user, round_id, body, now)


async def extend_round_deadline(engine, client, settings, user, round_id: str, body: ExtensionIn,
                                now) -> ExtensionOut:
    """The API's and the workbench's one path: scope, the "only later" rules, the audit, then the school's update
    or the fan-out."""
    require_role(user, "admin", "district", what_th="ขยายเวลา", what_en="extend deadlines")
    cutoff = as_bangkok_input(body.cutoff_at)
    if body.school_code and body.area:
        raise invalid("extension_scope", "ระบุได้อย่างใดอย่างหนึ่ง: โรงเรียน หรือ เขตพื้นที่",
                      "Give a school or an area, not both")

    def check_scope() -> str:
        with session_scope(engine) as session:
            rnd = _round(session, round_id)
            if body.school_code:
                school_in_scope(session, user, body.school_code)
                return f"school:{body.school_code}"
            if body.area:
                if session.get(Area, body.area) is None:
                    raise not_found("เขตพื้นที่", "area", body.area)
                if user.role == "district" and user.area != body.area:
                    raise forbidden("ขยายเวลาของเขตอื่น", "extend another area's deadline")
                scope = f"area:{body.area}"
            else:
                if user.role != "admin":
                    raise forbidden("ขยายเวลาทั้งรอบ (เฉพาะผู้ดูแลระบบ)", "extend a whole round (admin only)")
                scope = "round"
            if rnd.started_at is None:
                raise refusal("round_not_started", "ต้องเริ่มรอบก่อนจึงขยายเวลาเป็นเขตหรือทั้งรอบได้",
                              "Start the round before extending an area or the whole round")
            if cutoff <= rnd.confirm_from:
                raise invalid("extension_before_window", "กำหนดส่งใหม่ต้องหลังเวลาเริ่มยืนยัน",
                              "The new cutoff must be after confirmation opens")
            if cutoff <= now:
                raise invalid("extension_in_past", "กำหนดส่งใหม่ต้องอยู่ในอนาคต", "The new cutoff must be in the future")
            if scope == "round":
                check_later_cutoff(rnd.cutoff_at, cutoff)  # each school's workflow checks its own cutoff
                rnd.cutoff_at = cutoff  # schools started later get the new cutoff too
                session.add(rnd)
            # the request itself; each school's workflow adds its own event as it moves
            session.add(AuditEvent(key=f"extend/{uuid.uuid4()}", at=utcnow(), actor=user.id,
                                   action="extend_deadline", round_id=round_id, area=body.area,
                                   after={"cutoff_at": cutoff.isoformat(), "scope": scope}, reason=body.reason))
            return scope

    scope = await asyncio.to_thread(check_scope)
    change = ExtendDeadline(cutoff_at=cutoff, reason=body.reason, actor=actor_of(user),
                            scope=scope)
    if body.school_code:
        moved = await school_update(client, round_id, body.school_code, SchoolRoundWorkflow.extend_deadline, change,
                                    result_type=SchoolRoundState | SchoolDecided, engine=engine)
        cutoff_at = moved.schedule.cutoff_at if isinstance(moved, SchoolRoundState) else moved.cutoff_at
        stage = moved.stage(now) if isinstance(moved, SchoolRoundState) else moved.stage
        return ExtensionOut(round_id=round_id, scope=scope, cutoff_at=instant(cutoff_at),
                            school={"school_code": body.school_code, "stage": stage.value})
    operation = fanout_id(round_id, "extend", uuid.uuid4().hex[:12])
    await client.start_workflow(
        RoundFanoutWorkflow.run, FanoutInput(round_id=round_id, operation="extend", area=body.area, extension=change),
        id=operation, task_queue=settings.ops_task_queue,
        # whose operation it is: get_round_operation shows an area's extension to that area's district only
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ROUND, round_id)] + (
            [SearchAttributePair(sa.AREA, body.area)] if body.area else [])))
    return ExtensionOut(round_id=round_id, scope=scope, cutoff_at=instant(cutoff), operation_id=operation)
