"""Mail about an outcome deferred to the next round (db/deferred_changes.py): the school and its district are told."""

from __future__ import annotations

from sqlmodel import Session, select

from activities.school_round import school_emails
from db.deferred_changes import pending_for
from db.models import School, Student, User
from dmcflow.settings import Settings
from mailer import outbox
from mailer.render import render

WHAT = {
    "id_correction": ("อนุมัติคำขอแก้ไขเลขประจำตัวประชาชน", "The approved ID correction"),
    "duplicate_leave": ("เรื่องนักเรียนซ้ำซ้อน: นักเรียนออกจากทะเบียนของโรงเรียน",
                        "The duplicate case's outcome (the student leaves the school's roster)"),
    "duplicate_add": ("เรื่องนักเรียนซ้ำซ้อน: นักเรียนเข้าทะเบียนของโรงเรียน",
                      "The duplicate case's outcome (the student joins the school's roster)"),
    "dropout": ("อนุมัติคำขอออกกลางคัน", "The approved dropout request"),
}


def enqueue_deferral_notices(session: Session, settings: Settings, source: str) -> list[str]:
    """Keys of the mails (one to the school, one to the district's officers) for each change of `source` (a request's
    reference or a duplicate case) that waits for the next round. Idempotent by key."""
    keys = []
    for row in pending_for(session, source):
        school = session.get(School, row.school_code)
        th, en = WHAT[row.kind]
        name = None
        if row.kind == "duplicate_add":
            name = " ".join(p for p in (row.change.get("prefix"), row.change.get("first_name"),
                                        row.change.get("last_name")) if p)
        elif row.student_pk and (student := session.get(Student, row.student_pk)):
            name = f"{student.prefix}{student.first_name} {student.last_name}".strip()
        officers = list(session.exec(select(User.email).where(User.role == "district", User.area == row.area,
                                                              User.active, User.email.is_not(None))))
        for who, to in (("school", school_emails(session, row.school_code)), ("district", officers)):
            if not to:
                continue
            subject, body = render("roster_change_deferred.txt.j2", row=row, school=school, to_school=who == "school",
                                   name=name, what_th=th, what_en=en)
            key = f"deferred/{row.key}/{who}"
            outbox.enqueue(session, settings, key=key, kind="roster_change_deferred", to=to, subject=subject,
                           body=body)
            keys.append(key)
    return keys
