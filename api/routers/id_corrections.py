"""R4: the district reviews ID corrections that schools sent by email."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlmodel import select
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep, UserDep, actor_of, require_role
from api.downloads import Sha256, evidence_download
from api.errors import ERROR_RESPONSES
from api.views import instant
from api.workflow_updates import refusal_from_update_failure
from db.engine import session_scope
from db.models import EvidenceFile, IdCorrection, InboundMessage, School
from db.id_corrections import flags_of, request_input
from domain.id_corrections import DecideIdCorrection, Flag, IdCorrectionInput
from domain.refusals import Refusal, not_found, refusal
from intake.mail_auth import refusal_reason
from workflows.id_correction import IdCorrectionWorkflow
from workflows.ids import id_correction_id

router = APIRouter(prefix="/id-corrections", tags=["id corrections"], responses=ERROR_RESPONSES)


class IdCorrectionOut(BaseModel):
    ref: str
    status: str
    round_id: str | None
    school_code: str | None
    school_name: str | None
    area: str | None
    student_name: str | None
    old_id: str | None
    new_id: str | None
    reason: str | None
    refusal: dict | None
    cutoff_at: dict | None
    decided_by: str | None
    decided_at: dict | None
    decision_reason: str | None
    received_at: dict
    flags: list[dict] = Field(default_factory=list, description="for the deciding officer: a name that is not the "
                              "roster's, a new ID another open request asks for too (code, message_th, message_en); "
                              "the request may still be approved")


class IdCorrectionDetail(IdCorrectionOut):
    message: dict
    evidence: list[dict]


class DecisionIn(BaseModel):
    approve: bool
    reason: str | None = Field(None, max_length=1000, description="required when rejecting")


def _view(session, row: IdCorrection, flags: list[Flag] | None = None) -> IdCorrectionOut:
    message = session.get(InboundMessage, row.message_sha)
    flags = flags_of(session, [row]).get(row.id, []) if flags is None else flags
    school = session.get(School, row.school_code) if row.school_code else None
    return IdCorrectionOut(
        ref=row.id, status=row.status, round_id=row.round_id, school_code=row.school_code,
        school_name=school.name if school else None, area=row.area, student_name=row.student_name,
        old_id=row.old_id, new_id=row.new_id, reason=row.reason,
        refusal={"code": row.refusal_code, "message_th": row.refusal_th, "message_en": row.refusal_en}
        if row.refusal_code else None,
        cutoff_at=instant(row.cutoff_at).model_dump(mode="json") if row.cutoff_at else None,
        decided_by=row.decided_by, decided_at=instant(row.decided_at).model_dump(mode="json") if row.decided_at else None,
        decision_reason=row.decision_reason, received_at=instant(message.received_at).model_dump(mode="json"),
        flags=[f.model_dump() for f in flags])


def _officer_row(session, user, ref: str) -> IdCorrection:
    """Officers of the request's area (and administrators) only: it holds the original message."""
    row = session.get(IdCorrection, ref)
    if row is None or not (user.role == "admin" or (user.role == "district" and user.area == row.area)):
        raise not_found("คำขอแก้ไขเลขประจำตัวประชาชน", "ID correction", ref)
    return row


@router.get("", operation_id="list_id_corrections", response_model=list[IdCorrectionOut],
            summary="ID corrections by area, school and status, as far as the user may see")
def list_id_corrections(user: UserDep, session: SessionDep, area: str | None = None, school: str | None = None,
                        status: Literal["refused", "pending", "approved", "deferred", "rejected", "expired",
                                        "failed"] | None
                        = None) -> list[IdCorrectionOut]:
    stmt = select(IdCorrection).order_by(IdCorrection.created_at, IdCorrection.id)
    if user.role == "district":
        stmt = stmt.where(IdCorrection.area == user.area)
    elif user.role in ("staff", "director"):
        stmt = stmt.where(IdCorrection.school_code == user.school_code)
    for column, value in ((IdCorrection.area, area), (IdCorrection.school_code, school),
                          (IdCorrection.status, status)):
        if value:
            stmt = stmt.where(column == value)
    rows = list(session.exec(stmt))
    # the deciding officer's: a school does not learn of another school's request for the same ID
    flags = flags_of(session, rows) if user.role in ("district", "admin") else {}
    return [_view(session, r, flags.get(r.id, [])) for r in rows]


class RefusedMailOut(BaseModel):
    sha256: str
    received_at: dict
    via: str
    client_address: str | None
    sender: str | None = Field(description="the From address as claimed: not authenticated, or registered for no school")
    message_id: str | None
    size: int
    area: str | None
    reason: dict


@router.get("/refused-mail", operation_id="list_refused_mail", response_model=list[RefusedMailOut],
            summary="Mail the intake kept without acting on it or answering it (sender not authenticated or not "
                    "registered), newest first, with the reason; district officers of the claimed school's area, admins")
def list_refused_mail(user: UserDep, session: SessionDep,
                      limit: int = Query(200, ge=1, le=1000)) -> list[RefusedMailOut]:
    require_role(user, "district", "admin", what_th="ดูอีเมลที่ระบบไม่รับ", what_en="list refused mail")
    stmt = select(InboundMessage).where(InboundMessage.status == "refused")
    if user.role == "district":  # the area of the school the From claims (db.id_corrections.sender_area)
        stmt = stmt.where(InboundMessage.area == user.area)
    rows = session.exec(stmt.order_by(InboundMessage.received_at.desc()).limit(limit)).all()
    out = []
    for row in rows:
        code = (row.outcome or "refused:not_authenticated").removeprefix("refused:")
        th, en = refusal_reason(code)
        out.append(RefusedMailOut(
            sha256=row.sha256, received_at=instant(row.received_at).model_dump(mode="json"), via=row.via,
            client_address=row.client_address, sender=row.sender, message_id=row.message_id, size=row.size,
            area=row.area, reason={"code": code, "message_th": th, "message_en": en}))
    return out


@router.get("/{ref}", operation_id="get_id_correction", response_model=IdCorrectionDetail,
            summary="One request with its original message and evidence (officers of the area only)")
def get_id_correction(ref: str, user: UserDep, session: SessionDep) -> IdCorrectionDetail:
    return correction_detail(session, user, ref)


def correction_detail(session, user, ref: str) -> IdCorrectionDetail:
    """One request as its area's officer sees it (the API's answer and the workbench's page)."""
    row = _officer_row(session, user, ref)
    message = session.get(InboundMessage, row.message_sha)
    return IdCorrectionDetail(
        **_view(session, row).model_dump(),
        message={"sender": message.sender, "message_id": message.message_id, "via": message.via,
                 "size": message.size, "download": f"/id-corrections/{ref}/message"},
        evidence=[{**e, "download": f"/id-corrections/{ref}/evidence/{e['sha256']}"} for e in message.evidence])


def correction_message(session, user, ref: str) -> InboundMessage:
    return session.get(InboundMessage, _officer_row(session, user, ref).message_sha)


def correction_evidence(session, user, ref: str, sha256: str) -> EvidenceFile:
    message = correction_message(session, user, ref)
    if sha256 not in {e["sha256"] for e in message.evidence}:
        raise not_found("หลักฐาน", "evidence", sha256[:12])
    return session.get(EvidenceFile, sha256)


@router.get("/{ref}/message", operation_id="get_id_correction_message", response_class=Response,
            summary="The original email as received (message/rfc822, a download)")
async def get_id_correction_message(ref: str, user: UserDep, engine: EngineDep) -> Response:
    def load() -> bytes:
        with session_scope(engine) as session:
            return correction_message(session, user, ref).raw

    return Response(await asyncio.to_thread(load), media_type="message/rfc822", headers={
        "Content-Disposition": f'attachment; filename="{ref}.eml"', "X-Content-Type-Options": "nosniff"})


@router.get("/{ref}/evidence/{sha256}", operation_id="get_id_correction_evidence", response_class=Response,
            summary="One evidence file of the request (a download, with its sniffed type)")
def get_id_correction_evidence(ref: str, sha256: Sha256, user: UserDep, session: SessionDep) -> Response:
    return evidence_download(correction_evidence(session, user, ref, sha256))


@router.post("/{ref}/decision", operation_id="decide_id_correction", response_model=IdCorrectionOut,
             summary="Approve (the roster's ID changes) or reject with a reason; district officers of the area")
async def decide_id_correction(ref: str, body: DecisionIn, user: UserDep, engine: EngineDep,
                               client: TemporalDep, settings: SettingsDep) -> IdCorrectionOut:
    return await decide_correction(engine, client, user, ref, body.approve, body.reason, task_queue=settings.task_queue)


async def decide_correction(engine, client, user, ref: str, approve: bool, reason: str | None, *,
                            task_queue: str) -> IdCorrectionOut:
    """The district's decision (the API's route and the workbench's form): the request's workflow decides. The
    first decision starts it (update-with-start): an open request has no workflow until then, and one never
    decided is started at its cutoff by the intake's workflow, to expire."""
    require_role(user, "district", what_th="พิจารณาคำขอแก้ไขเลขประจำตัวประชาชน", what_en="decide ID corrections")

    def open_request() -> IdCorrectionInput | None:
        with session_scope(engine) as session:
            row = _officer_row(session, user, ref)
            return request_input(session, row) if row.status == "pending" else None

    def settled() -> Refusal:
        return refusal("already_decided", f"คำขอ {ref} ได้ข้อยุติแล้ว", f"Request {ref} is already settled")

    inp = await asyncio.to_thread(open_request)
    if inp is None:
        raise settled()
    start = WithStartWorkflowOperation(IdCorrectionWorkflow.run, inp, id=id_correction_id(ref), task_queue=task_queue,
                                       id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                       id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    try:
        await client.execute_update_with_start_workflow(
            IdCorrectionWorkflow.decide, DecideIdCorrection(approve=approve, reason=reason, area=user.area,
                                                            actor=actor_of(user)), start_workflow_operation=start)
    except WorkflowUpdateFailedError as exc:
        raise refusal_from_update_failure(exc) from None
    except (WorkflowAlreadyStartedError, RPCError) as exc:
        if isinstance(exc, RPCError) and exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise  # Temporal unreachable: an error to retry, not an answer about the request
        with contextlib.suppress(Exception):
            await start.workflow_handle()  # the same failure: read, so that it is not logged as unread
        raise settled() from None  # its workflow ended (decided, or expired) since the row was read

    def load() -> IdCorrectionOut:
        with session_scope(engine) as session:
            return _view(session, session.get(IdCorrection, ref))

    return await asyncio.to_thread(load)
