"""Issue 16: a duplicate case's outcome that reaches a certified school leaves its certified roster as certified;
the school and its district are told, and the next round's start applies it. A school that has not certified
takes its side at once."""

from __future__ import annotations

from datetime import timedelta

from activities.duplicate_case import DuplicateCaseActivities
from db.deferred_changes import apply_deferred
from db.duplicates import apply_outcome, case_id
from db.engine import session_scope
from db.models import AuditEvent, DeferredRosterChange, DuplicateCase, OutboxMail, Round, SchoolRound, Student, utcnow
from tests.stack import AREA, SCHOOL, SCHOOL_2, add_round, seed, unique_round

SID = "1449900000018"


def _round_with(engine, certified: set[str]):
    rid, now = unique_round(), utcnow()
    add_round(engine, rid, now - timedelta(days=2), now - timedelta(days=1), now + timedelta(days=1))
    with session_scope(engine) as s:
        for school in (SCHOOL, SCHOOL_2):
            s.add(SchoolRound(round_id=rid, school_code=school, area=AREA, stage="confirmation_window",
                              opens_at=now - timedelta(days=2), confirm_from=now - timedelta(days=1),
                              cutoff_at=now + timedelta(days=1),
                              certified_by="director" if school in certified else None,
                              certified_at=now if school in certified else None))
    return rid


def _claim(engine, rid: str) -> tuple[str, int]:
    with session_scope(engine) as s:
        holder = Student(school_code=SCHOOL, student_id=SID, first_name="ปวีณา", last_name="พลอยงาม", grade="ม.1")
        s.add(holder)
        s.flush()
        cid = case_id(rid, "obec", holder.id, SCHOOL_2)
        s.add(DuplicateCase(id=cid, round_id=rid, kind="obec", student_pk=holder.id, student_id=SID,
                            holder_school=SCHOOL, claimant_school=SCHOOL_2, status="open",
                            pending={"student_id": SID, "first_name": "ปวีณา", "last_name": "พลอยงาม", "grade": "ม.1",
                                     "birth_date": "2012-02-02"}))
        return cid, holder.id


def _at(engine, school: str) -> list[str]:
    with session_scope(engine) as s:
        return [r.status for r in s.exec(Student.__table__.select().where(Student.school_code == school,
                                                                          Student.student_id == SID))]


def test_the_outcome_waits_for_the_next_round_at_the_certified_school_and_applies_at_once_at_the_other(
        engine, settings):
    seed(engine, {})
    rid = _round_with(engine, certified={SCHOOL})
    cid, _ = _claim(engine, rid)
    with session_scope(engine) as s:
        apply_outcome(s, cid, SCHOOL_2, utcnow())  # the district gives the student to the claimant
    assert _at(engine, SCHOOL) == ["studying"]  # the holder certified: its roster stays as certified
    assert _at(engine, SCHOOL_2) == ["studying"]  # the claimant did not: the student joins at once
    with session_scope(engine) as s:
        [change] = s.exec(DeferredRosterChange.__table__.select()).all()
        assert (change.kind, change.school_code, change.status) == ("duplicate_leave", SCHOOL, "pending")
        assert s.get(DuplicateCase, cid).status == "resolved"

    keys = DuplicateCaseActivities(engine, settings)._enqueue(cid, "resolved")
    with session_scope(engine) as s:
        notices = [s.get(OutboxMail, k) for k in keys if k.startswith("deferred/")]
    assert sorted(n.recipients[0] for n in notices) == ["dmc@tuayang.ac.th", "officer@sesao26.example"]
    assert all("รอบถัดไป" in n.subject and "next round" in n.body_text for n in notices)
    # an officer told of several schools' deferrals tells them apart by the subject: the school and the case
    assert all(SCHOOL in n.subject and str(cid) in n.subject for n in notices)

    nxt = unique_round()
    add_round(engine, nxt, utcnow(), utcnow() + timedelta(days=1), utcnow() + timedelta(days=2))
    with session_scope(engine) as s:
        assert apply_deferred(s, s.get(Round, nxt), [SCHOOL, SCHOOL_2], utcnow()) == 1
    assert _at(engine, SCHOOL) == ["transferred_out"]
    with session_scope(engine) as s:
        assert s.get(DeferredRosterChange, f"dup/{cid}/leave").applied_round_id == nxt
        audit = s.exec(AuditEvent.__table__.select().where(AuditEvent.action == "duplicate_leave_applied")).first()
        assert audit.round_id == nxt and "certified" in audit.reason
        assert apply_deferred(s, s.get(Round, nxt), [SCHOOL], utcnow()) == 0  # once


def test_a_claimant_that_certified_gets_the_student_only_when_its_next_round_starts(engine):
    seed(engine, {})
    rid = _round_with(engine, certified={SCHOOL_2})
    cid, _ = _claim(engine, rid)
    with session_scope(engine) as s:
        apply_outcome(s, cid, SCHOOL_2, utcnow())
    assert _at(engine, SCHOOL) == ["transferred_out"] and _at(engine, SCHOOL_2) == []
    nxt = unique_round()
    add_round(engine, nxt, utcnow(), utcnow() + timedelta(days=1), utcnow() + timedelta(days=2))
    with session_scope(engine) as s:
        assert apply_deferred(s, s.get(Round, nxt), [SCHOOL_2], utcnow()) == 1
    assert _at(engine, SCHOOL_2) == ["studying"]
