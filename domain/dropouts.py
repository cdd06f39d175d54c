"""R8: a dropout (ออกกลางคัน) is recorded only after consulting the district, as pure rules.

A school's staff asks; the district officer of its area may ask questions, the school answers, the
officer approves or rejects with a reason. The clock: a side waiting two working days for the other is
reminded once per wait; five working days after the request without a decision, the area's
administrator is told; still undecided at the school's cutoff, the request expires and the student
stays on the roster. The school may withdraw its own request while it is open (issue 16: a slow decision
must not keep the school from confirming); the student stays on the roster.

Issue 16: a request the school has excused under R11 (its student marked as a "dropout request" exception) when
the cutoff passes does not expire: the school confirmed without waiting, so the district still decides, and its
decision is applied after the cutoff (the audit trail says so). The request stays open, with its reminders and
escalation, for as long as the round keeps a late school's workflow open (the round's policy `late_grace`,
30 days by default): the district gets the time the round gives a late school and no more, the bound is
per-round data already, and the request then expires as before. A request not excused at the cutoff expires there.

The workflow state holds no free text and no personal data: the thread's text lives in the database,
the state keeps each entry's id, kind, side, author id and instant.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.refusals import refusal
from domain.rounds import RoundPolicy
from domain.school_round import Actor
from domain.working_days import working_deadline

# The ministry's dropout tracking categories (domain.md), code → (Thai, English).
REASONS: dict[str, tuple[str, str]] = {
    "transport": ("ปัญหาการเดินทาง", "transport"),
    "health": ("ปัญหาสุขภาพ", "health"),
    "disability": ("ความพิการ", "disability"),
    "at_risk": ("กลุ่มเสี่ยง", "at-risk group"),
    "disaster": ("ประสบภัยพิบัติ", "disaster"),
    "family_necessity": ("ความจำเป็นของครอบครัว", "family necessity"),
    "broke_rules": ("ทำผิดระเบียบของสถานศึกษา", "broke school rules"),
    "family_situation": ("ปัญหาครอบครัว", "family situation"),
    "low_income": ("ฐานะยากจน", "low income"),
    "social_adjustment": ("ปรับตัวเข้ากับสังคมไม่ได้", "social adjustment"),
    "finished_compulsory": ("จบการศึกษาภาคบังคับ", "finished compulsory education"),
    "over_age": ("อายุเกินเกณฑ์", "over age"),
    "other_agency": ("ไปเรียนกับหน่วยงานอื่น", "enrolled with another agency"),
    "abroad": ("ไปศึกษาต่อต่างประเทศ", "studying abroad"),
    "moved_home": ("ย้ายที่อยู่", "moved home"),
    "unspecified": ("ไม่ระบุสาเหตุ", "unspecified"),
}

REMIND_AFTER_WORKING_DAYS = 2
ESCALATE_AFTER_WORKING_DAYS = 5
MAX_THREAD = 60  # entries per request: keeps the workflow's history bounded

Status = Literal["waiting_district", "waiting_school", "approved", "rejected", "expired", "failed", "withdrawn"]
OPEN_STATUSES = ("starting", "waiting_district", "waiting_school")
STATUS_TH = {
    "starting": "กำลังเปิดเรื่อง", "waiting_district": "รอเขตพื้นที่พิจารณา", "waiting_school": "รอโรงเรียนตอบ",
    "approved": "อนุมัติให้ออกกลางคัน", "rejected": "ไม่อนุมัติ", "expired": "หมดเวลา ไม่ได้พิจารณา",
    "failed": "ดำเนินการไม่สำเร็จ", "withdrawn": "โรงเรียนถอนคำขอ",
}


def reason_code(code: str) -> str:
    if code not in REASONS:
        choices = ", ".join(REASONS)
        raise refusal("dropout_reason_unknown", f"สาเหตุการออกกลางคันไม่อยู่ในรายการของกระทรวง: {code} (เลือกจาก {choices})",
                      f"Not one of the ministry's dropout reasons: {code} (one of {choices})", 422)
    return code


class DropoutInput(BaseModel):
    request_id: str
    round_id: str
    school_code: str
    area: str
    reason: str  # a REASONS code; the details are in the database


class DropoutCalendar(BaseModel):
    """What the workflow needs from outside, looked up by an activity: the school's cutoff and holidays."""

    cutoff_at: datetime
    holidays: list[date] = Field(default_factory=list)


class ThreadEntry(BaseModel):
    message_id: int
    kind: Literal["request", "question", "answer", "note", "approve", "reject", "expired", "withdrawn"]
    side: Literal["school", "district", "system"]
    by: str | None = None
    at: datetime


class DropoutState(BaseModel):
    status: Status = "waiting_district"
    opened_at: datetime
    waiting_since: datetime  # when the side now waited on started waiting
    waits: int = 1  # the number of the current wait: one reminder per wait
    reminded_wait: int = 0
    escalated_at: datetime | None = None
    thread: list[ThreadEntry] = Field(default_factory=list)
    decided_by: str | None = None
    decided_at: datetime | None = None
    # set when the cutoff passed with the request excused under R11: it stays open for the district until then
    held_until: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status in ("waiting_district", "waiting_school")


class OpenDropout(BaseModel):
    """The school's staff open the request the API staged (its id is the workflow's)."""

    actor: Actor


class CommentDropout(BaseModel):
    message_id: int  # the staged thread entry in the database
    actor: Actor
    area: str | None = Field(None, description="the officer's area, checked against the request's")
    school_code: str | None = Field(None, description="the school user's school, checked against the request's")


class DecideDropout(BaseModel):
    message_id: int  # the staged decision entry, holding the reason
    approve: bool
    actor: Actor
    area: str | None = None


class WithdrawDropout(BaseModel):
    """The school takes its own request back: the staged entry holds its reason."""

    message_id: int
    actor: Actor


def _side(inp: DropoutInput, actor: Actor, area: str | None, school_code: str | None) -> str:
    if actor.role == "district" and area == inp.area:
        return "district"
    if actor.role in ("staff", "director") and school_code == inp.school_code:
        return "school"
    raise refusal("forbidden", "เฉพาะโรงเรียนเจ้าของเรื่องและเจ้าหน้าที่เขตพื้นที่ของโรงเรียน",
                  "Only the school and a district officer of its area take part in the consultation", 403)


def hold_until(cutoff_at: datetime, policy: RoundPolicy) -> datetime:
    """Until when a request excused under R11 at the school's cutoff stays open for the district (module docstring)."""
    return cutoff_at + policy.late_grace


def closes_at(state: DropoutState, cutoff_at: datetime) -> datetime:
    """The instant the request stops taking entries and decisions: the school's cutoff, or the end of its hold."""
    return max(cutoff_at, state.held_until) if state.held_until is not None else cutoff_at


def _check_open(inp: DropoutInput, state: DropoutState, now: datetime, cutoff_at: datetime) -> None:
    if not state.open:
        raise refusal("dropout_closed", f"คำขอ {inp.request_id} ได้ข้อยุติแล้ว ({STATUS_TH[state.status]})",
                      f"Request {inp.request_id} is already settled ({state.status})")
    if now >= closes_at(state, cutoff_at):
        if state.held_until is not None:
            raise refusal("dropout_cutoff_passed", "พ้นระยะที่คำขอเปิดไว้ให้เขตพื้นที่พิจารณาหลังกำหนดของรอบแล้ว "
                          "คำขอนี้ปิดโดยไม่ได้พิจารณา",
                          "The time the request stayed open after the round's cutoff has passed: it closes undecided")
        raise refusal("dropout_cutoff_passed", "พ้นกำหนดของรอบแล้ว คำขอนี้ปิดโดยไม่ได้พิจารณา",
                      "The round's cutoff has passed: this request closes undecided")


def check_comment(inp: DropoutInput, state: DropoutState, c: CommentDropout, now: datetime,
                  cutoff_at: datetime) -> str:
    """The entry's kind: a district question, a school answer, or a school note while the district has it."""
    side = _side(inp, c.actor, c.area, c.school_code)
    _check_open(inp, state, now, cutoff_at)
    if len(state.thread) >= MAX_THREAD:
        raise refusal("dropout_thread_full", f"คำขอนี้มีข้อความครบ {MAX_THREAD} รายการแล้ว โปรดติดต่อเขตพื้นที่โดยตรง",
                      f"This request already has {MAX_THREAD} messages; contact the district directly")
    if side == "district":
        return "question"
    return "answer" if state.status == "waiting_school" else "note"


def check_decide(inp: DropoutInput, state: DropoutState, d: DecideDropout, now: datetime, cutoff_at: datetime) -> None:
    """The district of the school's area, while the request is open: before the cutoff, or after it while a request
    the school excused under R11 is held open (`state.held_until`)."""
    if d.actor.role != "district" or d.area != inp.area:
        raise refusal("forbidden", "เฉพาะเจ้าหน้าที่เขตพื้นที่ของโรงเรียนนี้พิจารณาได้",
                      "Only a district officer of the school's area may decide", 403)
    _check_open(inp, state, now, cutoff_at)


def check_withdraw(inp: DropoutInput, state: DropoutState, w: WithdrawDropout, now: datetime,
                   cutoff_at: datetime) -> None:
    """Staff of the requesting school, while the request is open (before the cutoff, or while held past it)."""
    if w.actor.role != "staff" or w.actor.school_code != inp.school_code:
        raise refusal("forbidden", "เฉพาะเจ้าหน้าที่ของโรงเรียนที่ยื่นคำขอถอนคำขอได้",
                      "Only staff of the requesting school may withdraw its request", 403)
    _check_open(inp, state, now, cutoff_at)


def apply_comment(state: DropoutState, entry: ThreadEntry) -> None:
    """A question hands the request to the school, an answer back to the district; each starts a new wait."""
    state.thread.append(entry)
    if entry.kind in ("question", "answer"):
        state.status = "waiting_school" if entry.kind == "question" else "waiting_district"
        state.waiting_since = entry.at
        state.waits += 1


Due = Literal["remind_district", "remind_school", "escalate", "cutoff"]


def next_due(state: DropoutState, calendar: DropoutCalendar) -> tuple[datetime, Due]:
    """The next instant the consultation's clock must act on, and what it does then. "cutoff" is the school's cutoff,
    or the end of the hold of a request excused at it."""
    due: list[tuple[datetime, Due]] = [(closes_at(state, calendar.cutoff_at), "cutoff")]
    if state.reminded_wait < state.waits:
        due.append((working_deadline(state.waiting_since, REMIND_AFTER_WORKING_DAYS, calendar.holidays),
                    "remind_district" if state.status == "waiting_district" else "remind_school"))
    if state.escalated_at is None:
        due.append((working_deadline(state.opened_at, ESCALATE_AFTER_WORKING_DAYS, calendar.holidays), "escalate"))
    return min(due, key=lambda d: d[0])
