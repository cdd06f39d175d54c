"""R8 dropout consultations: a school asks, the district asks back or decides, both see the thread.

Text (details, questions, answers, the decision's reason) is written to the database first, as a staged
entry; the consultation workflow accepts it by id, or refuses it and the entry is removed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, Field
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import (
    EngineDep, NowDep, SessionDep, SettingsDep, TemporalDep, UserDep, actor_of, require_role, school_in_scope,
)
from api.downloads import evidence_download
from api.errors import ERROR_RESPONSES
from api.views import Instant, instant
from api.workflow_updates import refusal_from_update_failure
from db import dropouts
from db.engine import session_scope
from db.evidence import MAX_EVIDENCE_BYTES, store_evidence
from db.models import DropoutMessage, DropoutRequest, EvidenceFile, School, SchoolRound, Student, User
from db.projection_rows import state_of
from dmcflow.lazy_start import signal_school
from domain.dropouts import REASONS, STATUS_TH, CommentDropout, DecideDropout, WithdrawDropout, reason_code
from domain.ids import normalise_student_id
from domain.refusals import invalid, not_found, refusal
from domain.school_round import BlockingCase, check_roster_editable
from workflows.dropout_consultation import DropoutConsultationWorkflow
from workflows.ids import dropout_id

router = APIRouter(prefix="/rounds/{round_id}", tags=["dropouts"], responses=ERROR_RESPONSES)
log = logging.getLogger(__name__)
ACTIVE = "studying"


class ThreadEntryOut(BaseModel):
    id: int
    kind: str
    side: str
    author: str | None
    author_name: str | None
    text: str
    evidence: str | None
    at: Instant


class DropoutOut(BaseModel):
    id: str
    round_id: str
    school_code: str
    school_name: str
    area: str
    student_id: str
    student_name: str
    grade: str
    reason: str
    reason_th: str
    reason_en: str
    status: str
    status_th: str
    requested_by: str
    requested_at: Instant
    decided_by: str | None
    decided_at: Instant | None
    closed_at: Instant | None
    cutoff_at: Instant | None
    thread: list[ThreadEntryOut] = Field(default_factory=list)


class WithdrawalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why the school takes its request back")


class DecisionIn(BaseModel):
    approve: bool
    reason: str = Field(min_length=1, max_length=2000, description="told to the school, whatever the decision")


def _visible(user: User, row: DropoutRequest) -> bool:
    return (user.role == "admin" or (user.role == "district" and user.area == row.area)
            or (user.role in ("staff", "director") and user.school_code == row.school_code))


def _load(session: Session, user: User, round_id: str, request_id: str) -> DropoutRequest:
    row = session.get(DropoutRequest, request_id)
    if row is None or row.round_id != round_id or not _visible(user, row):
        raise not_found("คำขอออกกลางคัน", "dropout request", request_id)
    return row


def _view(session: Session, row: DropoutRequest, *, thread: bool) -> DropoutOut:
    student = session.get(Student, row.student_pk)
    school = session.get(School, row.school_code)
    school_round = session.get(SchoolRound, (row.round_id, row.school_code))
    entries = []
    if thread:
        names: dict[str, str | None] = {}
        for m in session.exec(select(DropoutMessage).where(DropoutMessage.request_id == row.id, DropoutMessage.posted)
                              .order_by(DropoutMessage.id)):
            if m.author and m.author not in names:
                names[m.author] = getattr(session.get(User, m.author), "display_name", None)
            entries.append(ThreadEntryOut(id=m.id, kind=m.kind, side=m.side, author=m.author,
                                          author_name=names.get(m.author or ""), text=m.text, evidence=m.evidence,
                                          at=instant(m.at)))
    return DropoutOut(
        id=row.id, round_id=row.round_id, school_code=row.school_code, school_name=school.name, area=row.area,
        student_id=student.student_id, student_name=f"{student.prefix}{student.first_name} {student.last_name}".strip(),
        grade=student.grade, reason=row.reason, reason_th=REASONS[row.reason][0], reason_en=REASONS[row.reason][1],
        status=row.status, status_th=STATUS_TH[row.status], requested_by=row.requested_by,
        requested_at=instant(row.requested_at), decided_by=row.decided_by,
        decided_at=instant(row.decided_at) if row.decided_at else None,
        closed_at=instant(row.closed_at) if row.closed_at else None,
        cutoff_at=instant(school_round.cutoff_at) if school_round else None, thread=entries)


def _check_roster_open(session: Session, round_id: str, school_code: str, now: datetime) -> SchoolRound:
    """A request changes the roster in the end: only while the school may still edit it."""
    row = session.get(SchoolRound, (round_id, school_code))
    if row is None:
        raise refusal("round_not_started", f"ยังไม่ได้เริ่มรอบ {round_id} ของโรงเรียนนี้",
                      f"Round {round_id} has not been started for this school")
    check_roster_editable(state_of(row), now)
    return row


async def _read_evidence(evidence: UploadFile | None) -> bytes | None:
    return await evidence.read(MAX_EVIDENCE_BYTES + 1) if evidence is not None and evidence.filename else None


async def _settled_view(engine, user, round_id: str, request_id: str, until) -> DropoutOut:
    """The view once the workflow's database step is done (it follows the accepted update at once)."""
    def load() -> tuple[bool, DropoutOut]:
        with session_scope(engine) as session:
            row = _load(session, user, round_id, request_id)
            return until(session, row), _view(session, row, thread=True)

    for _ in range(200):
        done, view = await asyncio.to_thread(load)
        if done:
            break
        await asyncio.sleep(0.05)
    return view


@router.post("/schools/{school_code}/dropouts", operation_id="request_dropout", response_model=DropoutOut,
             status_code=201,
             summary="R8: school staff ask the district to record a student as dropped out (with a ministry reason)")
async def request_dropout(
        round_id: str, school_code: str, user: UserDep, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
        now: NowDep,
        student: Annotated[str, Form(description="national ID or G-code")],
        reason: Annotated[str, Form(description="one of the ministry's dropout reasons: " + ", ".join(REASONS))],
        details: Annotated[str, Form(min_length=1, max_length=4000, description="what happened, for the district")],
        evidence: Annotated[UploadFile | None, File(description="PDF, JPEG or PNG")] = None) -> DropoutOut:
    require_role(user, "staff", what_th="ขอบันทึกนักเรียนออกกลางคัน (เฉพาะเจ้าหน้าที่โรงเรียน)",
                 what_en="request a dropout (school staff only)")
    data = await _read_evidence(evidence)

    def create():
        with session_scope(engine) as session:
            school = school_in_scope(session, user, school_code)
            code = reason_code(reason)
            if not details.strip():
                raise invalid("details_required", "ต้องระบุรายละเอียดให้เขตพื้นที่พิจารณา",
                              "Give the details for the district")
            sid = normalise_student_id(student)
            pupil = session.exec(select(Student).where(Student.school_code == school.code,
                                                       Student.student_id == sid)).first()
            if pupil is None or pupil.status != ACTIVE:
                raise not_found("นักเรียนที่กำลังศึกษาในโรงเรียนนี้", "studying student at this school", "")
            _check_roster_open(session, round_id, school.code, now)
            existing = dropouts.open_request_for(session, round_id, pupil.id, now)
            if existing is not None:
                raise refusal("dropout_already_requested", f"นักเรียนคนนี้มีคำขอออกกลางคันที่ยังไม่ได้ข้อยุติแล้ว ({existing.id})",
                              f"This student already has an open dropout request ({existing.id})")
            sha = store_evidence(session, data, evidence.filename or "").sha256 if data else None
            row, inp = dropouts.create_request(session, round_id=round_id, area=school.area, student=pupil,
                                               reason=code, details=details.strip(), evidence=sha, by=user.id, at=now)
            return row.id, inp

    request_id, inp = await asyncio.to_thread(create)
    try:
        await client.start_workflow(DropoutConsultationWorkflow.run, inp, id=dropout_id(request_id),
                                    task_queue=settings.task_queue)
    except BaseException:
        await asyncio.to_thread(_discard_request, engine, request_id)  # no workflow: no request
        raise
    # Block the confirmation now, not when the consultation's workflow first runs (its own signal, which
    # the school ignores as a repeat, can come much later when the worker is down or behind).
    try:  # an area-timed school with no workflow yet gets one, blocked from the start (issue 18)
        await signal_school(client, engine, round_id, inp.school_code, "case_opened",
                            BlockingCase(kind="dropout", ref=request_id))
    except RPCError:
        log.warning("dropout %s: the school's round did not take the block; the consultation will send it", request_id)
    return await _settled_view(engine, user, round_id, request_id, lambda _, r: r.status != "starting")


def _discard_request(engine, request_id: str) -> None:
    with session_scope(engine) as session:
        dropouts.discard_request(session, request_id)


@router.get("/dropouts", operation_id="list_dropouts", response_model=list[DropoutOut],
            summary="Dropout requests the user may see (own school, own area, or all), by area, school and status")
def list_dropouts(round_id: str, user: UserDep, session: SessionDep, area: str | None = None,
                  school: str | None = None,
                  status: Literal["open", "closed", "waiting_district", "waiting_school", "approved", "rejected",
                                  "expired", "failed", "withdrawn"] | None = None) -> list[DropoutOut]:
    stmt = select(DropoutRequest).where(DropoutRequest.round_id == round_id,
                                        DropoutRequest.status != "starting").order_by(DropoutRequest.requested_at)
    if area:
        stmt = stmt.where(DropoutRequest.area == area)
    if school:
        stmt = stmt.where(DropoutRequest.school_code == school)
    if status == "open":
        stmt = stmt.where(DropoutRequest.status.in_(("waiting_district", "waiting_school")))
    elif status == "closed":
        stmt = stmt.where(DropoutRequest.status.in_(("approved", "rejected", "expired", "failed", "withdrawn")))
    elif status:
        stmt = stmt.where(DropoutRequest.status == status)
    if user.role == "district":
        stmt = stmt.where(DropoutRequest.area == user.area)
    elif user.role in ("staff", "director"):
        stmt = stmt.where(DropoutRequest.school_code == user.school_code)
    return [_view(session, r, thread=False) for r in session.exec(stmt)]


@router.get("/dropouts/{request_id}", operation_id="get_dropout", response_model=DropoutOut,
            summary="One dropout request with its thread (request, questions, answers, decision)")
def get_dropout(round_id: str, request_id: str, user: UserDep, session: SessionDep) -> DropoutOut:
    return dropout_view(session, user, round_id, request_id)


def dropout_view(session: Session, user: User, round_id: str, request_id: str) -> DropoutOut:
    """One request with its thread, as far as the user may see it (the API's answer and the workbench's page)."""
    return _view(session, _load(session, user, round_id, request_id), thread=True)


def dropout_evidence(session: Session, user: User, round_id: str, request_id: str, sha256: str) -> EvidenceFile:
    row = _load(session, user, round_id, request_id)
    shas = {m.evidence for m in session.exec(select(DropoutMessage).where(
        DropoutMessage.request_id == row.id, DropoutMessage.posted))}
    if sha256 not in shas - {None}:
        raise not_found("หลักฐาน", "evidence", sha256[:12])
    return session.get(EvidenceFile, sha256)


async def _send(engine, client, request_id: str, message_id: int, update, arg):
    """The workflow accepts the staged entry, or the entry goes: nothing half-done either way."""
    try:
        return await client.get_workflow_handle(dropout_id(request_id)).execute_update(update, arg)
    except BaseException as exc:
        await asyncio.to_thread(_discard_message, engine, message_id)
        if isinstance(exc, WorkflowUpdateFailedError):
            raise refusal_from_update_failure(exc) from None
        if isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND:  # not an outage: the workflow ended
            raise refusal("dropout_closed", f"คำขอ {request_id} ได้ข้อยุติแล้ว", f"Request {request_id} is settled") from None
        raise


def _discard_message(engine, message_id: int) -> None:
    with session_scope(engine) as session:
        dropouts.discard_message(session, message_id)


@router.post("/dropouts/{request_id}/comments", operation_id="comment_dropout", response_model=DropoutOut,
             summary="The district asks the school for more; the school answers (or adds a note)")
async def comment_dropout(
        round_id: str, request_id: str, user: UserDep, engine: EngineDep, client: TemporalDep, now: NowDep,
        text: Annotated[str, Form(min_length=1, max_length=4000)],
        evidence: Annotated[UploadFile | None, File(description="PDF, JPEG or PNG")] = None) -> DropoutOut:
    require_role(user, "staff", "director", "district", what_th="ร่วมปรึกษาเรื่องการออกกลางคัน",
                 what_en="take part in a dropout consultation")
    data = await _read_evidence(evidence)
    return await post_comment(engine, client, user, now, round_id, request_id, text, data,
                              evidence.filename if data else None)


async def post_comment(engine, client, user: User, now: datetime, round_id: str, request_id: str, text: str,
                       data: bytes | None, filename: str | None) -> DropoutOut:
    """A question, answer or note in the thread (the API's route and the workbench's form)."""
    require_role(user, "staff", "director", "district", what_th="ร่วมปรึกษาเรื่องการออกกลางคัน",
                 what_en="take part in a dropout consultation")

    def stage() -> int:
        with session_scope(engine) as session:
            row = _load(session, user, round_id, request_id)
            if not text.strip():
                raise invalid("text_required", "ข้อความว่าง", "The message is empty")
            sha = store_evidence(session, data, filename or "").sha256 if data else None
            return dropouts.stage_message(session, request_id=row.id, side="district" if user.role == "district"
                                          else "school", author=user.id, text=text.strip(), evidence=sha, at=now)

    message_id = await asyncio.to_thread(stage)
    await _send(engine, client, request_id, message_id, DropoutConsultationWorkflow.comment, CommentDropout(
        message_id=message_id, actor=actor_of(user), area=user.area,
        school_code=user.school_code))
    return await _settled_view(engine, user, round_id, request_id,
                               lambda session, _: session.get(DropoutMessage, message_id).posted)


@router.post("/dropouts/{request_id}/decision", operation_id="decide_dropout", response_model=DropoutOut,
             summary="A district officer of the school's area approves (the student is recorded as dropped out) "
                     "or rejects, with a reason")
async def decide_dropout(round_id: str, request_id: str, body: DecisionIn, user: UserDep, engine: EngineDep,
                         client: TemporalDep, now: NowDep) -> DropoutOut:
    return await decide_request(engine, client, user, now, round_id, request_id, body.approve, body.reason)


async def decide_request(engine, client, user: User, now: datetime, round_id: str, request_id: str, approve: bool,
                         reason: str) -> DropoutOut:
    """The district's decision (the API's route and the workbench's form)."""
    require_role(user, "district", what_th="พิจารณาคำขอออกกลางคัน (เฉพาะเจ้าหน้าที่เขตพื้นที่)",
                 what_en="decide dropout requests (district officers only)")
    if not reason.strip():
        raise invalid("reason_required", "ต้องระบุเหตุผลของการพิจารณา", "Give the reason for the decision")

    def stage() -> int:
        with session_scope(engine) as session:
            row = _load(session, user, round_id, request_id)
            return dropouts.stage_message(session, request_id=row.id, side="district", author=user.id,
                                          text=reason.strip(), evidence=None, at=now,
                                          kind="approve" if approve else "reject")

    message_id = await asyncio.to_thread(stage)
    await _send(engine, client, request_id, message_id, DropoutConsultationWorkflow.decide, DecideDropout(
        message_id=message_id, approve=approve, actor=actor_of(user), area=user.area))
    return await _settled_view(engine, user, round_id, request_id, lambda _, r: r.status not in dropouts.OPEN_STATUSES)


@router.get("/dropouts/{request_id}/evidence/{sha256}", operation_id="get_dropout_evidence", response_class=Response,
            summary="An evidence file of the consultation (a download), for the school, its district and admins")
def get_dropout_evidence(round_id: str, request_id: str, sha256: str, user: UserDep,
                         session: SessionDep) -> Response:
    return evidence_download(dropout_evidence(session, user, round_id, request_id, sha256))


@router.post("/dropouts/{request_id}/withdrawal", operation_id="withdraw_dropout", response_model=DropoutOut,
             summary="The school's staff withdraw their own open request, with a reason: the student stays on the "
                     "roster and the request no longer blocks the school's confirmation")
async def withdraw_dropout(round_id: str, request_id: str, body: WithdrawalIn, user: UserDep, engine: EngineDep,
                           client: TemporalDep, now: NowDep) -> DropoutOut:
    require_role(user, "staff", what_th="ถอนคำขอออกกลางคัน (เฉพาะเจ้าหน้าที่โรงเรียน)",
                 what_en="withdraw a dropout request (school staff only)")
    if not body.reason.strip():
        raise invalid("reason_required", "ต้องระบุเหตุผลที่ถอนคำขอ", "Give the reason for withdrawing the request")

    def stage() -> int:
        with session_scope(engine) as session:
            row = _load(session, user, round_id, request_id)
            return dropouts.stage_message(session, request_id=row.id, side="school", author=user.id,
                                          text=body.reason.strip(), evidence=None, at=now, kind="withdrawn")

    message_id = await asyncio.to_thread(stage)
    await _send(engine, client, request_id, message_id, DropoutConsultationWorkflow.withdraw, WithdrawDropout(
        message_id=message_id, actor=actor_of(user)))
    return await _settled_view(engine, user, round_id, request_id, lambda _, r: r.status not in dropouts.OPEN_STATUSES)
