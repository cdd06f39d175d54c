"""The ID-correction intake in the database: store raw first, decide each request, apply an approval."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.parser import BytesHeaderParser

from sqlalchemy import and_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from db.deferred_changes import defer, roster_is_certified
from db.bulk import select_in
from db.evidence import stored_evidence_sha
from db.models import (
    AuditEvent, EvidenceFile, IdCorrection, InboundMessage, School, SchoolEmail, SchoolRound, Student, utcnow,
)
from domain.correction_requests import ParsedMessage
from domain.id_corrections import Flag, IdCorrectionInput, flags_for, reference
from domain.refusals import Refusal, refusal
from domain.thai_time import english_datetime, thai_datetime
from intake.mail_auth import Verdict

HEAD_BYTES = 256 * 1024  # of a message over the limit, kept to read its headers and reply
REFUSED_BYTES = 64 * 1024  # of a message refused at the door: enough for the district to see what it was
ACTIVE = "studying"


def store_raw(session: Session, raw: bytes, via: str, received_at: datetime, max_bytes: int,
              verdict: Verdict | None = None, client: str | None = None) -> tuple[str, bool]:
    """Answers (sha256, newly stored). Nothing is parsed yet: whatever fails later, the message is kept.
    `verdict` is the door's authentication of its sender (none: the message will be refused unanswered)."""
    digest = hashlib.sha256(raw).hexdigest()
    truncated = len(raw) > max_bytes
    # one statement that stores it unless its bytes are there already (a look first, then an insert, was two
    # round trips and an ORM object for each message at the door)
    insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(InboundMessage)
    stored = session.execute(insert.values(
        sha256=digest, via=via, received_at=received_at, size=len(raw), raw=raw[:HEAD_BYTES] if truncated else raw,
        truncated=truncated, message_id=_message_id(raw), status="stored", client_address=client,
        auth_domain=verdict.domain if verdict else None, auth_method=verdict.method if verdict else None,
        evidence=[]).on_conflict_do_nothing().returning(InboundMessage.sha256)).first()
    return digest, stored is not None


def registered_schools(session: Session, sender: str | None) -> set[str]:
    return set(session.exec(select(SchoolEmail.school_code).where(SchoolEmail.email == (sender or ""))))


def sender_area(session: Session, sender: str | None) -> str | None:
    """Which district lists a refused message: the area of the school(s) its From address is registered
    for, else of the schools registered at its domain (a clerk writing from another address of the
    school), when that names one area; else none (administrators only)."""
    if not sender:
        return None
    schools = registered_schools(session, sender)
    if not schools:
        domain = sender.rsplit("@", 1)[-1]
        schools = set(session.exec(select(SchoolEmail.school_code).where(
            SchoolEmail.email.endswith("@" + domain, autoescape=True))))
    areas = set(session.exec(select(School.area).where(School.code.in_(schools)))) if schools else set()
    return areas.pop() if len(areas) == 1 else None


def keep_refused(session: Session, raw: bytes, via: str, received_at: datetime, verdict: Verdict, reason: str,
                 client: str | None = None) -> tuple[str, bool]:
    """A message refused at the door (unauthenticated, unregistered): its head is kept, marked refused with
    its reason, for the district to see. It is never parsed, handed over or answered."""
    digest = hashlib.sha256(raw).hexdigest()
    if session.get(InboundMessage, digest) is not None:
        return digest, False
    session.add(InboundMessage(sha256=digest, via=via, received_at=received_at, size=len(raw),
                               raw=raw[:REFUSED_BYTES], truncated=len(raw) > REFUSED_BYTES,
                               message_id=_message_id(raw), status="refused", outcome=f"refused:{reason}"[:60],
                               sender=verdict.sender, client_address=client, processed_at=utcnow(),
                               area=sender_area(session, verdict.sender)))
    return digest, True


def _message_id(raw: bytes) -> str | None:
    """Read at storage time, so two deliveries of one message agree at once on which is the first."""
    try:
        value = BytesHeaderParser().parsebytes(raw[:HEAD_BYTES]).get("Message-ID")
    except Exception:  # noqa: BLE001  headers too broken to read: the parser will say so later
        return None
    return re.sub(r"[\s\x00-\x1f\x7f]+", "", str(value))[:250] if value else None


@dataclass
class Known:
    """What deciding messages reads besides each message's own row: other copies of their Message-IDs, the
    registry (senders' schools, rounds, schools), the roster (students by national ID) and requests and evidence
    stored already. `read_known` reads them for a whole batch in one query each: one query per message and per
    lookup was most of a message's database time (issue 18; on PostgreSQL each is a round trip). They are read
    before the messages' own transactions, as each message read them before its own writes did."""

    copies: dict[tuple[str, str], list[tuple[datetime, str, str]]] = field(default_factory=dict)
    registrations: dict[str, set[str]] = field(default_factory=dict)  # sender -> its schools
    rounds: dict[str, list[SchoolRound]] = field(default_factory=dict)  # school -> its rounds, latest opening first
    schools: dict[str, School] = field(default_factory=dict)
    students: dict[str, list[Student]] = field(default_factory=dict)  # national ID -> students, any school or status
    corrections: dict[str, IdCorrection] = field(default_factory=dict)  # by reference
    evidence: set[str] = field(default_factory=set)  # digests of evidence files stored
    by_pk: dict[int, Student] = field(default_factory=dict)  # the same students by primary key

    def registered(self, sender: str | None) -> set[str]:
        return set(self.registrations.get(sender or "", ()))


def read_known(session: Session, messages: list[tuple[InboundMessage, ParsedMessage | None]]) -> Known:
    """`Known` for these messages (each with its parse, None when it could not be parsed)."""
    known = Known()
    parsed = [p for _, p in messages if p is not None]
    ids = sorted({r.message_id for r, _ in messages if r.message_id})
    for sha, message_id, domain, received_at, status in select_in(session, select(
            InboundMessage.sha256, InboundMessage.message_id, InboundMessage.auth_domain, InboundMessage.received_at,
            InboundMessage.status), InboundMessage.message_id, ids):
        known.copies.setdefault((message_id, domain), []).append((received_at, sha, status))
    for code, email in select_in(session, select(SchoolEmail.school_code, SchoolEmail.email), SchoolEmail.email,
                                 sorted({p.sender for p in parsed if p.sender})):
        known.registrations.setdefault(email, set()).add(code)
    codes = sorted({c for found in known.registrations.values() for c in found}
                   | {r.school_code for p in parsed for r in p.requests if r.school_code})
    for rnd in sorted(select_in(session, select(SchoolRound), SchoolRound.school_code, codes),
                      key=lambda r: r.opens_at, reverse=True):
        known.rounds.setdefault(rnd.school_code, []).append(rnd)
    known.schools = {s.code: s for s in select_in(session, select(School), School.code, codes)}
    national_ids = sorted({i for p in parsed for r in p.requests for i in (r.old_id, r.new_id) if i})
    for student in sorted(select_in(session, select(Student), Student.student_id, national_ids), key=lambda s: s.id):
        known.students.setdefault(student.student_id, []).append(student)
        known.by_pk[student.id] = student
    refs = [reference(r.sha256, q.index) for r, p in messages if p is not None for q in p.requests]
    known.corrections = {c.id: c for c in select_in(session, select(IdCorrection), IdCorrection.id, refs)}
    digests = sorted({hashlib.sha256(a.content).hexdigest() for p in parsed for a in p.evidence})
    known.evidence = set(select_in(session, select(EvidenceFile.sha256), EvidenceFile.sha256, digests))
    return known


def canonical_for_message_id(known: Known, row: InboundMessage) -> bool:
    """Of several deliveries of one Message-ID from one authenticated sender domain, one is processed (and
    replied to): one already processed, else the first received (mailbox dates have one-second resolution:
    the hash breaks ties). Per domain: another sender's message cannot swallow a school's by its Message-ID."""
    if not row.message_id:
        return True
    others = [o for o in known.copies.get((row.message_id, row.auth_domain), []) if o[1] != row.sha256]
    if any(status == "processed" for _, _, status in others):
        return False
    return all((row.received_at, row.sha256) < (at, sha) for at, sha, _ in others)


def _sender_school(known: Known, parsed: ParsedMessage) -> tuple[str | None, Refusal | None]:
    registered = known.registered(parsed.sender)
    named = {r.school_code for r in parsed.requests if r.school_code}
    if not registered:
        return None, refusal("sender_not_registered",
                             "อีเมลผู้ส่งไม่ได้ลงทะเบียนไว้กับโรงเรียนใด จึงไม่ดำเนินการ ให้ส่งจากอีเมลที่ลงทะเบียนของโรงเรียน",
                             "The sender's address is not registered for any school; nothing was changed. "
                             "Send from the school's registered address", 403)
    if named - registered:
        return None, refusal("sender_not_registered",
                             "อีเมลผู้ส่งไม่ได้ลงทะเบียนไว้กับโรงเรียนที่ระบุ จึงไม่ดำเนินการ",
                             "The sender's address is not registered for the school named in the request; "
                             "nothing was changed", 403)
    if len(named) > 1:
        return None, refusal("one_school_per_email", "หนึ่งอีเมลต่อหนึ่งโรงเรียน", "One email per school, please", 422)
    if named:
        return named.pop(), None
    if len(registered) == 1:
        return registered.pop(), None
    return None, refusal("school_code_required", "อีเมลนี้ลงทะเบียนไว้หลายโรงเรียน ต้องระบุรหัสโรงเรียน",
                         "This address is registered for several schools: give the school code", 422)


def _round_for(known: Known, school: str, at: datetime) -> tuple[SchoolRound | None, Refusal | None]:
    row = next((r for r in known.rounds.get(school, ()) if r.opens_at <= at), None)
    if row is None:
        return None, refusal("round_not_open", "ยังไม่เปิดรอบให้แก้ไขเลขประจำตัวประชาชน", "No round is open for corrections")
    if at >= row.cutoff_at:
        return row, refusal("closed", f"ปิดรับการแก้ไขเลขประจำตัวประชาชนแล้วเมื่อ {thai_datetime(row.cutoff_at)} (ข้อ 4)",
                            f"ID corrections closed at {english_datetime(row.cutoff_at)} (R4)")
    return row, None


def decide_message(session: Session, row: InboundMessage, parsed: ParsedMessage,
                   known: Known) -> tuple[list[IdCorrection], Refusal | None]:
    """Every check of the spec that needs the registry and the roster (read in `known`); writes one IdCorrection
    a request. Answers the requests, or the refusal of the whole message."""
    row.sender = parsed.sender
    school, problem = _sender_school(known, parsed) if parsed.problem is None else (None, parsed.problem)
    rnd = None
    if problem is None:
        rnd, problem = _round_for(known, school, row.received_at)
    row.school_code, row.round_id = school, rnd.round_id if rnd else None
    if problem is not None:
        row.outcome = f"refused:{problem.code}"
        return [], problem
    row.evidence = [{"sha256": stored_evidence_sha(session, a.content, a.filename or "", known.evidence),
                     "filename": a.filename, "content_type": a.evidence_type} for a in parsed.evidence]
    results, seen_new = [], set()
    for request in parsed.requests:
        ref = reference(row.sha256, request.index)
        existing = known.corrections.get(ref)
        if existing is not None:
            results.append(existing)
            continue
        problem, student = request.problem, None
        if problem is None:
            active = [s for s in known.students.get(request.old_id, ()) if s.status == ACTIVE]
            student = next((s for s in active if s.school_code == school), None)
            if student is None:
                elsewhere = bool(active)
                problem = refusal("other_school_student" if elsewhere else "not_on_roster",
                                  "นักเรียนเลขเดิมนี้เป็นของโรงเรียนอื่น" if elsewhere else
                                  "ไม่พบเลขเดิมนี้ในทะเบียนนักเรียนของโรงเรียน",
                                  "The old ID belongs to another school's student" if elsewhere else
                                  "The old ID is not on the school's roster")
        if problem is None and (request.new_id in seen_new or known.students.get(request.new_id)):
            problem = refusal("new_id_taken", "เลขใหม่นี้เป็นของนักเรียนคนอื่นแล้ว (อาจเป็นข้อมูลซ้ำซ้อน)",
                              "The new ID already belongs to another student (a duplicate in the making)")
        seen_new.add(request.new_id)
        results.append(IdCorrection(
            id=ref, message_sha=row.sha256, block=request.index, round_id=rnd.round_id, school_code=school,
            area=rnd.area, student_pk=student.id if student else None, student_name=_cut(request.student_name, 250),
            old_id=request.old_id, new_id=request.new_id, reason=_cut(request.reason, 1000),
            status="pending" if problem is None else "refused", cutoff_at=rnd.cutoff_at,
            refusal_code=problem.code if problem else None, refusal_th=problem.message_th if problem else None,
            refusal_en=problem.message_en if problem else None))
        session.add(results[-1])
    pending = sum(r.status == "pending" for r in results)
    row.outcome = "accepted" if pending == len(results) else "partly_accepted" if pending else "refused:requests"
    return results, None


def _cut(text: str | None, size: int) -> str | None:
    """A field typed in an email, cut to its column (PostgreSQL refuses longer text; SQLite would not say)."""
    return text[:size - 1] + "…" if text and len(text) > size else text


def follow_up(rows: list[IdCorrection]) -> list[IdCorrectionInput]:
    return [IdCorrectionInput(ref=r.id, round_id=r.round_id, school_code=r.school_code, area=r.area,
                              cutoff_at=r.cutoff_at) for r in rows if r.status == "pending"]


def flags_of(session: Session, rows: list[IdCorrection]) -> dict[str, list[Flag]]:
    """Each accepted request's flags for the deciding officer (domain.id_corrections.flags_for), read now: another
    request for the same new ID may have come in (or been settled) since this one was accepted."""
    accepted = [r for r in rows if r.status != "refused"]
    if not accepted:
        return {}
    students = {s.id: s for s in session.exec(select(Student).where(
        Student.id.in_({r.student_pk for r in accepted if r.student_pk})))}
    pending: dict[str, list[str]] = {}
    for ref, new_id in session.exec(select(IdCorrection.id, IdCorrection.new_id).where(
            IdCorrection.status == "pending", IdCorrection.new_id.in_({r.new_id for r in accepted if r.new_id}))):
        pending.setdefault(new_id, []).append(ref)
    out = {}
    for r in accepted:
        student = students.get(r.student_pk)
        out[r.id] = flags_for(r.student_name, (student.prefix, student.first_name, student.last_name) if student
                              else None, [ref for ref in pending.get(r.new_id, []) if ref != r.id])
    return out


def apply_correction(session: Session, ref: str, actor: str, at: datetime) -> IdCorrection:
    """Approval: the student's ID changes, once; uniqueness is checked again at this moment."""
    row = session.get(IdCorrection, ref)
    if row.status != "pending":
        return row  # a retried activity: already applied, deferred (or found impossible)
    certified = roster_is_certified(session, row.round_id, row.school_code)  # locks the school's row
    flags = [f.code for f in flags_of(session, [row]).get(ref, [])]  # approved with these shown: the audit says so
    row.decided_by, row.decided_at = actor, at
    student = session.get(Student, row.student_pk)
    taken = session.exec(select(Student.id).where(Student.student_id == row.new_id, Student.id != row.student_pk)).first()
    if student is None or student.student_id != row.old_id or taken:
        row.status = "failed"
        row.refusal_code = "new_id_taken" if taken else "student_changed"
        row.refusal_th = "เลขใหม่นี้เป็นของนักเรียนคนอื่นแล้ว" if taken else "ข้อมูลนักเรียนเปลี่ยนไประหว่างรอพิจารณา"
        row.refusal_en = "The new ID belongs to another student now" if taken else "The student's record changed meanwhile"
    elif certified:  # the certified roster stays as certified: the next round's start applies it
        defer(session, key=f"idc/{ref}", round_id=row.round_id, school_code=row.school_code, area=row.area,
              kind="id_correction", source=ref, student_pk=student.id,
              change={"old_id": row.old_id, "new_id": row.new_id, "flags": flags}, at=at, actor=actor)
        row.status = "deferred"
    else:
        session.add(AuditEvent(key=f"idc/{ref}", at=at, actor=actor, action="id_correction", round_id=row.round_id,
                               school_code=row.school_code, area=row.area, before={"student_id": student.student_id},
                               after={"student_id": row.new_id, "ref": ref, "flags": flags}))
        student.student_id, student.updated_at = row.new_id, at
        session.add(student)
        row.status = "approved"
    session.add(row)
    return row


def follow_cutoff(session: Session, ref: str) -> datetime:
    """R4 follows the school's current cutoff: an extension of the school moves its open requests' cutoff too (only
    later: an extension never shortens). Answers the request's cutoff, updated."""
    row = session.get(IdCorrection, ref)
    school = session.get(SchoolRound, (row.round_id, row.school_code))
    if row.status == "pending" and school is not None and school.cutoff_at > row.cutoff_at:
        row.cutoff_at = school.cutoff_at
        session.add(row)
    return row.cutoff_at


def request_input(session: Session, row: IdCorrection) -> IdCorrectionInput:
    """What the request's workflow starts with, its cutoff the school's current one (as `follow_cutoff`)."""
    school = session.get(SchoolRound, (row.round_id, row.school_code))
    cutoff = max(row.cutoff_at, school.cutoff_at) if school is not None else row.cutoff_at
    return IdCorrectionInput(ref=row.id, round_id=row.round_id, school_code=row.school_code, area=row.area,
                             cutoff_at=cutoff)


def open_past_cutoff(session: Session, now: datetime) -> tuple[list[IdCorrectionInput], datetime | None]:
    """The open (pending) requests whose school's current cutoff has passed, and the next such cutoff of the
    others. A cutoff that an extension moved is written to the request, as `follow_cutoff` does."""
    due, following = [], None
    stmt = select(IdCorrection, SchoolRound.cutoff_at).outerjoin(SchoolRound, and_(
        SchoolRound.round_id == IdCorrection.round_id, SchoolRound.school_code == IdCorrection.school_code))
    for row, school_cutoff in session.exec(stmt.where(IdCorrection.status == "pending")).all():
        if school_cutoff is not None and school_cutoff > row.cutoff_at:
            row.cutoff_at = school_cutoff
            session.add(row)
        if row.cutoff_at <= now:
            due.append(IdCorrectionInput(ref=row.id, round_id=row.round_id, school_code=row.school_code,
                                         area=row.area, cutoff_at=row.cutoff_at))
        elif following is None or row.cutoff_at < following:
            following = row.cutoff_at
    return due, following


def settle(session: Session, ref: str, status: str, by: str | None, at: datetime, reason: str | None) -> IdCorrection:
    row = session.get(IdCorrection, ref)
    if row.status == "pending":
        row.status, row.decided_by, row.decided_at, row.decision_reason = status, by, at, reason
        session.add(row)
    return row
