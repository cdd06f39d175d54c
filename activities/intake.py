"""Activities of the ID-correction intake: decide a stored message, reply, apply a decision, tell the school."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity

from activities.deferred_notices import enqueue_deferral_notices
from activities.school_round import school_emails
from db.engine import session_scope
from db.id_corrections import apply_correction, canonical_for_message_id, decide_message, follow_cutoff, \
    follow_up, registered_schools, sender_area, settle
from db.models import IdCorrection, InboundMessage, OutboxMail, School, Student, utcnow
from dmcflow.settings import Settings
from domain.id_corrections import digits_sent
from domain.intake_messages import InboundOutcome
from intake.email_parser import Field, parse_message, too_large
from intake.mime_limits import MimeLimits
from mailer import outbox
from mailer.render import render
from workflows import activity_calls as calls


class IntakeActivities:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @activity.defn(name=calls.PROCESS_INBOUND)
    def process_inbound(self, sha256: str) -> InboundOutcome:
        """Idempotent: a message already processed answers what it answered the first time."""
        with session_scope(self.engine) as session:
            row = session.get(InboundMessage, sha256)
            reply_key = f"reply/{sha256}"
            if row.status == "duplicate":
                return InboundOutcome(outcome="duplicate")
            if row.status == "refused":  # refused at the door: nothing to decide, nobody to answer
                return InboundOutcome(outcome=row.outcome or "refused")
            if row.status == "processed":
                rows = session.exec(select(IdCorrection).where(IdCorrection.message_sha == sha256)).all()
                return InboundOutcome(outcome=row.outcome or "", requests=follow_up(rows),
                                      reply_key=reply_key if session.get(OutboxMail, reply_key) else None)
            if not row.auth_domain:
                return self._refuse(session, row, "refused:not_authenticated")  # stored past the door (by hand)
            if not canonical_for_message_id(session, row):
                row.status, row.outcome, row.processed_at = "duplicate", "duplicate", utcnow()
                session.add(row)
                return InboundOutcome(outcome="duplicate")  # same Message-ID: no second request, no second reply
            parsed = parse_message(row.raw, max_bytes=self.settings.intake_max_bytes, limits=MimeLimits(
                self.settings.intake_max_mime_parts, self.settings.intake_max_mime_depth,
                self.settings.intake_max_decoded_bytes))
            if row.truncated:
                parsed = dataclasses.replace(parsed, problem=too_large(self.settings.intake_max_bytes))
            if parsed.sender is None or parsed.sender.rsplit("@", 1)[1] != row.auth_domain:
                return self._refuse(session, row, "refused:not_authenticated")  # read otherwise than at the door
            rows, problem = decide_message(session, row, parsed)
            if not rows and not registered_schools(session, parsed.sender):
                return self._refuse(session, row, row.outcome)  # registered for no school (any more): no reply
            # exactly one reply, to the authenticated, registered sender
            school = session.get(School, row.school_code) if row.school_code else None
            names = {r.id: _roster_name(session, r.student_pk) for r in rows}
            subject, body = render("id_correction_reply.txt.j2", rows=rows, names=names, school=school,
                                   received_at=row.received_at, problem=problem, sent=_new_ids_sent(rows, parsed))
            outbox.enqueue(session, self.settings, key=reply_key, kind="id_correction_reply", to=[parsed.sender],
                           subject=subject, body=body, in_reply_to=parsed.message_id)
            row.status, row.processed_at = "processed", utcnow()
            session.add(row)
            return InboundOutcome(outcome=row.outcome or "", requests=follow_up(rows), reply_key=reply_key)

    @staticmethod
    def _refuse(session, row: InboundMessage, outcome: str | None) -> InboundOutcome:
        """Kept, listed for the district with its reason, changes nothing, and gets no reply."""
        row.status, row.outcome, row.processed_at = "refused", outcome or "refused", utcnow()
        row.area = row.area or sender_area(session, row.sender)
        session.add(row)
        return InboundOutcome(outcome=row.outcome)

    @activity.defn(name=calls.APPLY_ID_CORRECTION)
    def apply_id_correction(self, ref: str, actor: str, at: datetime) -> str:
        with session_scope(self.engine) as session:
            return apply_correction(session, ref, actor, at).status

    @activity.defn(name=calls.SETTLE_ID_CORRECTION)
    def settle_id_correction(self, ref: str, status: str, by: str | None, at: datetime, reason: str | None) -> str:
        with session_scope(self.engine) as session:
            return settle(session, ref, status, by, at, reason).status

    @activity.defn(name=calls.ID_CORRECTION_CUTOFF)
    def id_correction_cutoff(self, ref: str) -> datetime:
        with session_scope(self.engine) as session:
            return follow_cutoff(session, ref)

    @activity.defn(name=calls.NOTIFY_ID_CORRECTION)
    async def notify_id_correction(self, ref: str) -> bool:
        key, notices = await asyncio.to_thread(self._enqueue_outcome, ref)
        for notice in notices:  # approved after certification: the school and the district are told it waits
            await outbox.deliver(self.engine, self.settings, notice)
        return await outbox.deliver(self.engine, self.settings, key)

    def _enqueue_outcome(self, ref: str) -> tuple[str, list[str]]:
        with session_scope(self.engine) as session:
            row = session.get(IdCorrection, ref)
            message = session.get(InboundMessage, row.message_sha)
            key = f"id-correction/{ref}/{row.status}"
            subject, body = render("id_correction_outcome.txt.j2", row=row, school=session.get(School, row.school_code),
                                   name=_roster_name(session, row.student_pk))
            outbox.enqueue(session, self.settings, key=key, kind="id_correction_outcome",
                           to=school_emails(session, row.school_code), subject=subject, body=body,
                           in_reply_to=message.message_id)
            return key, enqueue_deferral_notices(session, self.settings, ref) if row.status == "deferred" else []

    @activity.defn(name=calls.DELIVER_MAIL)
    async def deliver_mail(self, key: str) -> bool:
        return await outbox.deliver(self.engine, self.settings, key)


def _new_ids_sent(rows: list[IdCorrection], parsed) -> dict[str, str]:
    """A refused new ID as the school typed it, digits only: the school sees which number was refused."""
    typed = {q.index: q.raw.get(Field.NEW_ID) for q in parsed.requests}
    return {r.id: sent for r in rows if not r.new_id and (sent := digits_sent(typed.get(r.block)))}


def _roster_name(session, student_pk: int | None) -> str | None:
    """The name on the roster, never the one typed in the email: a reply echoes nothing the sender chose."""
    student = session.get(Student, student_pk) if student_pk else None
    return " ".join(p for p in (student.first_name, student.last_name) if p) if student else None
