"""The side cases as a user may see them, read from the database: R8 dropout requests with their thread, R3
duplicate cases (the claimant's side sees its own claim only). The API's answers and the workbench's pages."""

from __future__ import annotations

from sqlmodel import Session, select

from api.schemas import DropoutOut, DuplicateCaseOut, ThreadEntryOut
from api.views import instant
from db.duplicates import CLAIMED
from db.models import DropoutMessage, DropoutRequest, DuplicateCase, EvidenceFile, School, SchoolRound, Student, User
from domain.dropouts import REASONS, STATUS_TH
from domain.refusals import not_found


# --- R8 dropout requests ------------------------------------------------------------------------------------------

def _dropout_visible(user: User, row: DropoutRequest) -> bool:
    return (user.role == "admin" or (user.role == "district" and user.area == row.area)
            or (user.role in ("staff", "director") and user.school_code == row.school_code))


def load_dropout(session: Session, user: User, round_id: str, request_id: str) -> DropoutRequest:
    row = session.get(DropoutRequest, request_id)
    if row is None or row.round_id != round_id or not _dropout_visible(user, row):
        raise not_found("คำขอออกกลางคัน", "dropout request", request_id)
    return row


def dropout_out(session: Session, row: DropoutRequest, *, thread: bool) -> DropoutOut:
    student = session.get(Student, row.student_pk)
    school = session.get(School, row.school_code)
    school_round = session.get(SchoolRound, (row.round_id, row.school_code))
    entries = []
    if thread:
        names: dict[str, str | None] = {}
        for m in session.exec(select(DropoutMessage).where(DropoutMessage.request_id == row.id, DropoutMessage.posted)
                              .order_by(DropoutMessage.id)):
            if m.author and m.author not in names:
                names[m.author] = getattr(session.get(User, m.author), "display_name", None)
            entries.append(ThreadEntryOut(id=m.id, kind=m.kind, side=m.side, author=m.author,
                                          author_name=names.get(m.author or ""), text=m.text, evidence=m.evidence,
                                          at=instant(m.at)))
    return DropoutOut(
        id=row.id, round_id=row.round_id, school_code=row.school_code, school_name=school.name, area=row.area,
        student_id=student.student_id, student_name=f"{student.prefix}{student.first_name} {student.last_name}".strip(),
        grade=student.grade, reason=row.reason, reason_th=REASONS[row.reason][0], reason_en=REASONS[row.reason][1],
        status=row.status, status_th=STATUS_TH[row.status], requested_by=row.requested_by,
        requested_at=instant(row.requested_at), decided_by=row.decided_by,
        decided_at=instant(row.decided_at) if row.decided_at else None,
        closed_at=instant(row.closed_at) if row.closed_at else None,
        cutoff_at=instant(school_round.cutoff_at) if school_round else None, thread=entries)


def dropout_view(session: Session, user: User, round_id: str, request_id: str) -> DropoutOut:
    """One request with its thread, as far as the user may see it (the API's answer and the workbench's page)."""
    return dropout_out(session, load_dropout(session, user, round_id, request_id), thread=True)


def dropout_evidence(session: Session, user: User, round_id: str, request_id: str, sha256: str) -> EvidenceFile:
    row = load_dropout(session, user, round_id, request_id)
    shas = {m.evidence for m in session.exec(select(DropoutMessage).where(
        DropoutMessage.request_id == row.id, DropoutMessage.posted))}
    if sha256 not in shas - {None}:
        raise not_found("หลักฐาน", "evidence", sha256[:12])
    return session.get(EvidenceFile, sha256)


# --- R3 duplicate cases -------------------------------------------------------------------------------------------

def case_visible(user, session, case: DuplicateCase) -> bool:
    parties = {case.holder_school, case.claimant_school} - {None}
    if user.role == "admin":
        return True
    if user.role in ("staff", "director"):
        if user.school_code == case.holder_school and (case.status == CLAIMED
                                                       or (case.decision or {}).get("claim_dismissed")):
            return False  # a bare claim: the holder school learns of it only if its district opens it
        return user.school_code in parties
    if user.role == "district":
        return any(session.get(School, p).area == user.area for p in parties)
    return False


def _holder_side(user, session, case: DuplicateCase) -> bool:
    """Who may see the student's record and the school that has them: admins, the holder school, its district.
    The claimant's side (its school, a district of its area only) sees its own claim and nothing of theirs."""
    if case.kind != "obec" or user.role == "admin":
        return True
    if user.role in ("staff", "director"):
        return user.school_code == case.holder_school
    return user.role == "district" and session.get(School, case.holder_school).area == user.area


def case_out(session, case: DuplicateCase, user) -> DuplicateCaseOut:
    if not _holder_side(user, session, case):
        own = case.claimant_school
        kept = case.outcome if case.outcome in (None, "none", own) else "other_school"
        return DuplicateCaseOut(
            id=case.id, kind=case.kind, status=case.status, student_id=case.student_id, student_name="",
            holder_school=None, claimant_school=own, agency=None,
            declarations={k: v for k, v in case.declarations.items() if k == own},
            decision={"keep_school": kept, "at": case.decision.get("at"),
                      "claim_dismissed": case.decision.get("claim_dismissed", False)} if case.decision else None,
            outcome=kept, opened_at=instant(case.opened_at).model_dump(mode="json"),
            resolved_at=instant(case.resolved_at).model_dump(mode="json") if case.resolved_at else None)
    student = session.get(Student, case.student_pk)
    return DuplicateCaseOut(
        id=case.id, kind=case.kind, status=case.status, student_id=case.student_id,
        student_name=f"{student.prefix}{student.first_name} {student.last_name}".strip() if student else "",
        holder_school=case.holder_school, claimant_school=case.claimant_school, agency=case.agency,
        declarations=case.declarations, decision=case.decision, outcome=case.outcome,
        opened_at=instant(case.opened_at).model_dump(mode="json"),
        resolved_at=instant(case.resolved_at).model_dump(mode="json") if case.resolved_at else None)


def load_case(session, user, round_id: str, case_id: str) -> DuplicateCase:
    case = session.get(DuplicateCase, case_id)
    if case is None or case.round_id != round_id or not case_visible(user, session, case):
        raise not_found("เรื่องนักเรียนซ้ำซ้อน", "duplicate case", case_id)
    return case


def case_view(session, user, round_id: str, case_id: str) -> DuplicateCaseOut:
    """One case as far as the user may see it (the workbench's page; the API lists them)."""
    return case_out(session, load_case(session, user, round_id, case_id), user)


def case_evidence(session, user, round_id: str, case_id: str, sha256: str) -> EvidenceFile:
    # the claimant's side: its own declaration's file only (finding 3)
    if sha256 not in {d.get("evidence") for d in case_view(session, user, round_id, case_id).declarations.values()}:
        raise not_found("หลักฐาน", "evidence", sha256[:12])
    return session.get(EvidenceFile, sha256)
