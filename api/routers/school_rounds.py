"""A school's round: its state, and the decisions of staff (R11) and the director (R12)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from fastapi import APIRouter
from sqlmodel import select

from api.deps import EngineDep, NowDep, SessionDep, TemporalDep, UserDep, actor_of, require_role, school_in_scope
from api.errors import ERROR_RESPONSES
from api.blocking_cases import BLOCKING_CASES, name_blocking_refusal
from api.schemas import AuditOut, SchoolRoundOut
from api.views import decided_view, instant, school_round_view
from api.workflow_updates import school_update
from db.engine import session_scope
from db.models import User
from db.monitoring import school_audit
from domain.messages import SchoolDecided
from domain.refusals import Refusal
from domain.school_round import SchoolRoundState, Stage, already_certified
from workflows.school_round import SchoolRoundWorkflow

router = APIRouter(prefix="/rounds/{round_id}/schools/{school_code}", tags=["school rounds"],
                   responses=ERROR_RESPONSES)


def _view(engine, user, round_id: str, school_code: str, now: datetime) -> SchoolRoundOut:
    with session_scope(engine) as session:
        school = school_in_scope(session, user, school_code)
        return school_round_view(session, round_id, school, now)


async def _decide(engine, client, user, round_id, school_code, update, now: datetime) -> SchoolRoundOut:
    view = await asyncio.to_thread(_view, engine, user, round_id, school_code, now)  # scope and existence first
    if view.stage == Stage.certified.value:
        raise already_certified()  # its workflow has ended; answer with the reason, not "not running"
    try:
        decided = await school_update(client, round_id, school_code, update, actor_of(user),
                                      SchoolRoundState | SchoolDecided, engine=engine)
    except Refusal as refused:
        if refused.code != BLOCKING_CASES:
            raise
        # open cases: named for the school's staff, from its own records
        raise await asyncio.to_thread(_named, engine, refused, school_code) from None
    return decided_view(view, decided, user, now)  # the workflow's answer: no second read of the projection


def _named(engine, refused: Refusal, school_code: str) -> Refusal:
    with session_scope(engine) as session:
        return name_blocking_refusal(session, refused, school_code)


@router.get("", operation_id="get_school_round", response_model=SchoolRoundOut,
            summary="Stage, deadlines (ISO and Thai), gate progress, who confirmed and certified, blocking cases")
def get_school_round(round_id: str, school_code: str, user: UserDep, session: SessionDep, now: NowDep) -> SchoolRoundOut:
    return school_round_view(session, round_id, school_in_scope(session, user, school_code), now)


@router.post("/confirmation", operation_id="confirm_school_round", response_model=SchoolRoundOut,
             summary="School staff confirm every student's existence (R11), 08.30–16.30 น. on the day")
async def confirm_school_round(round_id: str, school_code: str, user: UserDep, engine: EngineDep,
                               client: TemporalDep, now: NowDep) -> SchoolRoundOut:
    require_role(user, "staff", what_th="ยืนยันข้อมูล (เฉพาะเจ้าหน้าที่โรงเรียน)", what_en="confirm (school staff only)")
    return await _decide(engine, client, user, round_id, school_code, SchoolRoundWorkflow.confirm, now)


@router.delete("/confirmation", operation_id="withdraw_confirmation", response_model=SchoolRoundOut,
               summary="School staff withdraw their confirmation, before the director certifies")
async def withdraw_confirmation(round_id: str, school_code: str, user: UserDep, engine: EngineDep,
                                client: TemporalDep, now: NowDep) -> SchoolRoundOut:
    require_role(user, "staff", what_th="ยกเลิกการยืนยัน (เฉพาะเจ้าหน้าที่โรงเรียน)",
                 what_en="withdraw a confirmation (school staff only)")
    return await _decide(engine, client, user, round_id, school_code, SchoolRoundWorkflow.withdraw_confirmation, now)


@router.post("/certification", operation_id="certify_school_round", response_model=SchoolRoundOut,
             summary="The director certifies (R12), after staff confirmation, 08.30–16.30 น. on the day")
async def certify_school_round(round_id: str, school_code: str, user: UserDep, engine: EngineDep,
                               client: TemporalDep, now: NowDep) -> SchoolRoundOut:
    require_role(user, "director", what_th="รับรองข้อมูล (เฉพาะผู้อำนวยการ)", what_en="certify (director only)")
    return await _decide(engine, client, user, round_id, school_code, SchoolRoundWorkflow.certify, now)


@router.get("/audit", operation_id="list_school_audit", response_model=list[AuditOut],
            summary="The school's audit trail for the round: who did what, when, before and after")
def list_school_audit(round_id: str, school_code: str, user: UserDep, session: SessionDep) -> list[AuditOut]:
    school_in_scope(session, user, school_code)
    rows = school_audit(session, round_id, school_code)
    names = dict(session.exec(select(User.id, User.display_name).where(User.id.in_({r.actor for r in rows}))).all())
    return [AuditOut(at=instant(r.at), actor=r.actor, actor_name=names.get(r.actor), action=r.action,
                     before=r.before, after=r.after, reason=r.reason) for r in rows]
