"""R3 duplicates: the cases, the schools' declarations and the district's decision, and other
affiliations' lists (สช., อปท., ตชด., กทม.) checked against the OBEC roster."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel
from sqlalchemy import or_
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from api.deps import EngineDep, SessionDep, SettingsDep, TemporalDep, UserDep, actor_of, require_role
from api.downloads import Sha256, evidence_download
from api.errors import ERROR_RESPONSES
from api.views import instant
from api.workflow_updates import refusal_from_update_failure
from db.bulk import select_in
from db.duplicates import CLAIMED, open_affiliation_case
from db.duplicates import case_id as case_key
from db.engine import session_scope
from db.evidence import MAX_EVIDENCE_BYTES, store_evidence
from db.models import DuplicateCase, EvidenceFile, School, Student
from domain.actor_scope import check_actor_scope
from domain.duplicates import AGENCIES, ClaimReviewIn, DecideIn, DeclareIn
from domain.ids import normalise_student_id
from domain.refusals import Refusal, forbidden, invalid, not_found, refusal
from domain.spreadsheet_stream import MAX_BYTES, FileLimits, spreadsheet_rows
from workflows.duplicate_case import DuplicateCaseWorkflow
from workflows.ids import duplicate_case_id

router = APIRouter(prefix="/rounds/{round_id}", tags=["duplicates"], responses=ERROR_RESPONSES)
ACTIVE = "studying"
NO_NUL = r"^[^\x00]*$"  # text fields of a multipart form (api/body_limit.py checks the other bodies)


class CaseOut(BaseModel):
    id: str
    kind: str
    status: str
    student_id: str
    student_name: str  # empty for the claimant's side: the holder's record of the student is not theirs
    holder_school: str | None  # None for the claimant's side: which school has the student is not theirs to know
    claimant_school: str | None
    agency: str | None
    declarations: dict
    decision: dict | None
    outcome: str | None
    opened_at: dict
    resolved_at: dict | None


def _visible(user, session, case: DuplicateCase) -> bool:
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


def _view(session, case: DuplicateCase, user) -> CaseOut:
    if not _holder_side(user, session, case):
        own = case.claimant_school
        kept = case.outcome if case.outcome in (None, "none", own) else "other_school"
        return CaseOut(
            id=case.id, kind=case.kind, status=case.status, student_id=case.student_id, student_name="",
            holder_school=None, claimant_school=own, agency=None,
            declarations={k: v for k, v in case.declarations.items() if k == own},
            decision={"keep_school": kept, "at": case.decision.get("at"),
                      "claim_dismissed": case.decision.get("claim_dismissed", False)} if case.decision else None,
            outcome=kept, opened_at=instant(case.opened_at).model_dump(mode="json"),
            resolved_at=instant(case.resolved_at).model_dump(mode="json") if case.resolved_at else None)
    student = session.get(Student, case.student_pk)
    return CaseOut(
        id=case.id, kind=case.kind, status=case.status, student_id=case.student_id,
        student_name=f"{student.prefix}{student.first_name} {student.last_name}".strip() if student else "",
        holder_school=case.holder_school, claimant_school=case.claimant_school, agency=case.agency,
        declarations=case.declarations, decision=case.decision, outcome=case.outcome,
        opened_at=instant(case.opened_at).model_dump(mode="json"),
        resolved_at=instant(case.resolved_at).model_dump(mode="json") if case.resolved_at else None)


@router.get("/duplicates", operation_id="list_duplicates", response_model=list[CaseOut],
            summary="Duplicate-student cases the user may see: own school, own area, or all (admin); "
                    "`at_district`: waiting for the district's decision (both schools claim the student, or the "
                    "case was still open at the cutoff)")
def list_duplicates(round_id: str, user: UserDep, session: SessionDep,
                    status: Literal["claimed", "open", "at_district", "resolved"] | None = None,
                    school: str | None = None) -> list[CaseOut]:
    stmt = select(DuplicateCase).where(DuplicateCase.round_id == round_id).order_by(DuplicateCase.opened_at)
    if status:
        stmt = stmt.where(DuplicateCase.status == status)
    if school:
        stmt = stmt.where(or_(DuplicateCase.holder_school == school, DuplicateCase.claimant_school == school))
    if user.role in ("staff", "director"):
        stmt = stmt.where(or_(DuplicateCase.holder_school == user.school_code,
                              DuplicateCase.claimant_school == user.school_code))
    views = [_view(session, c, user) for c in session.exec(stmt) if _visible(user, session, c)]
    # the filter again on what the caller may see: `school=<a guess>` must not find the holder of a claim
    return [v for v in views if not school or school in (v.holder_school, v.claimant_school)]


@router.post("/duplicates/{case_id}/resolution", operation_id="resolve_duplicate", response_model=CaseOut,
             summary="A party school declares the student present (with evidence) or absent; "
                     "the district decides when both claim the student")
async def resolve_duplicate(
        round_id: str, case_id: str, user: UserDep, engine: EngineDep, client: TemporalDep,
        action: Annotated[Literal["present", "absent", "decide", "open", "dismiss"], Form(
            description="a party school: present | absent; the holder area's district: open | dismiss (a claim "
                        "waiting for it), decide (both schools claim the student)")],
        keep_school: Annotated[str | None, Form(max_length=10, pattern=NO_NUL)] = None,
        note: Annotated[str | None, Form(max_length=1000, pattern=NO_NUL)] = None,
        evidence: Annotated[UploadFile | None, File(description="PDF, JPEG or PNG")] = None) -> CaseOut:
    data = await evidence.read(MAX_EVIDENCE_BYTES + 1) if evidence is not None else None
    return await resolve_case(engine, client, user, round_id, case_id, action, keep_school, note, data,
                              evidence.filename if data else None)


async def resolve_case(engine, client, user, round_id: str, case_id: str, action: str, keep_school: str | None,
                       note: str | None, data: bytes | None, filename: str | None) -> CaseOut:
    """A party's declaration or the district's review and decision (the API's route and the workbench's form)."""
    def prepare() -> str | None:
        with session_scope(engine) as session:
            case = _case(session, user, round_id, case_id)
            if action in ("decide", "open", "dismiss"):  # finding 4: only the district of the holder's area
                check_actor_scope(actor_of(user), school_code=case.holder_school,
                                  area=session.get(School, case.holder_school).area, roles=("district",))
            return store_evidence(session, data, filename or "").sha256 if data else None

    sha = await asyncio.to_thread(prepare)
    actor = actor_of(user)
    handle = client.get_workflow_handle(duplicate_case_id(case_id))
    try:
        if action == "decide":
            require_role(user, "district", what_th="ตัดสินเรื่องนักเรียนซ้ำซ้อน", what_en="decide duplicate cases")
            if not keep_school or not note:
                raise invalid("decision_incomplete", "ต้องระบุโรงเรียนที่นักเรียนอยู่ และเหตุผล",
                              "Give the school that keeps the student, and the reason")
            state = await handle.execute_update(DuplicateCaseWorkflow.decide,
                                                DecideIn(keep_school=keep_school, actor=actor, reason=note))
        elif action in ("open", "dismiss"):
            if action == "dismiss" and not note:
                raise invalid("reason_required", "ต้องระบุเหตุผลที่ไม่เปิดเรื่อง", "Give the reason for dismissing the claim")
            update = DuplicateCaseWorkflow.open_case if action == "open" else DuplicateCaseWorkflow.dismiss_claim
            state = await handle.execute_update(update, ClaimReviewIn(actor=actor, reason=note))
        else:
            if user.role not in ("staff", "director"):
                raise forbidden("แจ้งแทนโรงเรียน", "declare for a school")
            state = await handle.execute_update(DuplicateCaseWorkflow.declare, DeclareIn(
                school=user.school_code, claim=action, actor=actor, evidence=sha, note=note))
    except WorkflowUpdateFailedError as exc:
        raise refusal_from_update_failure(exc) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise  # Temporal unreachable: a 503 to retry, not an answer about the case
        raise refusal("case_closed", "เรื่องนี้ปิดแล้ว", "This case is closed") from None

    view = await asyncio.to_thread(_load_view, engine, case_id, user)
    for _ in range(200):  # settled: answer once the outcome is on the rosters (the workflow's next activity)
        if not state.resolved or view.status == "resolved":
            break
        await asyncio.sleep(0.05)
        view = await asyncio.to_thread(_load_view, engine, case_id, user)
    return view


@router.get("/duplicates/{case_id}/evidence/{sha256}", operation_id="get_duplicate_evidence", response_class=Response,
            summary="An evidence file of a declaration (a download), for the parties, their district and admins")
def get_duplicate_evidence(round_id: str, case_id: str, sha256: Sha256, user: UserDep,
                           session: SessionDep) -> Response:
    return evidence_download(case_evidence(session, user, round_id, case_id, sha256))


def _case(session, user, round_id: str, case_id: str) -> DuplicateCase:
    case = session.get(DuplicateCase, case_id)
    if case is None or case.round_id != round_id or not _visible(user, session, case):
        raise not_found("เรื่องนักเรียนซ้ำซ้อน", "duplicate case", case_id)
    return case


def case_view(session, user, round_id: str, case_id: str) -> CaseOut:
    """One case as far as the user may see it (the workbench's page; the API lists them)."""
    return _view(session, _case(session, user, round_id, case_id), user)


def case_evidence(session, user, round_id: str, case_id: str, sha256: str) -> EvidenceFile:
    # the claimant's side: its own declaration's file only (finding 3)
    if sha256 not in {d.get("evidence") for d in case_view(session, user, round_id, case_id).declarations.values()}:
        raise not_found("หลักฐาน", "evidence", sha256[:12])
    return session.get(EvidenceFile, sha256)


def _load_view(engine, case_id: str, user) -> CaseOut:
    with session_scope(engine) as session:
        return _view(session, session.get(DuplicateCase, case_id), user)


class AffiliationReport(BaseModel):
    agency: str
    rows: int
    matches: int
    cases: list[str]
    issues: list[dict]


@router.post("/affiliation-lists", operation_id="import_affiliation_list", response_model=AffiliationReport,
             summary="Check another affiliation's student list (CSV) against the OBEC roster; each match opens a case")
async def import_affiliation_list(
        round_id: str, user: UserDep, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
        agency: Annotated[Literal["opec", "local", "bpp", "bma"], Form(description="สช. | อปท. | ตชด. | กทม.")],
        file: Annotated[UploadFile, File(description="CSV with a เลขประจำตัวประชาชน column")]) -> AffiliationReport:
    require_role(user, "admin", "district", what_th="นำเข้ารายชื่อต่างสังกัด", what_en="import affiliation lists")
    data = await file.read(MAX_BYTES + 1)

    def match():
        # streamed within the upload caps (DMCFLOW_UPLOAD_MAX_*), every row read before any case is opened
        table = spreadsheet_rows(data, file.filename or "", FileLimits.from_settings(settings))
        first = next(table, None)
        if first is None:
            raise invalid("file_empty", "ไฟล์ว่าง", "The file is empty")
        header = [h.strip().lstrip("\ufeff") for h in first[1]]
        column = next((i for i, h in enumerate(header) if h in ("เลขประจำตัวประชาชน", "national_id", "ID")), None)
        if column is None:
            raise invalid("file_headers", "ไม่พบคอลัมน์ เลขประจำตัวประชาชน", "No เลขประจำตัวประชาชน column")
        issues, ids, rows = [], {}, 0
        for n, cells in table:
            rows += 1
            raw = cells[column].strip() if column < len(cells) else ""
            if not raw:
                continue
            try:
                ids[normalise_student_id(raw)] = n
            except Refusal as r:
                issues.append({"row": n, "column": header[column], "value": raw, **r.as_dict()})
        with session_scope(engine) as session:
            stmt = select(Student).where(Student.status == ACTIVE)
            if user.role == "district":
                stmt = stmt.join(School, School.code == Student.school_code).where(School.area == user.area)
            found = select_in(session, stmt, Student.student_id, list(ids))
            # the cases a list sent before opened, read at once (then found by the identity map, not one query each)
            select_in(session, select(DuplicateCase), DuplicateCase.id,
                      [case_key(round_id, "affiliation", s.id, agency) for s in found])
            cases = [open_affiliation_case(session, round_id, s, agency)[1] for s in found]
        return rows, cases, issues

    rows, cases, issues = await asyncio.to_thread(match)
    starting = asyncio.Semaphore(16)  # a list with thousands of matches: not one start after another

    async def start(case) -> None:
        async with starting:
            await client.start_workflow(DuplicateCaseWorkflow.run, case, id=duplicate_case_id(case.case_id),
                                        task_queue=settings.task_queue,
                                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)

    await asyncio.gather(*(start(case) for case in cases))
    return AffiliationReport(agency=AGENCIES[agency][0], rows=rows, matches=len(cases),
                             cases=[c.case_id for c in cases], issues=issues)
