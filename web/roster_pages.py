"""The school staff's roster pages: the DMC export's import with its row-by-row report, the student list, and
the forms of the rules table (add, transfer in, edit, transfer out, a death) for one school in one round.

Every action calls the JSON API's own function (api/routers/roster.py `import_roster_file`,
api/routers/students.py), so a page can do nothing the API would refuse and says the same reason in words,
beside the field it is about. The list reads the `students` table only, never a workflow. A student is named
in a path by the row's number and in searches by a POST body: national IDs and names stay out of access logs.
The list shows an ID masked but for its last four digits; the student's own page shows it whole.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session

from api.deps import EngineDep, SettingsDep, TemporalDep, school_in_scope
from api.routers import roster as roster_api
from api.routers import students as students_api
from api.schemas import BatchReport
from api.viewer import CSRF_FIELD, PageUser, PageUserDep, require_page_csrf
from db.engine import session_scope
from db.models import Round, School, Student
from domain.refusals import Refusal, not_found, refusal
from domain.roster_rules import StudentIn, StudentUpdateIn
from domain.spreadsheet_cells import csv_cell
from domain.thai_time import arabic_digits
from web import import_progress
from web.app import PageRoute
from web.homes import school_round_for
from web.rendering import page

router = APIRouter(route_class=PageRoute, tags=["workbench"])
ROSTER = "/school/{school_code}/rounds/{round_id}/roster"
PAGE_SIZE = 50
STATUSES = ("studying", "transferred_out", "dropped_out", "deceased", "removed")
CsrfForm = Annotated[str | None, Form(alias=CSRF_FIELD, max_length=100)]
Text = Annotated[str, Form(max_length=500)]
StudentPk = Annotated[int, Path(ge=1, le=2**31 - 1)]
ROUND_LIMIT = Annotated[str, Path(max_length=40)]
SCHOOL_LIMIT = Annotated[str, Path(max_length=10)]

# the field of a form that a rule's refusal is about (the refusal is shown beside it); others go by the button
FIELD_OF = {
    "national_id_format": "student", "national_id_first_digit": "student", "national_id_check_digit": "student",
    "gcode_format": "student", "gcode_required": "student", "already_on_roster": "student",
    "active_elsewhere": "student",
    "entry_year_not_be": "entry_academic_year", "r5_applicant": "entry_academic_year",
    "r6_no_final_exam": "sat_final_exam_here", "grade_format": "grade", "grade_up_needs_reason": "grade",
    "left_on_in_future": "left_on", "r7_sat_final_exam": "left_on", "status_note_required": "note",
}

# who the user is or what exists, not a field: the error page says it (the form may not even be shown to this role)
NOT_A_FORM_MATTER = {"forbidden", "not_found", "unauthenticated"}


def _remember(request: Request, page_user: PageUser) -> None:
    request.state.page_user = page_user  # a refusal page still shows the user's menu


def mask_id(student_id: str) -> tuple[str, str]:
    """(the hidden part as dots, the last four characters): the list never shows a whole national ID."""
    return "•" * max(0, len(student_id) - 4), student_id[-4:]


def _form_refusal(exc: ValidationError) -> tuple[Refusal, str]:
    """A form field the rules' models refuse (too long, empty name, not a date): the refusal and its field."""
    first = exc.errors()[0]
    field = str(first.get("loc", ("",))[-1])
    return refusal("invalid_field", f"ข้อมูลในช่องนี้ไม่ถูกต้อง: {first.get('msg', '')}",
                   f"This field is not valid: {first.get('msg', '')}", 422), field


def _optional_date(value: str) -> date | None:
    return date.fromisoformat(value) if value.strip() else None


@dataclass
class Listing:
    students: list[Student]
    total: int
    grades: list[str]
    page: int
    pages: int


def _search_terms(q: str):
    """An ID (or its last digits) when the words are digits, else a name."""
    text = arabic_digits(q).strip()
    compact = re.sub(r"[\s\-]", "", text).upper()
    if re.fullmatch(r"G?[0-9]{3,13}", compact):
        return Student.student_id.contains(compact, autoescape=True)
    words = [w for w in text.split() if w][:4]
    name = Student.prefix + " " + Student.first_name + " " + Student.last_name
    return [name.ilike(f"%{w}%", escape="\\") for w in (w.replace("\\", "\\\\").replace("%", "\\%")
                                                        .replace("_", "\\_") for w in words)]


def roster_listing(session: Session, school_code: str, q: str = "", grade: str = "", status: str = "",
                   page_no: int = 1) -> Listing:
    """One page of a school's students, searched and filtered: an indexed count and one page of rows."""
    where = [Student.school_code == school_code]
    if q.strip():
        terms = _search_terms(q)
        where += terms if isinstance(terms, list) else [terms]
    if grade:
        where.append(Student.grade == grade)
    if status in STATUSES:
        where.append(Student.status == status)
    total = session.scalar(select(func.count()).select_from(Student).where(*where)) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page_no = min(max(1, page_no), pages)
    rows = session.scalars(select(Student).where(*where)
                           .order_by(Student.grade, Student.classroom, Student.student_no, Student.first_name,
                                     Student.id).offset((page_no - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    grades = session.scalars(select(Student.grade).where(Student.school_code == school_code).distinct()
                             .order_by(Student.grade)).all()
    return Listing(students=list(rows), total=total, grades=list(grades), page=page_no, pages=pages)


def _school_and_round(session: Session, page_user: PageUser, school_code: str, round_id: str) -> tuple[School, Round]:
    school = school_in_scope(session, page_user.user, school_code)
    found = session.get(Round, round_id)
    if found is None:
        raise not_found("รอบ", "round", round_id)
    return school, found


def _list_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str, *, q: str = "",
               grade: str = "", status: str = "", page_no: int = 1, notice: str | None = None) -> Response:
    with session_scope(engine) as session:
        school, found = _school_and_round(session, page_user, school_code, round_id)
        listing = roster_listing(session, school.code, q, grade, status, page_no)
        session.expunge_all()
    return page(request, "roster/list.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, listing=listing, q=q, grade=grade, status_filter=status, statuses=STATUSES, mask_id=mask_id,
                base=ROSTER.format(school_code=quote(school.code), round_id=quote(round_id, safe="")),
                notice=notice if notice in ("added", "transferred_in") else None)


@router.get("/roster", operation_id="roster_start_page", include_in_schema=False)
async def roster_start_page(request: Request, page_user: PageUserDep, engine: EngineDep,
                            round: Annotated[str | None, Query(max_length=40)] = None,
                            school: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    """The menu's link: the user's own school (an officer names one) in its newest round."""
    _remember(request, page_user)

    def chosen() -> tuple[str, str]:
        with session_scope(engine) as session:
            code = school or page_user.user.school_code
            if not code:
                raise refusal("school_required", "ระบุโรงเรียน (?school=รหัสโรงเรียน 10 หลัก)",
                              "Name the school (?school=its 10-digit code)", 422)
            school_in_scope(session, page_user.user, code)
            round_id = school_round_for(session, code, round)
            if round_id is None:
                raise refusal("no_round", "ยังไม่มีรอบที่เริ่มสำหรับโรงเรียนนี้",
                              "No round has been started for this school yet", 404)
            return code, round_id

    code, round_id = await asyncio.to_thread(chosen)
    return RedirectResponse(ROSTER.format(school_code=quote(code), round_id=quote(round_id, safe="")), status_code=303)


@router.get(ROSTER, operation_id="roster_page", include_in_schema=False)
async def roster_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, page_user: PageUserDep,
                      engine: EngineDep, grade: Annotated[str, Query(max_length=4)] = "",
                      status: Annotated[str, Query(max_length=20)] = "",
                      page_no: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
                      notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    _remember(request, page_user)
    return await asyncio.to_thread(_list_page, request, page_user, engine, school_code, round_id, grade=grade,
                                   status=status, page_no=page_no, notice=notice)


@router.post(ROSTER + "/search", operation_id="roster_search_page", include_in_schema=False)
async def roster_search_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                             page_user: PageUserDep, engine: EngineDep, csrf_token: CsrfForm = None,
                             q: Annotated[str, Form(max_length=120)] = "", grade: Annotated[str, Form(max_length=4)] = "",
                             status: Annotated[str, Form(max_length=20)] = "",
                             page_no: Annotated[int, Form(alias="page", ge=1, le=10_000)] = 1) -> Response:
    """A search by name or ID is posted, so that neither is written in an access log's URL."""
    _remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    return await asyncio.to_thread(_list_page, request, page_user, engine, school_code, round_id, q=q, grade=grade,
                                   status=status, page_no=page_no)


# --- the import -------------------------------------------------------------------------------------

REPORT_COLUMNS = ("row", "column", "value", "code", "message_th", "message_en")


def report_csv(report: BatchReport) -> bytes:
    """The row-by-row report as a CSV for Excel (UTF-8 with BOM); a cell a spreadsheet would run stays text."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(["แถว (row)", "คอลัมน์ (column)", "ค่า (value)", "รหัส (code)", "เหตุผล", "reason"])
    for issue in report.issues:
        writer.writerow([csv_cell(issue.get(key, "") if issue.get(key) is not None else "") for key in REPORT_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _import_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str,
                 report: BatchReport | None = None, problem: Refusal | None = None, filename: str = "",
                 streaming: bool = False) -> Response:
    with session_scope(engine) as session:
        school, found = _school_and_round(session, page_user, school_code, round_id)
        session.expunge_all()
    download = None
    if report is not None and report.issues:
        download = "data:text/csv;charset=utf-8;base64," + base64.b64encode(report_csv(report)).decode()
    return page(request, "roster/import.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, report=report, download=download, filename=filename, problem=problem, streaming=streaming,
                base=ROSTER.format(school_code=quote(school.code), round_id=quote(round_id, safe="")),
                status=problem.status if problem else 200)


@router.get(ROSTER + "/import", operation_id="roster_import_page", include_in_schema=False)
async def roster_import_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                             page_user: PageUserDep, engine: EngineDep) -> Response:
    _remember(request, page_user)
    return await asyncio.to_thread(_import_page, request, page_user, engine, school_code, round_id)


@router.post(ROSTER + "/import", operation_id="roster_import_upload", include_in_schema=False)
async def roster_import_upload(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                               page_user: PageUserDep, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                               file: Annotated[UploadFile, File()], csrf_token: CsrfForm = None) -> Response:
    _remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    await asyncio.to_thread(_import_page, request, page_user, engine, school_code, round_id)  # the scope, first

    def shown(report: BatchReport | None = None, problem: Refusal | None = None, streaming: bool = False) -> Response:
        return _import_page(request, page_user, engine, school_code, round_id, report, problem, file.filename or "",
                            streaming=streaming)

    async def run(progress) -> BatchReport:
        return await roster_api.import_roster_file(engine, client, settings, page_user.user, round_id, file, progress)

    # a long import streams its progress into the page as it goes (web/import_progress.py)
    return await import_progress.answer(request, run, shown, keep=lambda problem: problem.code not in NOT_A_FORM_MATTER)


# --- a new student: add or transfer in ------------------------------------------------------------------

NEW_KINDS = ("add", "transfer_in")
EMPTY_NEW = {"student": "", "prefix": "", "first_name": "", "last_name": "", "gender": "", "grade": "",
             "classroom": "", "student_no": "", "birth_date": "", "entry_academic_year": "", "from_school": "",
             "sat_final_exam_here": False}


def _new_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str, kind: str,
              form: dict | None = None, problem: Refusal | None = None, problem_for: str | None = None) -> Response:
    with session_scope(engine) as session:
        school, found = _school_and_round(session, page_user, school_code, round_id)
        session.expunge_all()
    return page(request, "roster/new.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, kind=kind if kind in NEW_KINDS else "add", form=form or EMPTY_NEW, problem=problem,
                problem_for=problem_for if problem_for in EMPTY_NEW else ("submit" if problem else None),
                base=ROSTER.format(school_code=quote(school.code), round_id=quote(round_id, safe="")),
                status=problem.status if problem else 200)


@router.get(ROSTER + "/new", operation_id="roster_new_page", include_in_schema=False)
async def roster_new_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, page_user: PageUserDep,
                          engine: EngineDep, kind: Annotated[str, Query(max_length=20)] = "add") -> Response:
    _remember(request, page_user)
    return await asyncio.to_thread(_new_page, request, page_user, engine, school_code, round_id, kind)


@router.post(ROSTER + "/new", operation_id="roster_new_student", include_in_schema=False)
async def roster_new_student(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                             page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                             csrf_token: CsrfForm = None, kind: Annotated[str, Form(max_length=20)] = "add",
                             student: Annotated[str, Form(max_length=40)] = "", prefix: Text = "",
                             first_name: Text = "", last_name: Text = "", gender: Text = "", grade: Text = "",
                             classroom: Text = "", student_no: Text = "", birth_date: Text = "",
                             entry_academic_year: Text = "", from_school: Text = "",
                             sat_final_exam_here: Annotated[bool, Form()] = False) -> Response:
    _remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    form = dict(student=student, prefix=prefix, first_name=first_name, last_name=last_name, gender=gender,
                grade=grade, classroom=classroom, student_no=student_no, birth_date=birth_date,
                entry_academic_year=entry_academic_year, from_school=from_school,
                sat_final_exam_here=sat_final_exam_here)
    kind = kind if kind in NEW_KINDS else "add"
    try:
        try:
            body = StudentIn(**{**form, "birth_date": _optional_date(birth_date),
                                "entry_academic_year": int(arabic_digits(entry_academic_year).strip())
                                if entry_academic_year.strip() else None,
                                "from_school": from_school or None})
        except ValidationError as exc:
            problem, field = _form_refusal(exc)
            return await asyncio.to_thread(_new_page, request, page_user, engine, school_code, round_id, kind, form,
                                           problem, field)
        except ValueError:
            problem = refusal("invalid_field", "กรอกวันเกิดเป็นวันที่ และปีการศึกษาเป็นตัวเลข (พ.ศ.)",
                              "Give the birth date as a date and the academic year as a number (BE)", 422)
            field = "birth_date" if birth_date.strip() and not _is_date(birth_date) else "entry_academic_year"
            return await asyncio.to_thread(_new_page, request, page_user, engine, school_code, round_id, kind, form,
                                           problem, field)
        operation = students_api.add_student if kind == "add" else students_api.transfer_in_student
        await operation(round_id, school_code, body, page_user.user, engine, client)
    except Refusal as problem:
        if problem.code in NOT_A_FORM_MATTER:
            raise
        return await asyncio.to_thread(_new_page, request, page_user, engine, school_code, round_id, kind, form,
                                       problem, FIELD_OF.get(problem.code, "submit"))
    notice = "added" if kind == "add" else "transferred_in"
    base = ROSTER.format(school_code=quote(school_code), round_id=quote(round_id, safe=""))
    return RedirectResponse(f"{base}?{urlencode({'notice': notice})}", status_code=303)


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return True
    except ValueError:
        return False


# --- one student: the whole ID, and the forms that change the record ---------------------------------------

FORMS = ("edit", "transfer_out", "status")
NOTICES = ("edited", "transferred_out", "deceased")


def _student(session: Session, school: School, pk: int) -> Student:
    found = session.get(Student, pk)
    if found is None or found.school_code != school.code:
        raise not_found("นักเรียน", "student", str(pk))
    return found


def _student_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str, pk: int, *,
                  which: str | None = None, form: dict | None = None, problem: Refusal | None = None,
                  problem_for: str | None = None, notice: str | None = None) -> Response:
    with session_scope(engine) as session:
        school, found = _school_and_round(session, page_user, school_code, round_id)
        pupil = _student(session, school, pk)
        session.expunge_all()
    return page(request, "roster/student.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, pupil=pupil, which=which, form=form or {}, problem=problem,
                problem_for=problem_for or ("submit" if problem else None),
                notice=notice if notice in NOTICES else None,
                base=ROSTER.format(school_code=quote(school.code), round_id=quote(round_id, safe="")),
                status=problem.status if problem else 200)


STUDENT = ROSTER + "/students/{pk}"


@router.get(STUDENT, operation_id="roster_student_page", include_in_schema=False)
async def roster_student_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, pk: StudentPk,
                              page_user: PageUserDep, engine: EngineDep,
                              notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    _remember(request, page_user)
    return await asyncio.to_thread(_student_page, request, page_user, engine, school_code, round_id, pk, notice=notice)


async def _change(request: Request, page_user: PageUser, engine, client, school_code: str, round_id: str, pk: int,
                  csrf_token: str | None, which: str, form: dict, make_body, operation, notice: str) -> Response:
    """The form's check, then the API's own operation on the student the row is; a refusal comes back as the
    student's page with the reason beside the field (or the form's button) it is about."""
    require_page_csrf(page_user, csrf_token)

    def student_id() -> str:
        with session_scope(engine) as session:
            school = school_in_scope(session, page_user.user, school_code)
            return _student(session, school, pk).student_id

    sid = await asyncio.to_thread(student_id)
    try:
        try:
            body = make_body(sid)
        except ValidationError as exc:
            problem, field = _form_refusal(exc)
            raise _Beside(problem, field) from None
        except ValueError:
            raise _Beside(refusal("invalid_field", "กรอกวันที่ให้ถูกต้อง", "Give a valid date", 422), "left_on") from None
        await operation(round_id, school_code, body, page_user.user, engine, client)
    except _Beside as beside:
        return await asyncio.to_thread(_student_page, request, page_user, engine, school_code, round_id, pk,
                                       which=which, form=form, problem=beside.problem, problem_for=beside.field)
    except Refusal as problem:
        if problem.code in NOT_A_FORM_MATTER:
            raise
        return await asyncio.to_thread(_student_page, request, page_user, engine, school_code, round_id, pk,
                                       which=which, form=form, problem=problem,
                                       problem_for=FIELD_OF.get(problem.code, "submit"))
    base = STUDENT.format(school_code=quote(school_code), round_id=quote(round_id, safe=""), pk=pk)
    return RedirectResponse(f"{base}?{urlencode({'notice': notice})}", status_code=303)


class _Beside(Exception):
    def __init__(self, problem: Refusal, field: str):
        super().__init__(problem.code)
        self.problem, self.field = problem, field


@router.post(STUDENT + "/edit", operation_id="roster_edit_student", include_in_schema=False)
async def roster_edit_student(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, pk: StudentPk,
                              page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                              csrf_token: CsrfForm = None, prefix: Text = "", first_name: Text = "",
                              last_name: Text = "", grade: Text = "", classroom: Text = "", student_no: Text = "",
                              reason: Text = "") -> Response:
    """R9: only what the clerk changed is sent (an unchanged field is not an edit)."""
    _remember(request, page_user)
    form = dict(prefix=prefix, first_name=first_name, last_name=last_name, grade=grade, classroom=classroom,
                student_no=student_no, reason=reason)

    def changed(current: Student) -> dict:
        return {k: v.strip() for k, v in form.items() if k != "reason" and v.strip() != (getattr(current, k) or "")}

    def current() -> Student:
        with session_scope(engine) as session:
            school = school_in_scope(session, page_user.user, school_code)
            row = _student(session, school, pk)
            session.expunge(row)
            return row

    pupil = await asyncio.to_thread(current)
    changes = changed(pupil)
    return await _change(request, page_user, engine, client, school_code, round_id, pk, csrf_token, "edit", form,
                         lambda sid: students_api.UpdateStudentIn(student=sid, changes=StudentUpdateIn(**changes),
                                                                  reason=reason.strip() or None),
                         students_api.update_student, "edited")


@router.post(STUDENT + "/transfer-out", operation_id="roster_transfer_out_student", include_in_schema=False)
async def roster_transfer_out_student(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                                      pk: StudentPk, page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                                      csrf_token: CsrfForm = None, left_on: Annotated[str, Form(max_length=20)] = "",
                                      to_school: Text = "", reason: Text = "") -> Response:
    _remember(request, page_user)
    form = dict(left_on=left_on, to_school=to_school, reason=reason)
    return await _change(request, page_user, engine, client, school_code, round_id, pk, csrf_token, "transfer_out",
                         form, lambda sid: students_api.TransferOutBody(
                             student=sid, left_on=_optional_date(left_on), to_school=to_school.strip() or None,
                             reason=reason.strip() or None),
                         students_api.transfer_out_student, "transferred_out")


@router.post(STUDENT + "/status", operation_id="roster_student_status", include_in_schema=False)
async def roster_student_status(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, pk: StudentPk,
                                page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                                csrf_token: CsrfForm = None, note: Text = "") -> Response:
    """A death, with its evidence: the only status a school sets (domain/roster_rules.py check_status_change)."""
    _remember(request, page_user)
    form = dict(note=note)
    return await _change(request, page_user, engine, client, school_code, round_id, pk, csrf_token, "status", form,
                         lambda sid: students_api.StatusBody(student=sid, status="deceased", note=note),
                         students_api.set_student_status, "deceased")

