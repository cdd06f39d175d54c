"""Dropout consultations (R8) in the database: the request, its thread, and the roster change on approval.

An approval after the school's cutoff (a request the school excused under R11, held open for the district) still
changes the roster: the school did not act late, the district did; the audit trail says it came after the cutoff.
A school that has certified keeps its certified roster: the approval then waits for the next round
(db/deferred_changes.py).

Every write here is idempotent (the consultation workflow's activities may run twice): opening an open
request, posting a posted entry or settling a settled request changes nothing.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select

from db.deferred_changes import defer, roster_is_certified
from db.existence import excused_cases_many
from db.models import AuditEvent, DropoutMessage, DropoutRequest, Round, SchoolRound, Student
from dmcflow.holiday_calendar import holidays_between
from domain.dropouts import OPEN_STATUSES, DropoutCalendar, DropoutInput, hold_until
from domain.rounds import RoundPolicy
from domain.thai_time import thai_datetime, to_bangkok

ACTIVE = "studying"
# A request still "starting" this long after it was made never got its workflow (the API died in between).
STARTING_GRACE = timedelta(minutes=10)
# Holidays are looked up this far past the cutoff (and past a held request's end), so that an extension of a few
# weeks needs no new lookup.
CALENDAR_MARGIN = timedelta(days=90)
AFTER_CUTOFF_TH = "ได้ข้อยุติหลังกำหนดของรอบ เพราะโรงเรียนบันทึกนักเรียนเป็นข้อยกเว้น (ข้อ 11) ไว้แล้ว ไม่ใช่ความล่าช้าของโรงเรียน"
AFTER_CUTOFF_EN = "decided after the round's cutoff: the school had marked the student as an R11 exception; not late"


def new_request_id() -> str:
    # Random, not derived from the student: the id travels in workflow ids and mail subjects.
    return "DO-" + secrets.token_hex(5).upper()


def open_request_for(session: Session, round_id: str, student_pk: int, now: datetime) -> DropoutRequest | None:
    rows = session.exec(select(DropoutRequest).where(DropoutRequest.round_id == round_id,
                                                     DropoutRequest.student_pk == student_pk,
                                                     DropoutRequest.status.in_(OPEN_STATUSES)))
    return next((r for r in rows if r.status != "starting" or now - r.requested_at < STARTING_GRACE), None)


def create_request(session: Session, *, round_id: str, area: str, student: Student, reason: str, details: str,
                   evidence: str | None, by: str, at: datetime) -> tuple[DropoutRequest, DropoutInput]:
    row = DropoutRequest(id=new_request_id(), round_id=round_id, school_code=student.school_code, area=area,
                         student_pk=student.id, reason=reason, details=details, evidence=evidence,
                         status="starting", requested_by=by, requested_at=at)
    session.add(row)
    session.flush()  # the thread's rows refer to it (no ORM relationship orders the inserts)
    session.add(DropoutMessage(request_id=row.id, kind="request", side="school", author=by, text=details,
                               evidence=evidence, at=at))
    return row, DropoutInput(request_id=row.id, round_id=round_id, school_code=student.school_code, area=area,
                             reason=reason)


def discard_request(session: Session, request_id: str) -> None:
    """The workflow never started: nothing of the request remains."""
    for m in session.exec(select(DropoutMessage).where(DropoutMessage.request_id == request_id)):
        session.delete(m)
    session.flush()
    row = session.get(DropoutRequest, request_id)
    if row is not None:
        session.delete(row)


def open_request(session: Session, request_id: str) -> DropoutRequest:
    row = session.get(DropoutRequest, request_id)
    if row.status == "starting":
        row.status = "waiting_district"
        session.add(row)
        for m in session.exec(select(DropoutMessage).where(DropoutMessage.request_id == request_id,
                                                           DropoutMessage.kind == "request")):
            m.posted = True
            session.add(m)
        session.add(AuditEvent(key=f"{request_id}/requested", at=row.requested_at, actor=row.requested_by,
                               action="dropout_requested", round_id=row.round_id, school_code=row.school_code,
                               area=row.area, after={"request": request_id, "reason": row.reason}))
    return row


def calendar_for(session: Session, request_id: str, files: list[Path], extra: list[date]) -> DropoutCalendar:
    """The school's cutoff as it stands now (extensions included) and the holidays up to it."""
    row = session.get(DropoutRequest, request_id)
    school_round = session.get(SchoolRound, (row.round_id, row.school_code))
    cutoff = school_round.cutoff_at
    until = _hold_until(session, row, cutoff) + CALENDAR_MARGIN  # reminders go on while a request is held
    days = holidays_between(to_bangkok(row.requested_at).date(), to_bangkok(until).date(), files, extra)
    return DropoutCalendar(cutoff_at=cutoff, holidays=sorted(days))


def _hold_until(session: Session, row: DropoutRequest, cutoff: datetime) -> datetime:
    return hold_until(cutoff, RoundPolicy.model_validate(session.get(Round, row.round_id).policy))


def hold_past_cutoff(session: Session, request_id: str, at: datetime) -> datetime | None:
    """At the school's cutoff: a request whose student the school marked as a dropout-request exception (R11) stays
    open for the district; answers until when (domain.dropouts.hold_until), or None: it expires as before. The audit
    trail records the hold once (a retried activity finds it)."""
    row = session.get(DropoutRequest, request_id)
    if row is None or row.status not in OPEN_STATUSES:
        return None
    if request_id not in excused_cases_many(session, row.round_id, [row.school_code]).get(row.school_code, []):
        return None
    cutoff = session.get(SchoolRound, (row.round_id, row.school_code)).cutoff_at
    until = _hold_until(session, row, cutoff)
    key = f"{request_id}/held"
    if session.exec(select(AuditEvent.id).where(AuditEvent.key == key)).first() is None:
        session.add(AuditEvent(
            key=key, at=at, actor="system", action="dropout_held_past_cutoff", round_id=row.round_id,
            school_code=row.school_code, area=row.area,
            after={"request": request_id, "status": row.status, "after_cutoff": True, "until": until.isoformat()},
            reason=f"โรงเรียนบันทึกนักเรียนเป็นข้อยกเว้น (ข้อ 11) คำขอจึงยังเปิดให้เขตพื้นที่พิจารณาถึง {thai_datetime(until)} "
                   f"/ excused by the school under R11: open for the district's decision until {until.isoformat()}"))
    return until


def stage_message(session: Session, *, request_id: str, side: str, author: str, text: str, evidence: str | None,
                  at: datetime, kind: str = "note") -> int:
    """A thread entry the workflow has not accepted yet: invisible until posted."""
    message = DropoutMessage(request_id=request_id, kind=kind, side=side, author=author, text=text,
                             evidence=evidence, at=at)
    session.add(message)
    session.flush()
    return message.id


def discard_message(session: Session, message_id: int) -> None:
    message = session.get(DropoutMessage, message_id)
    if message is not None and not message.posted:
        session.delete(message)


def post_message(session: Session, request_id: str, message_id: int, kind: str, status: str, at: datetime) -> None:
    message = session.get(DropoutMessage, message_id)
    if message.posted:
        return
    message.kind, message.posted, message.at = kind, True, at
    session.add(message)
    row = session.get(DropoutRequest, request_id)
    if row.status in OPEN_STATUSES:  # a decision applied meanwhile is never reopened by a late entry
        row.status = status
        session.add(row)
    session.add(AuditEvent(key=f"{request_id}/message/{message_id}", at=at, actor=message.author or "system",
                           action=f"dropout_{kind}", round_id=row.round_id, school_code=row.school_code,
                           area=row.area, after={"request": request_id, "status": row.status}))


def settle(session: Session, request_id: str, outcome: str, by: str | None, at: datetime,
           message_id: int | None) -> str:
    """approve | reject | expire | withdraw (the school's own). Only an approval changes the student, and only
    while still on the roster."""
    row = session.get(DropoutRequest, request_id)
    if row.status not in OPEN_STATUSES:
        return row.status
    if message_id is not None:
        message = session.get(DropoutMessage, message_id)
        message.kind, message.posted, message.at = "withdrawn" if outcome == "withdraw" else outcome, True, at
        session.add(message)
    else:
        session.add(DropoutMessage(request_id=request_id, kind="expired", side="system", text="", posted=True, at=at))
    status = {"approve": "approved", "reject": "rejected", "expire": "expired", "withdraw": "withdrawn"}[outcome]
    # only a request held open past the cutoff (hold_past_cutoff) is still settled after it
    past_cutoff = at >= session.get(SchoolRound, (row.round_id, row.school_code)).cutoff_at
    late = {"after_cutoff": True} if past_cutoff and outcome != "expire" else {}
    deferred = False
    if outcome == "approve":
        student = session.get(Student, row.student_pk)
        if student is None or student.status != ACTIVE or student.school_code != row.school_code:
            status = "failed"  # left the roster meanwhile (a transfer, a duplicate case): nothing to drop out
        elif roster_is_certified(session, row.round_id, row.school_code):  # locks the school's row
            # the certified roster stays as certified: the next round's start applies the dropout
            deferred = True
            defer(session, key=f"dropout/{request_id}", round_id=row.round_id, school_code=row.school_code,
                  area=row.area, kind="dropout", source=request_id, student_pk=student.id,
                  change={"status": "dropped_out", "reason": row.reason}, at=at, actor=by or "system")
        else:
            before = {"status": student.status}
            student.status, student.status_reason, student.updated_at = "dropped_out", row.reason, at
            session.add(student)
            session.add(AuditEvent(key=f"{request_id}/student", at=at, actor=by or "system", action="student_dropped_out",
                                   round_id=row.round_id, school_code=row.school_code, area=row.area, before=before,
                                   after={"status": "dropped_out", "reason": row.reason, "request": request_id, **late},
                                   reason=f"{AFTER_CUTOFF_TH} / {AFTER_CUTOFF_EN}" if late else None))
    row.status, row.closed_at = status, at
    if outcome in ("approve", "reject"):  # the district's decision; an expiry or a withdrawal is none
        row.decided_by, row.decided_at = by, at
    session.add(row)
    decided_late = bool(late) and outcome in ("approve", "reject")
    session.add(AuditEvent(key=f"{request_id}/settled", at=at, actor=by or "system", action=f"dropout_{status}",
                           round_id=row.round_id, school_code=row.school_code, area=row.area,
                           after={"request": request_id, "status": status, **late,
                                  **({"deferred": True} if deferred else {})},
                           reason=f"{AFTER_CUTOFF_TH} / {AFTER_CUTOFF_EN}" if decided_late else None))
    return status


def closes_at(session: Session, row: DropoutRequest) -> datetime:
    """Until when the request takes entries and decisions: the end of its hold, if it was held past the school's
    cutoff (the hold's audit event is its record), else the school's cutoff."""
    held = session.exec(select(AuditEvent.after).where(AuditEvent.key == f"{row.id}/held")).first()
    if held:
        return datetime.fromisoformat(held["until"])
    return session.get(SchoolRound, (row.round_id, row.school_code)).cutoff_at


def after_cutoff(session: Session, row: DropoutRequest) -> bool:
    """The request was settled after the school's cutoff (a request held open for the district)."""
    school_round = session.get(SchoolRound, (row.round_id, row.school_code))
    return row.closed_at is not None and school_round is not None and row.closed_at >= school_round.cutoff_at
