"""The area's batch steps for an area-timed round (issue 18): what the area's schools still await, the reminders
of one instant, and the cutoff (`late`, audit events and the escalation), each in one transaction.

Each is idempotent: the outbox keys and the audit keys are the per-school ones, and a row moved to `late` is
marked handled (`escalated_at`) in the same statement, so a retried step finds its own effect and stops there.
Mail is enqueued here and delivered by `area_deliver`, beside the area's loop.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from db.engine import session_scope
from db.models import AuditEvent, OutboxMail, Round, School, SchoolEmail, SchoolRound, User, utcnow
from dmcflow.settings import Settings
from domain.messages import AreaInstant, AreaSchedule
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import Decision, Stage, stage_at
from mailer import outbox
from mailer.render import render
from workflows import activity_calls as calls
from workflows import search_attributes as sa
from workflows.ids import area_key

# As the school's own loop had it: a reminder whose instant passed more than this long ago (the round started
# late, the worker was down for hours) is skipped rather than sent out of its moment.
REMINDER_TOLERANCE = timedelta(minutes=15)
DELIVERY_CONCURRENCY = 8


def _utc(at: datetime) -> datetime:
    return at.astimezone(timezone.utc)


def reminder_key(round_id: str, school_code: str, due: datetime) -> str:
    # the school's own loop used the same key (its instants came from the database, in UTC): a round whose
    # schools kept their own timers and an area that reminds them could never both send one reminder
    return f"reminder/{round_id}/{school_code}/{_utc(due).isoformat()}"


def escalation_key(round_id: str, area: str, cutoff: datetime) -> str:
    return f"escalation/{round_id}/{area_key(area)}/{_utc(cutoff).isoformat()}"


def _policy(session: Session, round_id: str) -> RoundPolicy:
    rnd = session.get(Round, round_id)
    return RoundPolicy.model_validate(rnd.policy if rnd else {})


def _instants(cutoff: datetime, opens: datetime, policy: RoundPolicy) -> list[datetime]:
    return [i for i in (cutoff - off for off in policy.reminders_before_cutoff) if i >= opens]


def area_schedule(session: Session, round_id: str, area: str, since: datetime | None,
                  policy: RoundPolicy | None = None) -> AreaSchedule:
    """The area's next reminder instant after `since`, its next cutoff not yet handled, and when its last
    uncertified school closes: one query over the area's uncertified rows (about 122 in a national round)."""
    policy = policy or _policy(session, round_id)
    rows = session.exec(select(SchoolRound.cutoff_at, SchoolRound.opens_at, SchoolRound.escalated_at).where(
        SchoolRound.round_id == round_id, SchoolRound.area == area, SchoolRound.certified_at.is_(None))).all()
    if not rows:
        return AreaSchedule()
    waiting = [(cutoff, opens) for cutoff, opens, escalated in rows if escalated is None]
    reminders = [i for cutoff, opens in waiting for i in _instants(cutoff, opens, policy)
                 if since is None or i > since]
    return AreaSchedule(next_reminder=min(reminders, default=None),
                        next_cutoff=min((cutoff for cutoff, _ in waiting), default=None),
                        close_at=max(cutoff for cutoff, _, _ in rows) + policy.late_grace)


def _emails(session: Session, codes: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {c: [] for c in codes}
    for code, email in session.exec(select(SchoolEmail.school_code, SchoolEmail.email).where(
            SchoolEmail.school_code.in_(codes)).order_by(SchoolEmail.school_code, SchoolEmail.id)):
        out[code].append(email)
    return out


def _names(session: Session, codes: list[str]) -> dict[str, str]:
    return dict(session.exec(select(School.code, School.name).where(School.code.in_(codes))).all())


def _enqueue_many(session: Session, settings: Settings, mails: list[dict]) -> list[str]:
    """One batch into the outbox; keys already there (a retried step) are left as they are. Answers every key."""
    if not mails:
        return []
    keys = [m["key"] for m in mails]
    existing = set(session.exec(select(OutboxMail.key).where(OutboxMail.key.in_(keys))).all())
    rows = []
    for m in mails:
        if m["key"] in existing:
            continue
        subject = outbox.one_line(m["subject"])  # as outbox.enqueue writes one
        subject = subject if len(subject) <= 300 else subject[:299] + "…"
        rows.append(OutboxMail(key=m["key"], kind=m["kind"], recipients=m["to"], subject=subject,
                               body_text=m["body"].replace("\x00", ""),
                               message_id=outbox.message_id_for(m["key"], settings)))
    session.add_all(rows)
    return keys


async def certified_in_visibility(client: Client, round_id: str, area: str) -> set[str]:
    """Schools of the area whose certification was accepted, from the DmcStage search attribute: it is upserted
    when the workflow accepts the certification, while the projection row may still wait for its write (a worker
    that died mid-write is noticed only at the activity's timeout). Used by the area's late step and by the older
    rounds' escalation step."""
    query = (f"WorkflowType = 'SchoolRoundWorkflow' AND {sa.ROUND.name} = {json.dumps(round_id)} "
             f"AND {sa.AREA.name} = {json.dumps(area, ensure_ascii=False)} "
             f"AND {sa.STAGE.name} = '{Stage.certified.value}'")
    try:
        return {w.id.rsplit("/", 1)[-1] async for w in client.list_workflows(query)}
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server has no visibility
            raise
        return set()


class AreaRoundActivities:
    def __init__(self, engine: Engine, settings: Settings, client: Client) -> None:
        self.engine = engine
        self.settings = settings
        self.client = client

    @activity.defn(name=calls.AREA_SCHEDULE)
    def area_schedule(self, step: AreaInstant) -> AreaSchedule:
        with session_scope(self.engine) as session:
            return area_schedule(session, step.round_id, step.area, step.since)

    # --- the reminders of one instant ---------------------------------------------------------------

    @activity.defn(name=calls.AREA_REMINDERS)
    def area_reminders(self, step: AreaInstant) -> AreaSchedule:
        """Every reminder of the area's uncertified schools due in (since, at]: rendered and enqueued in one
        transaction. `now` is the later of the workflow's instant and this attempt's: a step retried long
        after its instant sends nothing stale."""
        now = max(step.at, activity.info().current_attempt_scheduled_time)
        with session_scope(self.engine) as session:
            policy = _policy(session, step.round_id)
            rows = session.exec(select(SchoolRound).where(
                SchoolRound.round_id == step.round_id, SchoolRound.area == step.area,
                SchoolRound.certified_at.is_(None), SchoolRound.escalated_at.is_(None),
                SchoolRound.cutoff_at > now)).all()
            due = [(row, i) for row in rows for i in _instants(row.cutoff_at, row.opens_at, policy)
                   if (step.since is None or i > step.since) and i <= step.at and now - i <= REMINDER_TOLERANCE]
            codes = sorted({row.school_code for row, _ in due})
            names, emails = _names(session, codes), _emails(session, codes)
            mails = []
            for row, i in due:
                confirmed = Decision(by=row.confirmed_by or "", at=row.confirmed_at) if row.confirmed_at else None
                schedule = Schedule(opens_at=row.opens_at, confirm_from=row.confirm_from, cutoff_at=row.cutoff_at)
                subject, body = render(
                    "reminder.txt.j2", round_id=step.round_id, school_code=row.school_code,
                    school_name=names.get(row.school_code, row.school_code),
                    stage=stage_at(now, schedule, confirmed, None).value, cutoff_at=row.cutoff_at,
                    time_left=row.cutoff_at - i,
                    link=f"{self.settings.public_url}/rounds/{step.round_id}/schools/{row.school_code}")
                mails.append({"key": reminder_key(step.round_id, row.school_code, i), "kind": "reminder",
                              "to": emails.get(row.school_code, []), "subject": subject, "body": body})
            keys = _enqueue_many(session, self.settings, mails)
            plan = area_schedule(session, step.round_id, step.area, step.at, policy)
        return plan.model_copy(update={"reminded": len(codes), "mail": keys})

    # --- the cutoff ---------------------------------------------------------------------------------

    @activity.defn(name=calls.AREA_LATE)
    async def area_late(self, step: AreaInstant) -> AreaSchedule:
        certified = await self._certified_in_visibility(step)
        return await asyncio.to_thread(self._late, step, certified)

    async def _certified_in_visibility(self, step: AreaInstant) -> set[str]:
        return await certified_in_visibility(self.client, step.round_id, step.area)

    def _late(self, step: AreaInstant, certified: set[str]) -> AreaSchedule:
        """One statement moves every uncertified school whose cutoff passed to `late` (and marks it handled),
        one batch writes their audit events, one mail tells the district. The version is not touched: the
        school's own next write (if any) carries a higher one and keeps `late` unless its cutoff moved
        (db/projection.py write_transition)."""
        with session_scope(self.engine) as session:
            policy = _policy(session, step.round_id)
            due = (SchoolRound.round_id == step.round_id, SchoolRound.area == step.area,
                   SchoolRound.certified_at.is_(None), SchoolRound.escalated_at.is_(None),
                   SchoolRound.cutoff_at <= step.at)
            if certified:  # handled at this cutoff, but not late: their certification is being projected
                session.execute(update(SchoolRound).where(*due, SchoolRound.school_code.in_(sorted(certified)))
                                .values(escalated_at=step.at).execution_options(synchronize_session=False))
            moved = session.execute(
                update(SchoolRound).where(*due, SchoolRound.school_code.not_in(sorted(certified)))
                .values(stage=Stage.late.value, escalated_at=step.at, updated_at=utcnow())
                .returning(SchoolRound.school_code, SchoolRound.cutoff_at, SchoolRound.confirmed_at)
                .execution_options(synchronize_session=False)).all()
            moved = sorted(moved)
            if moved:
                session.execute(insert(AuditEvent), [
                    {"key": f"late/{step.round_id}/{code}/{_utc(cutoff).isoformat()}", "at": cutoff, "actor": "system",
                     "action": "late", "round_id": step.round_id, "school_code": code, "area": step.area,
                     "before": None, "after": {"stage": Stage.late.value}, "reason": None}
                    for code, cutoff, _ in moved])
            keys = self._escalate(session, step, policy, moved) if moved and policy.escalate_at_cutoff else []
            plan = area_schedule(session, step.round_id, step.area, step.since, policy)
        return plan.model_copy(update={"late": len(moved), "mail": keys})

    def _escalate(self, session: Session, step: AreaInstant, policy: RoundPolicy, moved: list) -> list[str]:
        codes = [code for code, _, _ in moved]
        names, emails = _names(session, codes), _emails(session, codes)
        schools = [{"code": code, "name": names.get(code, ""), "confirmed": confirmed_at is not None,
                    "emails": emails.get(code, [])} for code, _, confirmed_at in moved]
        cutoff = max(cutoff for _, cutoff, _ in moved)
        officers = list(session.exec(select(User.email).where(
            User.role == "district", User.area == step.area, User.active, User.email.is_not(None))))
        subject, body = render("escalation.txt.j2", round_id=step.round_id, area=step.area, cutoff_at=cutoff,
                               schools=schools)
        return _enqueue_many(session, self.settings, [{"key": escalation_key(step.round_id, step.area, cutoff),
                                                       "kind": "escalation", "to": officers, "subject": subject,
                                                       "body": body}])

    # --- delivery -------------------------------------------------------------------------------------

    @activity.defn(name=calls.AREA_DELIVER)
    async def area_deliver(self, keys: list[str]) -> int:
        """Deliver a step's mails (a few at a time); those sent already are skipped. Raises, after trying every
        one, while the mail server is unreachable: the retry sends only what is still pending."""
        gate = asyncio.Semaphore(DELIVERY_CONCURRENCY)

        async def one(key: str) -> bool:
            async with gate:
                return await outbox.deliver(self.engine, self.settings, key)

        results = await asyncio.gather(*(one(k) for k in keys), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        return sum(bool(r) for r in results)
