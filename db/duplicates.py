"""Duplicate cases in the database: opening one (idempotently) and applying its outcome to the rosters."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlmodel import Session, select

from db.deferred_changes import defer, roster_is_certified
from db.engine import get_for_update
from db.models import AuditEvent, DuplicateCase, School, SchoolRound, Student
from domain.duplicates import ClaimLimits, DuplicateCaseInput

ACTIVE = "studying"


def case_id(round_id: str, kind: str, student_pk: int, counterpart: str) -> str:
    # From database keys only: the same duplicate found twice (a re-import) is the same case.
    return "dup-" + hashlib.sha256(f"{round_id}|{kind}|{student_pk}|{counterpart}".encode()).hexdigest()[:16]


def _areas(session: Session, schools: list[str]) -> list[str]:
    return sorted({session.get(School, s).area for s in schools})


CLAIMED = "claimed"  # a school's claim, waiting for the district of the holder's area
# waiting for the district's decision: both schools claim the student, or the case was open at the cutoff
AT_DISTRICT = "at_district"
OPEN_STATUSES = ("open", AT_DISTRICT)  # a case (not a bare claim) still without its outcome
CLAIM_ACTION = "duplicate_claimed"


def open_obec_case(session: Session, round_id: str, holder: Student, claimant_school: str, pending: dict, *,
                   claimed_by: str, at: datetime) -> tuple[DuplicateCase, DuplicateCaseInput, bool]:
    """A claim on a student active at `holder`'s school: a new case waits for the holder's district (answers
    True for a new one, which counts against the claimant's limits); the same claim again is the same case."""
    cid = case_id(round_id, "obec", holder.id, claimant_school)
    row = session.get(DuplicateCase, cid)
    new = row is None
    if new:
        row = DuplicateCase(id=cid, round_id=round_id, kind="obec", student_pk=holder.id, student_id=holder.student_id,
                            holder_school=holder.school_code, claimant_school=claimant_school, status=CLAIMED,
                            opened_at=at,
                            pending={k: v.isoformat() if isinstance(v, date) else v for k, v in pending.items()})
        session.add(row)
        # who claimed (the rate limits count these); nothing of the student or the holder in the claimant's trail
        session.add(AuditEvent(key=f"{cid}/claim", at=at, actor=claimed_by, action=CLAIM_ACTION, round_id=round_id,
                               school_code=claimant_school, after={"case": cid}))
    parties = [holder.school_code, claimant_school]
    return row, DuplicateCaseInput(case_id=cid, round_id=round_id, kind="obec", parties=parties,
                                   areas=_areas(session, parties), holder_area=_areas(session, parties[:1])[0]), new


def claims_left(session: Session, round_id: str, school_code: str, user_id: str, at: datetime,
                limits: ClaimLimits) -> tuple[int, int]:
    """How many more claims the user and the school may make now, and in how many seconds one more frees up."""
    since = at - limits.window
    made = session.exec(select(AuditEvent.at, AuditEvent.actor).where(
        AuditEvent.round_id == round_id, AuditEvent.school_code == school_code,  # ix_audit_round_school
        AuditEvent.action == CLAIM_ACTION, AuditEvent.at > since).order_by(AuditEvent.at)).all()
    by_user = [when for when, actor in made if actor == user_id]
    by_school = [when for when, _ in made]
    left = min(limits.per_user - len(by_user), limits.per_school - len(by_school))
    frees = [times[len(times) - limit] + limits.window for times, limit in
             ((by_user, limits.per_user), (by_school, limits.per_school)) if len(times) >= limit > 0]
    retry = max((int((f - at).total_seconds()) + 1 for f in frees), default=int(limits.window.total_seconds()))
    return max(0, left), retry


def mark_opened(session: Session, cid: str, by: str, at: datetime) -> None:
    """The holder area's district opened the claim as a case (idempotent: a retry finds it open)."""
    row = get_for_update(session, DuplicateCase, cid)
    if row.status != CLAIMED:
        return
    row.status = "open"
    session.add(row)
    session.add(AuditEvent(key=f"{cid}/open", at=at, actor=by, action="duplicate_case_opened", round_id=row.round_id,
                           school_code=row.holder_school, after={"case": cid}))


def open_affiliation_case(session: Session, round_id: str, student: Student,
                          agency: str) -> tuple[DuplicateCase, DuplicateCaseInput]:
    cid = case_id(round_id, "affiliation", student.id, agency)
    row = session.get(DuplicateCase, cid)
    if row is None:
        row = DuplicateCase(id=cid, round_id=round_id, kind="affiliation", student_pk=student.id,
                            student_id=student.student_id, holder_school=student.school_code, agency=agency)
        session.add(row)
    return row, DuplicateCaseInput(case_id=cid, round_id=round_id, kind="affiliation",
                                   parties=[student.school_code], areas=_areas(session, [student.school_code]),
                                   holder_area=_areas(session, [student.school_code])[0])


def record_declarations(session: Session, cid: str, declarations: dict, decision: dict | None) -> None:
    """Add the case's declarations and decision to its row. Both only ever grow (each school declares once, the
    district decides once), so an older write retried after a newer one adds nothing and takes nothing away."""
    row = get_for_update(session, DuplicateCase, cid)
    row.declarations = {**row.declarations, **declarations}
    row.decision = decision or row.decision
    parties = [p for p in (row.holder_school, row.claimant_school) if p]
    if (row.status == "open" and row.kind == "obec" and row.decision is None
            and all(row.declarations.get(p, {}).get("claim") == "present" for p in parties)):
        row.status = AT_DISTRICT  # the district's list shows what waits for it
    session.add(row)


def party_cutoffs(session: Session, cid: str) -> list[datetime]:
    """The parties' cutoffs as they stand now (extensions included); a party without a started round has none."""
    case = session.get(DuplicateCase, cid)
    rounds = (session.get(SchoolRound, (case.round_id, p)) for p in (case.holder_school, case.claimant_school) if p)
    return [r.cutoff_at for r in rounds if r is not None]


def hand_to_district(session: Session, cid: str, at: datetime) -> bool:
    """The case was still open at the first party's cutoff: it is the district's now (idempotent). Answers
    whether it is (a case resolved meanwhile is not)."""
    row = get_for_update(session, DuplicateCase, cid)
    if row.status not in OPEN_STATUSES:
        return False
    if row.status != AT_DISTRICT:
        row.status = AT_DISTRICT
        session.add(row)
    for school in (p for p in (row.holder_school, row.claimant_school) if p):
        key = f"{cid}/to_district/{school}"
        if session.exec(select(AuditEvent.id).where(AuditEvent.key == key)).first() is None:  # a retry writes once
            session.add(AuditEvent(key=key, at=at, actor="system", action="duplicate_to_district",
                                   round_id=row.round_id, school_code=school, after={"case": cid}))
    return True


def _leave(session: Session, student: Student, case: DuplicateCase, at: datetime) -> None:
    before = {"status": student.status}
    student.status = "transferred_out"
    session.add(student)
    session.add(AuditEvent(key=f"{case.id}/leave/{student.id}", at=at, actor="system", action="duplicate_removed",
                           round_id=case.round_id, school_code=student.school_code, before=before,
                           after={"status": student.status, "case": case.id}))


def _deferred(session: Session, case: DuplicateCase, school: str, side: str, student_pk: int | None, change: dict,
              at: datetime) -> bool:
    """A school that certified keeps its certified roster: its side of the outcome waits for the next round."""
    if not roster_is_certified(session, case.round_id, school):
        return False
    defer(session, key=f"dup/{case.id}/{side}", round_id=case.round_id, school_code=school,
          area=session.get(School, school).area, kind=f"duplicate_{side}", source=case.id, student_pk=student_pk,
          change=change, at=at)
    return True


def apply_outcome(session: Session, cid: str, outcome: str, at: datetime) -> DuplicateCase:
    """Idempotent: a resolved case is left as it is."""
    case = session.get(DuplicateCase, cid)
    if case.status == "resolved":
        return case
    holder = session.get(Student, case.student_pk)
    if outcome != case.holder_school and holder is not None and holder.status == ACTIVE:
        if not _deferred(session, case, holder.school_code, "leave", holder.id, {"status": "transferred_out"}, at):
            _leave(session, holder, case, at)
    if case.kind == "obec" and outcome == case.claimant_school and case.pending and not _deferred(
            session, case, case.claimant_school, "add", None, {**case.pending, "student_id": case.student_id}, at):
        fields = dict(case.pending)
        if fields.get("birth_date"):
            fields["birth_date"] = date.fromisoformat(fields["birth_date"])
        existing = session.exec(select(Student).where(Student.school_code == case.claimant_school,
                                                      Student.student_id == case.student_id)).first()
        student = existing or Student(school_code=case.claimant_school, **fields)
        student.status = ACTIVE
        session.add(student)
        session.add(AuditEvent(key=f"{case.id}/add", at=at, actor="system", action="duplicate_added",
                               round_id=case.round_id, school_code=case.claimant_school, before=None,
                               after={"student_id": case.student_id, "case": case.id}))
    case.status, case.outcome, case.resolved_at, case.pending = "resolved", outcome, at, None
    session.add(case)
    return case
