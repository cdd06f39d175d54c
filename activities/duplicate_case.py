"""Activities of duplicate cases: the rosters' side of an outcome, and the mail to schools and district."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity

from activities.deferred_notices import enqueue_deferral_notices
from activities.school_round import school_emails
from db.duplicates import apply_outcome, hand_to_district, mark_opened, party_cutoffs, record_declarations
from db.engine import session_scope
from db.models import DuplicateCase, School, Student, User
from dmcflow.settings import Settings
from domain.duplicates import AGENCIES
from mailer import outbox
from mailer.render import render
from workflows import activity_calls as calls


class DuplicateCaseActivities:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @activity.defn(name=calls.RECORD_DUPLICATE_DECLARATIONS)
    def record_duplicate_declarations(self, case_id: str, declarations: dict, decision: dict | None) -> None:
        with session_scope(self.engine) as session:
            record_declarations(session, case_id, declarations, decision)

    @activity.defn(name=calls.OPEN_DUPLICATE_CASE)
    def open_duplicate_case(self, case_id: str, by: str, at: datetime) -> None:
        with session_scope(self.engine) as session:
            mark_opened(session, case_id, by, at)

    @activity.defn(name=calls.RESOLVE_DUPLICATE)
    def resolve_duplicate(self, case_id: str, outcome: str, at: datetime) -> None:
        with session_scope(self.engine) as session:
            apply_outcome(session, case_id, outcome, at)

    @activity.defn(name=calls.DUPLICATE_CUTOFFS)
    def duplicate_cutoffs(self, case_id: str) -> list[datetime]:
        with session_scope(self.engine) as session:
            return party_cutoffs(session, case_id)

    @activity.defn(name=calls.HAND_DUPLICATE_TO_DISTRICT)
    async def hand_duplicate_to_district(self, case_id: str, at: datetime) -> int:
        """Open at the cutoff: the case is the district's, and its officers get both declarations by mail."""
        def hand() -> list[str]:
            with session_scope(self.engine) as session:
                if not hand_to_district(session, case_id, at):
                    return []
            return self._enqueue(case_id, "cutoff")

        keys = await asyncio.to_thread(hand)
        for key in keys:
            await outbox.deliver(self.engine, self.settings, key)
        return len(keys)

    @activity.defn(name=calls.NOTIFY_DUPLICATE)
    async def notify_duplicate(self, case_id: str, event: str) -> int:
        keys = await asyncio.to_thread(self._enqueue, case_id, event)
        for key in keys:
            await outbox.deliver(self.engine, self.settings, key)
        return len(keys)

    def _enqueue(self, case_id: str, event: str) -> list[str]:
        with session_scope(self.engine) as session:
            case = session.get(DuplicateCase, case_id)
            student = session.get(Student, case.student_pk)
            parties = [s for s in (case.holder_school, case.claimant_school) if s]
            schools = {code: session.get(School, code) for code in parties}
            context = {
                "case": case, "student_name": f"{student.prefix}{student.first_name} {student.last_name}".strip(),
                "student_id": case.student_id, "schools": schools, "agency": AGENCIES.get(case.agency or "", ("", "")),
                "link": f"{self.settings.public_url}/rounds/{case.round_id}/duplicates",
                "declarations": case.declarations,
            }
            keys = []
            if event in ("to_district", "claimed", "cutoff"):
                # the holder's district alone opens and decides a case: only it is told the student's name
                area = schools[case.holder_school].area
                officers = list(session.exec(select(User.email).where(
                    User.role == "district", User.area == area, User.active, User.email.is_not(None))))
                subject, body = render(f"duplicate_{event}.txt.j2", **context)
                key = f"duplicate/{case_id}/{event}"
                outbox.enqueue(session, self.settings, key=key, kind="duplicate", to=officers, subject=subject,
                               body=body)
                return [key]
            if event == "dismissed":
                parties = [case.claimant_school]
            for code in parties:
                # the claimant is told nothing of the student's record or the school that has them (finding 3)
                claimant = case.kind == "obec" and code == case.claimant_school
                subject, body = render(f"duplicate_{event}.txt.j2", school=schools[code], claimant=claimant,
                                       **(context | ({"student_name": "", "schools": {code: schools[code]}}
                                                     if claimant else {})))
                key = f"duplicate/{case_id}/{event}/{code}"
                outbox.enqueue(session, self.settings, key=key, kind="duplicate", to=school_emails(session, code),
                               subject=subject, body=body)
                keys.append(key)
            if event == "resolved":  # a side that waits for the next round (a certified school): it and its district
                keys += enqueue_deferral_notices(session, self.settings, case_id)
            return keys
