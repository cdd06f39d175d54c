"""Activities of the ID-correction intake: decide a stored message, reply, apply a decision, tell the school."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.deferred_notices import enqueue_deferral_notices
from activities.school_round import school_emails
from db.engine import session_scope
from db.bulk import select_in
from db.id_corrections import Known, apply_correction, canonical_for_message_id, decide_message, follow_cutoff, \
    follow_up, open_past_cutoff, read_known, sender_area, settle
from db.models import IdCorrection, InboundMessage, OutboxMail, School, Student, utcnow
from dmcflow.settings import Settings
from domain.correction_requests import Field, ParsedMessage
from domain.id_corrections import IdCorrectionInput, digits_sent
from domain.intake_messages import InboundBatch, InboundOutcome
from intake.email_parsing.message import parse_message
from intake.mime_limits import MimeLimits
from mailer import outbox
from mailer.id_correction_refusals import too_large
from mailer.render import render
from workflows import activity_calls as calls
from workflows.id_correction import IdCorrectionWorkflow
from workflows.ids import id_correction_id

log = logging.getLogger(__name__)
START_CONCURRENCY = 16  # requests' workflow starts in flight at once
DECIDE_AT_ONCE = 4  # messages of a batch decided at once on PostgreSQL


class IntakeActivities:
    def __init__(self, engine: Engine, settings: Settings, client: Client | None = None) -> None:
        """`client` starts the requests' workflows at their cutoff (expire_id_corrections); the others need none."""
        self.engine = engine
        self.settings = settings
        self.client = client

    @activity.defn(name=calls.PROCESS_INBOUND)
    def process_inbound(self, sha256: str) -> InboundOutcome:
        """Idempotent: a message already processed answers what it answered the first time."""
        return self._process_many([sha256], strict=True)[0][sha256]

    @activity.defn(name=calls.PROCESS_INBOUND_BATCH)
    def process_inbound_batch(self, shas: list[str], strict: bool = False) -> InboundBatch:
        """Decide a batch of stored messages, each in its own transaction; idempotent as `process_inbound` is.
        A message whose processing raises is named in `failed`, for the workflow to try again on its own;
        `strict` (that retry) raises instead. The requests' workflows start with their first decision
        (api.routers.id_corrections), or at their cutoff (`expire_id_corrections`)."""
        outcomes, failed = self._process_many(shas, strict)
        cutoffs = [r.cutoff_at for o in outcomes.values() for r in o.requests]
        return InboundBatch(replies={sha: o.reply_key for sha, o in outcomes.items() if o.reply_key}, failed=failed,
                            next_cutoff=min(cutoffs, default=None))

    @activity.defn(name=calls.EXPIRE_ID_CORRECTIONS)
    async def expire_id_corrections(self, now: datetime) -> datetime | None:
        """Every request still undecided at its school's current cutoff gets its workflow now, which expires
        it at once and tells the school (R4). Answers the next cutoff among the requests still open."""
        def due() -> tuple[list[IdCorrectionInput], datetime | None]:
            with session_scope(self.engine) as session:
                return open_past_cutoff(session, now)

        requests, following = await asyncio.to_thread(due)
        gate = asyncio.Semaphore(START_CONCURRENCY)

        async def start(request: IdCorrectionInput) -> None:
            async with gate:
                try:
                    await self.client.start_workflow(
                        IdCorrectionWorkflow.run, request, id=id_correction_id(request.ref),
                        task_queue=self.settings.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
                except WorkflowAlreadyStartedError:
                    pass  # decided meanwhile (its workflow started with the decision), or expiring already

        await asyncio.gather(*(start(r) for r in requests))
        if requests:
            log.info("intake: %d undecided request(s) past their cutoff handed to their workflows", len(requests))
        return following

    def _process_many(self, shas: list[str], strict: bool) -> tuple[dict[str, InboundOutcome], list[str]]:
        # The batch's rows, their parses and what deciding them reads besides (`Known`) are read once, in a few
        # queries for the whole batch; then each message is decided in its own transaction.
        with session_scope(self.engine) as session:
            rows = {r.sha256: r for r in select_in(session, select(InboundMessage), InboundMessage.sha256, shas)}
        parses = {sha: self._parse(row) for sha, row in rows.items() if row.status == "stored" and row.auth_domain}
        try:
            with session_scope(self.engine) as session:
                known = read_known(session, [(rows[sha], _parsed(p)) for sha, p in parses.items()])
        except Exception:  # noqa: BLE001  one message's odd value must not hold up the others: each reads its own
            if strict:
                raise
            log.exception("intake: the batch's lookups failed; each message reads its own")
            known = None
        # PostgreSQL decides several messages at once (a message is mostly round trips to the server); SQLite has
        # one writer, and its waiting writers sleep: one at a time
        at_once = min(len(shas), 1 if self.engine.dialect.name == "sqlite" else DECIDE_AT_ONCE)

        def one(sha: str) -> InboundOutcome | None:
            return self._process_one(sha, rows.get(sha), parses.get(sha), known, strict)

        if at_once > 1:
            with ThreadPoolExecutor(at_once, thread_name_prefix="intake-decide") as pool:
                decided = list(pool.map(one, shas))
        else:
            decided = [one(sha) for sha in shas]
        outcomes = {sha: outcome for sha, outcome in zip(shas, decided, strict=True) if outcome is not None}
        return outcomes, [sha for sha in shas if sha not in outcomes]

    def _parse(self, row: InboundMessage) -> ParsedMessage | Exception:
        """The message read (no database work); what its reading raised is raised when the message needs it."""
        try:
            parsed = parse_message(row.raw, max_bytes=self.settings.intake_max_bytes, limits=MimeLimits(
                self.settings.intake_max_mime_parts, self.settings.intake_max_mime_depth,
                self.settings.intake_max_decoded_bytes))
        except Exception as exc:  # noqa: BLE001
            return exc
        if row.truncated:
            parsed = dataclasses.replace(parsed, problem=too_large(self.settings.intake_max_bytes))
        return parsed

    def _process_one(self, sha: str, row: InboundMessage | None, parsed: ParsedMessage | Exception | None,
                     known: Known | None, strict: bool) -> InboundOutcome | None:
        """The message's outcome, or None when its processing failed (in a batch: the others go on)."""
        for attempt in range(3):
            try:
                # Nothing is written before the commit: on SQLite the first write takes the database's one write
                # lock, which the receipt path waits for (in sleeps of up to 100 ms), so it is held for the commit only.
                with session_scope(self.engine) as session, session.no_autoflush:
                    if row is None:
                        raise LookupError(f"no stored message {sha[:12]}")
                    mine = session.merge(row, load=False)  # as read for the batch: no second read of it
                    return self._decide(session, mine, parsed, known or read_known(session, [(mine, _parsed(parsed))]))
            except Exception as exc:  # noqa: BLE001  one message must not hold up the others
                if isinstance(exc, IntegrityError) and attempt < 2:
                    continue  # a message decided at the same time stored the same evidence first: now it is seen
                if strict:
                    raise
                log.exception("intake: message %s not processed in its batch; it is tried again alone", sha[:12])
                return None
        return None

    def _decide(self, session, row: InboundMessage, parsed: ParsedMessage | Exception | None,
                known: Known) -> InboundOutcome:
        sha256 = row.sha256
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
        if not canonical_for_message_id(known, row):
            row.status, row.outcome, row.processed_at = "duplicate", "duplicate", utcnow()
            session.add(row)
            return InboundOutcome(outcome="duplicate")  # same Message-ID: no second request, no second reply
        if isinstance(parsed, Exception):
            raise parsed
        if parsed.sender is None or parsed.sender.rsplit("@", 1)[1] != row.auth_domain:
            return self._refuse(session, row, "refused:not_authenticated")  # read otherwise than at the door
        rows, problem = decide_message(session, row, parsed, known)
        if not rows and not known.registered(parsed.sender):
            return self._refuse(session, row, row.outcome)  # registered for no school (any more): no reply
        # exactly one reply, to the authenticated, registered sender
        school = known.schools.get(row.school_code) if row.school_code else None
        names = {r.id: _roster_name(session, r.student_pk, known) for r in rows}
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

    @activity.defn(name=calls.DELIVER_MAILS)
    async def deliver_mails(self, keys: list[str]) -> int:
        """A batch's replies over one SMTP connection; a retry sends only those not sent yet."""
        return await outbox.deliver_many(self.engine, self.settings, keys)


def _new_ids_sent(rows: list[IdCorrection], parsed) -> dict[str, str]:
    """A refused new ID as the school typed it, digits only: the school sees which number was refused."""
    typed = {q.index: q.raw.get(Field.NEW_ID) for q in parsed.requests}
    return {r.id: sent for r in rows if not r.new_id and (sent := digits_sent(typed.get(r.block)))}


def _parsed(parsed: ParsedMessage | Exception | None) -> ParsedMessage | None:
    return parsed if isinstance(parsed, ParsedMessage) else None


def _roster_name(session, student_pk: int | None, known: Known | None = None) -> str | None:
    """The name on the roster, never the one typed in the email: a reply echoes nothing the sender chose."""
    student = ((known and known.by_pk.get(student_pk)) or session.get(Student, student_pk)) if student_pk else None
    return " ".join(p for p in (student.first_name, student.last_name) if p) if student else None
