"""Activities of dropout consultations (R8): the database side of each step, and the mail."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity

from activities.deferred_notices import enqueue_deferral_notices
from activities.school_round import school_emails
from db import deferred_changes, dropouts
from db.engine import session_scope
from db.models import DropoutMessage, DropoutRequest, School, SchoolRound, Student, User
from dmcflow.settings import Settings
from domain.dropouts import REASONS, STATUS_TH, DropoutCalendar
from mailer import outbox
from mailer.render import render
from workflows import activity_calls as calls

# event → (template, audience)
_MAIL = {
    "requested": ("dropout_requested.txt.j2", "district"),
    "question": ("dropout_question.txt.j2", "school"),
    "answer": ("dropout_answer.txt.j2", "district"),
    "remind_district": ("dropout_remind_district.txt.j2", "district"),
    "remind_school": ("dropout_remind_school.txt.j2", "school"),
    "escalate": ("dropout_escalate.txt.j2", "administrators"),
    "withdrawn": ("dropout_withdrawn.txt.j2", "district"),  # nothing left for the district to decide
    "held": ("dropout_held.txt.j2", "district"),  # the school's cutoff passed; the district still decides
}
_OUTCOMES = ("approved", "rejected", "expired", "failed")


def district_officers(session: Session, area: str) -> list[str]:
    return list(session.exec(select(User.email).where(User.role == "district", User.area == area, User.active,
                                                      User.email.is_not(None))))


def area_administrators(session: Session, area: str) -> list[str]:
    """The area's own administrators; where the area has none, every administrator without an area."""
    admins = select(User.email).where(User.role == "admin", User.active, User.email.is_not(None))
    return list(session.exec(admins.where(User.area == area))) or list(session.exec(admins.where(User.area.is_(None))))


class DropoutActivities:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @activity.defn(name=calls.OPEN_DROPOUT)
    def open_dropout(self, request_id: str) -> None:
        with session_scope(self.engine) as session:
            dropouts.open_request(session, request_id)

    @activity.defn(name=calls.DROPOUT_CALENDAR)
    def dropout_calendar(self, request_id: str) -> DropoutCalendar:
        with session_scope(self.engine) as session:
            return dropouts.calendar_for(session, request_id, self.settings.holiday_files, self.settings.extra_holidays)

    @activity.defn(name=calls.POST_DROPOUT_MESSAGE)
    def post_dropout_message(self, request_id: str, message_id: int, kind: str, status: str, at: datetime) -> None:
        with session_scope(self.engine) as session:
            dropouts.post_message(session, request_id, message_id, kind, status, at)

    @activity.defn(name=calls.SETTLE_DROPOUT)
    def settle_dropout(self, request_id: str, outcome: str, by: str | None, at: datetime,
                       message_id: int | None) -> str:
        with session_scope(self.engine) as session:
            return dropouts.settle(session, request_id, outcome, by, at, message_id)

    @activity.defn(name=calls.HOLD_DROPOUT_PAST_CUTOFF)
    def hold_dropout_past_cutoff(self, request_id: str, at: datetime) -> datetime | None:
        with session_scope(self.engine) as session:
            return dropouts.hold_past_cutoff(session, request_id, at)

    @activity.defn(name=calls.NOTIFY_DROPOUT)
    async def notify_dropout(self, request_id: str, event: str, ref: str) -> int:
        keys = await asyncio.to_thread(self._enqueue, request_id, event, ref)
        for key in keys:
            await outbox.deliver(self.engine, self.settings, key)
        return len(keys)

    def _enqueue(self, request_id: str, event: str, ref: str) -> list[str]:
        with session_scope(self.engine) as session:
            req = session.get(DropoutRequest, request_id)
            school = session.get(School, req.school_code)
            student = session.get(Student, req.student_pk)
            school_round = session.get(SchoolRound, (req.round_id, req.school_code))
            messages = list(session.exec(select(DropoutMessage).where(DropoutMessage.request_id == request_id,
                                                                      DropoutMessage.posted)
                                         .order_by(DropoutMessage.id)))
            context = {
                "req": req, "school": school, "student": student,
                "student_name": f"{student.prefix}{student.first_name} {student.last_name}".strip(),
                "reason_th": REASONS[req.reason][0], "reason_en": REASONS[req.reason][1],
                # the instant the request closes: the school's cutoff, or the end of a hold past it
                "status_th": STATUS_TH[req.status], "cutoff_at": dropouts.closes_at(session, req),
                "waiting_since": next((m.at for m in reversed(messages) if m.kind in ("request", "question", "answer")),
                                      req.requested_at),
                "link": f"{self.settings.public_url}/rounds/{req.round_id}/dropouts/{req.id}",
            }
            if event == "withdrawn":
                template, audience = _MAIL[event]
                withdrawal = next((m for m in reversed(messages) if m.kind == "withdrawn"), None)
                context["withdrawal_text"] = withdrawal.text if withdrawal else ""
            elif event in _OUTCOMES:
                template, audience = "dropout_outcome.txt.j2", "school"
                decision = next((m for m in reversed(messages) if m.kind in ("approve", "reject")), None)
                context["decision_text"] = decision.text if decision else ""
                context["after_cutoff"] = event in ("approved", "rejected") and dropouts.after_cutoff(session, req)
                # approved after the school certified: recorded for the next round (db/deferred_changes.py)
                context["deferred"] = bool(deferred_changes.pending_for(session, request_id))
            elif event == "held":
                template, audience = _MAIL[event]
                context["school_cutoff_at"] = school_round.cutoff_at
            else:
                template, audience = _MAIL[event]
            if event in ("question", "answer"):
                context["message"] = session.get(DropoutMessage, int(ref))
            to = {"school": lambda: school_emails(session, req.school_code),
                  "district": lambda: district_officers(session, req.area),
                  "administrators": lambda: area_administrators(session, req.area)}[audience]()
            subject, body = render(template, **context)
            key = f"dropout/{request_id}/{event}" + (f"/{ref}" if ref else "")
            outbox.enqueue(session, self.settings, key=key, kind="dropout", to=to, subject=subject, body=body)
            if event == "approved":  # a deferred approval: the school and its district are told it waits
                return [key, *enqueue_deferral_notices(session, self.settings, request_id)]
            return [key]
