"""The officer's home counts what the work queue lists (web/waiting.py): kind by kind, for each area's officer
and for an administrator, whatever state a duplicate claim or case is in (a case both schools claim waits
"at_district", and the home once left it out of its count while the queue listed it).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from db.engine import session_scope
from db.models import (Area, DropoutRequest, DuplicateCase, IdCorrection, InboundMessage, Round, School, SchoolRound,
                       Student, User, utcnow)
from web.district_pages import queue_items
from web.homes import work_queue

A, B = "เขต ก", "เขต ข"
SA, SB = "1000000001", "2000000002"
RID = "2566-waiting"


def seed(engine, now) -> None:
    """Two areas, a school each, and something of every kind and state in both directions."""
    with session_scope(engine) as s:
        s.add_all([Area(name=A), Area(name=B)])
        s.add_all([School(code=SA, name="โรงเรียน ก", area=A), School(code=SB, name="โรงเรียน ข", area=B)])
        s.add(Round(id=RID, academic_year=2566, opens_at=now - timedelta(days=9), confirm_from=now - timedelta(days=8),
                    cutoff_at=now - timedelta(days=1), started_at=now - timedelta(days=9)))
        s.flush()
        pupils = [Student(school_code=code, student_id=f"11000000000{i}{n}", first_name="ด.ช.", last_name="ทดสอบ",
                          grade="ป.6") for n, code in enumerate((SA, SB)) for i in range(3)]
        s.add_all(pupils)
        for code, area, certified in ((SA, A, None), (SB, B, now - timedelta(days=2))):
            s.add(SchoolRound(round_id=RID, school_code=code, area=area, stage="late", opens_at=now - timedelta(days=9),
                              confirm_from=now - timedelta(days=8), cutoff_at=now - timedelta(days=1),
                              certified_at=certified))
        s.flush()
        states = ("claimed", "open", "at_district", "resolved")
        for n, (status, (holder, claimant)) in enumerate((st, pair) for st in states for pair in ((SA, SB), (SB, SA))):
            pupil = next(p for p in pupils if p.school_code == holder)
            s.add(DuplicateCase(id=f"DUP-{n}", round_id=RID, kind="affiliation", student_pk=pupil.id,
                                student_id=pupil.student_id, holder_school=holder, claimant_school=claimant,
                                status=status, opened_at=now - timedelta(hours=n + 1)))
        for n, (code, area, status) in enumerate(((SA, A, "pending"), (SB, B, "pending"), (SA, A, "approved"))):
            s.add(InboundMessage(sha256=f"{n:064d}", via="smtp", received_at=now - timedelta(hours=n), size=1, raw=b"x"))
            s.flush()
            s.add(IdCorrection(id=f"IDC-{n}", message_sha=f"{n:064d}", block=1, round_id=RID, school_code=code,
                               area=area, status=status))
        for n, (code, area, status) in enumerate(((SA, A, "waiting_district"), (SB, B, "waiting_school"),
                                                  (SB, B, "waiting_district"))):
            pupil = next(p for p in pupils if p.school_code == code)
            s.add(DropoutRequest(id=f"DRP-{n}", round_id=RID, school_code=code, area=area, student_pk=pupil.id,
                                 reason="low_income", status=status, requested_by="staff",
                                 requested_at=now - timedelta(hours=n)))


def test_the_home_counts_what_the_queue_lists_for_every_officer(engine):
    now = utcnow()
    seed(engine, now)
    officers = {"district A": User(id="d-a", display_name="ก", role="district", area=A, token_hash="a"),
                "district B": User(id="d-b", display_name="ข", role="district", area=B, token_hash="b"),
                "admin": User(id="adm", display_name="ผู้ดูแล", role="admin", token_hash="c")}
    with session_scope(engine) as s:
        for who, user in officers.items():
            queue = work_queue(s, user, now)
            listed = Counter(item.kind for item in queue_items(s, user, RID, now))
            counted = {"id_correction": queue.id_corrections, "dropout": queue.dropouts,
                       "duplicate": queue.duplicates, "late": queue.late_schools}
            assert counted == {kind: listed[kind] for kind in counted}, who
        # what each sees: A holds a claimed, an open and an at_district case of its own and sees B's open and
        # at_district cases on its claims (not B's bare claim); the administrator sees every unresolved one
        dup = {who: sorted(i.ref for i in queue_items(s, user, RID, now) if i.kind == "duplicate")
               for who, user in officers.items()}
        assert dup["district A"] == ["DUP-0", "DUP-2", "DUP-3", "DUP-4", "DUP-5"]
        assert dup["admin"] == [f"DUP-{n}" for n in range(6)]
