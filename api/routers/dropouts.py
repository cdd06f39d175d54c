"""R8 dropout consultations: a school asks, the district asks back or decides, both see the thread.

Text (details, questions, answers, the decision's reason) is written to the database first, as a staged
entry; the consultation's workflow accepts it by id, or refuses it and the entry is removed. Each update answers once
its effect is in the database (a new request: once it is open and holds the school's confirmation back), so a route
reads the request once, after it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile
from sqlmodel import Session, select
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.case_views import dropout_evidence, dropout_out, dropout_view, load_dropout
from api.deps import (
    EngineDep, NowDep, SessionDep, SettingsDep, TemporalDep, UserDep, actor_of, require_role, school_in_scope,
)
from api.downloads import evidence_download
from api.errors import ERROR_RESPONSES
from api.schemas import DropoutDecisionIn, DropoutOut, WithdrawalIn
from api.workflow_updates import case_update, refusal_from_update_failure
from db import dropouts
from db.engine import session_scope
from db.evidence import MAX_EVIDENCE_BYTES, store_evidence
from db.models import DropoutRequest, SchoolRound, Student, User
from db.projection_rows import state_of
from domain.dropouts import (
    REASONS, CommentDropout, DecideDropout, DropoutInput, OpenDropout, WithdrawDropout, reason_code,
)
from dmcflow.lazy_start import signal_school
from domain.ids import normalise_student_id
from domain.refusals import invalid, not_found, refusal
from domain.school_round import Actor, BlockingCase, check_roster_editable
from workflows.activity_calls import signal_name
from workflows.dropout_consultation import DropoutConsultationWorkflow
from workflows.school_round import SchoolRoundWorkflow
from workflows.ids import dropout_id

log = logging.getLogger(__name__)

# How long a new request's answer waits for the workflow to open it (it opens in well under a second when a worker
# runs); past it the request is answered as staged, and opens when a worker runs.
OPEN_ANSWER_WAIT = timedelta(seconds=10)

router = APIRouter(prefix="/rounds/{round_id}", tags=["dropouts"], responses=ERROR_RESPONSES)
ACTIVE = "studying"


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


def _read(engine, user: User, round_id: str, request_id: str) -> DropoutOut:
    with session_scope(engine) as session:
        return dropout_view(session, user, round_id, request_id)


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
    await _open(engine, client, settings.task_queue, inp, actor_of(user))
    return await asyncio.to_thread(_read, engine, user, round_id, request_id)


async def _open(engine, client, task_queue: str, inp: DropoutInput, actor: Actor) -> None:
    """The consultation's workflow starts with the update that answers once the request is open and the school's
    confirmation held back. The start is durable and the workflow opens the request on its own; with no worker
    running the answer waits OPEN_ANSWER_WAIT, then the staged request is shown as it is. A request whose workflow
    did not start is removed: nothing half-made."""
    start = WithStartWorkflowOperation(DropoutConsultationWorkflow.run, inp, id=dropout_id(inp.request_id),
                                       task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    answer = asyncio.ensure_future(client.execute_update_with_start_workflow(
        DropoutConsultationWorkflow.open_request, OpenDropout(actor=actor), start_workflow_operation=start))
    try:
        await asyncio.wait_for(asyncio.shield(answer), OPEN_ANSWER_WAIT.total_seconds())
    except asyncio.TimeoutError:
        answer.cancel()  # the workflow opens the request when a worker runs, answered or not
        if not await _may_have_started(start):
            await asyncio.to_thread(_discard_request, engine, inp.request_id)
            raise RPCError("Temporal did not take the request", RPCStatusCode.UNAVAILABLE, b"") from None
        log.info("dropout %s: no worker answered yet; the workflow opens it when one runs", inp.request_id)
    except WorkflowUpdateFailedError as exc:  # started; the API checked the scope already: the request still opens
        log.warning("dropout %s: opening answer refused: %s", inp.request_id, refusal_from_update_failure(exc).code)
    except BaseException:
        answer.cancel()  # the caller is gone or the call failed: nothing is left waiting for the answer
        if not await _may_have_started(start):
            await asyncio.to_thread(_discard_request, engine, inp.request_id)
        raise
    # The school's block, durable now even when the consultation's workflow has not run (the worker down or
    # behind); when it has, a repeat the school ignores.
    try:  # an area-timed school with no workflow yet gets one, blocked from the start (issue 18)
        await signal_school(client, engine, inp.round_id, inp.school_code, signal_name(SchoolRoundWorkflow.case_opened),
                            BlockingCase(kind="dropout", ref=inp.request_id))
    except RPCError:
        log.warning("dropout %s: the school's round did not take the block; the consultation will send it",
                    inp.request_id)


async def _may_have_started(start: WithStartWorkflowOperation) -> bool:
    """False when the server refused the start, or the call never left. An answer lost on the way (a timeout, a
    cancelled call) may follow a start: the request is left to the workflow (a request still `starting` after
    db.dropouts.STARTING_GRACE is ignored)."""
    try:
        await asyncio.wait_for(start.workflow_handle(), timeout=0.1)  # set, if at all, before the call raised
        return True
    except RPCError as exc:
        return exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
    except asyncio.TimeoutError:
        return False  # failed before it was sent (the start's outcome is set by any answer)
    except BaseException:  # noqa: BLE001  cancelled on the way: unknown
        return True


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
    return [dropout_out(session, r, thread=False) for r in session.exec(stmt)]


@router.get("/dropouts/{request_id}", operation_id="get_dropout", response_model=DropoutOut,
            summary="One dropout request with its thread (request, questions, answers, decision)")
def get_dropout(round_id: str, request_id: str, user: UserDep, session: SessionDep) -> DropoutOut:
    return dropout_view(session, user, round_id, request_id)


async def _send(engine, client, user: User, round_id: str, request_id: str, message_id: int, update,
                arg) -> DropoutOut:
    """The workflow accepts the staged entry and answers once it is in the thread (or the decision applied), or the
    entry goes: nothing half-done either way."""
    try:
        await case_update(client, dropout_id(request_id), update, arg, refusal(
            "dropout_closed", f"คำขอ {request_id} ได้ข้อยุติแล้ว", f"Request {request_id} is settled"))
    except BaseException:
        await asyncio.to_thread(_discard_message, engine, message_id)
        raise
    return await asyncio.to_thread(_read, engine, user, round_id, request_id)


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
            row = load_dropout(session, user, round_id, request_id)
            if not text.strip():
                raise invalid("text_required", "ข้อความว่าง", "The message is empty")
            sha = store_evidence(session, data, filename or "").sha256 if data else None
            return dropouts.stage_message(session, request_id=row.id, side="district" if user.role == "district"
                                          else "school", author=user.id, text=text.strip(), evidence=sha, at=now)

    message_id = await asyncio.to_thread(stage)
    return await _send(engine, client, user, round_id, request_id, message_id, DropoutConsultationWorkflow.comment,
                       CommentDropout(message_id=message_id, actor=actor_of(user), area=user.area,
                                      school_code=user.school_code))


@router.post("/dropouts/{request_id}/decision", operation_id="decide_dropout", response_model=DropoutOut,
             summary="A district officer of the school's area approves (the student is recorded as dropped out) "
                     "or rejects, with a reason")
async def decide_dropout(round_id: str, request_id: str, body: DropoutDecisionIn, user: UserDep, engine: EngineDep,
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
            row = load_dropout(session, user, round_id, request_id)
            return dropouts.stage_message(session, request_id=row.id, side="district", author=user.id,
                                          text=reason.strip(), evidence=None, at=now,
                                          kind="approve" if approve else "reject")

    message_id = await asyncio.to_thread(stage)
    return await _send(engine, client, user, round_id, request_id, message_id, DropoutConsultationWorkflow.decide,
                       DecideDropout(message_id=message_id, approve=approve, actor=actor_of(user), area=user.area))


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
            row = load_dropout(session, user, round_id, request_id)
            return dropouts.stage_message(session, request_id=row.id, side="school", author=user.id,
                                          text=body.reason.strip(), evidence=None, at=now, kind="withdrawn")

    message_id = await asyncio.to_thread(stage)
    return await _send(engine, client, user, round_id, request_id, message_id, DropoutConsultationWorkflow.withdraw,
                       WithdrawDropout(message_id=message_id, actor=actor_of(user)))
