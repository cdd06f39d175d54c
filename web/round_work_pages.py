"""The school staff's round work (issue 17): R10's three end-of-year menus and R11's existence marks, as pages.

A whole class at a time: the menus show one table per class with every student's row filled with what fits
(3.2.2: promoted, or graduated in a graduating grade), the staff change the exceptions and save the class.
Saving calls the JSON routers' own functions (api/routers/roster.py `record_end_of_year`,
api/routers/existence.py), so the workflow's rules, the order of the menus among them, answer the page as they
answer the API; a refusal is shown beside the row or button it is about. Reading is from the database only.
"""

from __future__ import annotations

import asyncio
from itertools import groupby
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from pydantic import ValidationError
from sqlalchemy import and_, case, func
from sqlmodel import select

from api.deps import EngineDep, TemporalDep, require_role, school_in_scope
from api.routers.existence import list_existence_marks, mark_student_exception, mark_students_present
from api.routers.roster import record_end_of_year
from api.views import existence_counts_out
from api.viewer import CSRF_FIELD, PageUser, PageUserDep, require_page_csrf
from db.engine import session_scope
from db.existence import ACTIVE
from db.models import EndOfYearRecord, ExistenceMark, Round, School, Student
from domain.end_of_year import Destination, EndOfYearBatch, RepeatReason, Result
from domain.existence import ExceptionKind, ExistenceCounts, Mark, MarkExceptionIn, MarkPresentIn
from domain.grades import is_graduating
from domain.refusals import Refusal, invalid, not_found
from web.app import PageRoute, remember
from web.rendering import page

router = APIRouter(route_class=PageRoute, tags=["workbench"])
WORK = "/school/{school_code}/rounds/{round_id}"
STEPS = ("3.2.2", "3.2.2.1", "3.2.2.2")
OFF_LIMITS = ("forbidden", "not_found")
ClassQuery = Annotated[str | None, Query(alias="class", max_length=20)]
StepQuery = Annotated[str, Query(max_length=8)]


def staff_school(session, page_user: PageUser, school_code: str, round_id: str) -> School:
    """The school's own staff only: the director certifies what they did and changes nothing (R12)."""
    require_role(page_user.user, "staff", what_th="บันทึกข้อมูลของโรงเรียน (เฉพาะเจ้าหน้าที่โรงเรียน)",
                 what_en="record the school's data (school staff only)")
    school = school_in_scope(session, page_user.user, school_code)
    if session.get(Round, round_id) is None:
        raise not_found("รอบ", "round", round_id)
    return school


async def require_staff(engine, page_user: PageUser, school_code: str, round_id: str) -> None:
    """Who may send the form, before anything in it is read: a director's empty form is a 403, not a 422."""
    def check() -> None:
        with session_scope(engine) as session:
            staff_school(session, page_user, school_code, round_id)

    await asyncio.to_thread(check)


async def staff_form(request: Request, page_user: PageUser, engine, school_code: str, round_id: str) -> FormData:
    """A form of the staff's pages: its CSRF token first (another site's form learns nothing), then who sends it
    and for which school, and only then what it says."""
    remember(request, page_user)
    form = await request.form()
    token = form.get(CSRF_FIELD)
    require_page_csrf(page_user, token if isinstance(token, str) else None)
    await require_staff(engine, page_user, school_code, round_id)
    return form


def _classes(session, school_code: str) -> list[tuple[str, str]]:
    return list(session.exec(select(Student.grade, Student.classroom)
                             .where(Student.school_code == school_code, Student.status == ACTIVE)
                             .distinct().order_by(Student.grade, Student.classroom)).all())


def class_key(grade: str, classroom: str) -> str:
    return f"{grade}/{classroom}"


def _chosen(classes: list[tuple[str, str]], wanted: str | None) -> tuple[str, str] | None:
    for grade, room in classes:
        if class_key(grade, room) == wanted:
            return grade, room
    return classes[0] if classes and wanted is None else None


def _validated(model, data: dict):
    """The API's request model from the form; a value no page offers is the form's refusal, never a 500."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:3])
        raise invalid("invalid_request", f"ข้อมูลในแบบฟอร์มไม่ถูกต้อง: {where}", f"The form is invalid: {where}") from None


# --- R10: menus 3.2.2, 3.2.2.1, 3.2.2.2 ---------------------------------------------------------------------

def _menu_rows(session, round_id: str, school_code: str, step: str, grade: str, room: str) -> list[dict]:
    """The class's students this menu is about, each with what is recorded and what the form proposes."""
    found = session.exec(
        select(Student, EndOfYearRecord)
        .outerjoin(EndOfYearRecord, and_(EndOfYearRecord.student_pk == Student.id, EndOfYearRecord.round_id == round_id))
        .where(Student.school_code == school_code, Student.status == ACTIVE, Student.grade == grade,
               Student.classroom == room)
        .order_by(Student.student_no, Student.id)).all()
    rows = []
    for student, record in found:
        result = record.result if record else None
        if step == "3.2.2.1" and result != Result.repeat.value:
            continue  # 3.2.2.1 is about repeaters, 3.2.2.2 about graduates: the others are not in its table
        if step == "3.2.2.2" and result != Result.graduated.value:
            continue
        proposed = result or (Result.graduated.value if is_graduating(grade) else Result.promoted.value)
        rows.append(dict(student=student.student_id, no=student.student_no,
                         name=f"{student.prefix}{student.first_name} {student.last_name}".strip(),
                         recorded=result is not None if step == "3.2.2" else
                         bool(record.reasons) if step == "3.2.2.1" else bool(record.destination),
                         result=proposed, reasons=(record.reasons or []) if record else [],
                         destination=(record.destination or "") if record else ""))
    return rows


def _menus_page(request: Request, page_user: PageUser, engine, round_id: str, school_code: str, step: str,
                wanted: str | None, *, problem: Refusal | None = None, issues: dict[str, dict] | None = None,
                saved: int | None = None, posted: dict | None = None) -> Response:
    if step not in STEPS:
        raise invalid("invalid_step", "เมนูต้องเป็น 3.2.2, 3.2.2.1 หรือ 3.2.2.2", "The menu is 3.2.2, 3.2.2.1 or 3.2.2.2")
    with session_scope(engine) as session:
        school = staff_school(session, page_user, school_code, round_id)
        classes = _classes(session, school_code)
        chosen = _chosen(classes, wanted)
        rows = _menu_rows(session, round_id, school_code, step, *chosen) if chosen else []
    for row in rows:  # a refused save shows what was sent, not what was stored
        if posted and row["student"] in posted:
            row.update(posted[row["student"]])
    return page(request, "work/menus.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round_id=round_id, step=step, steps=STEPS, classes=classes, chosen=chosen, rows=rows,
                results=[r.value for r in Result], reasons=[r.value for r in RepeatReason],
                destinations=[d.value for d in Destination], problem=problem, issues=issues or {}, saved=saved,
                class_key=class_key, status=problem.status if problem else (422 if issues else 200))


@router.get(WORK + "/end-of-year", operation_id="workbench_end_of_year", include_in_schema=False)
async def workbench_end_of_year(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                                engine: EngineDep, step: StepQuery = "3.2.2", cls: ClassQuery = None,
                                saved: Annotated[int | None, Query(ge=0)] = None) -> Response:
    remember(request, page_user)
    return await asyncio.to_thread(_menus_page, request, page_user, engine, round_id, school_code, step, cls,
                                   saved=saved)


def _menu_records(form, step: str) -> tuple[list[dict], dict]:
    """The table's rows as the API's records (rows left empty in 3.2.2.1/3.2.2.2 are not sent) and as sent."""
    records, posted = [], {}
    for i, student in enumerate(form.getlist("student")):
        if step == "3.2.2":
            result = form.get(f"result-{i}") or ""
            records.append({"student": student, "result": result})
            posted[student] = {"result": result}
        elif step == "3.2.2.1":
            reasons = form.getlist(f"reasons-{i}")
            posted[student] = {"reasons": reasons}
            if reasons:
                records.append({"student": student, "reasons": reasons})
        else:
            destination = form.get(f"destination-{i}") or ""
            posted[student] = {"destination": destination}
            if destination:
                records.append({"student": student, "destination": destination})
    return records, posted


@router.post(WORK + "/end-of-year", operation_id="workbench_record_end_of_year", include_in_schema=False)
async def workbench_record_end_of_year(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                                       engine: EngineDep, client: TemporalDep) -> Response:
    form = await staff_form(request, page_user, engine, school_code, round_id)
    step, wanted = str(form.get("step") or ""), str(form.get("class") or "")
    records, posted = _menu_records(form, step)

    def again(**kw) -> Response:
        return _menus_page(request, page_user, engine, round_id, school_code, step, wanted, posted=posted, **kw)

    try:
        if not records:  # the API's own words for an empty save (its model refuses it before its route would)
            raise invalid("records_required", "ต้องมีรายการอย่างน้อยหนึ่งรายการ", "At least one record is required")
        body = _validated(EndOfYearBatch, {"step": step, "records": records})
        report = await record_end_of_year(round_id, school_code, body, page_user.user, engine, client)
    except Refusal as problem:
        if problem.code in OFF_LIMITS:  # not this user's to do: the page that says so, nothing of the form
            raise
        return await asyncio.to_thread(again, problem=problem)
    if report.issues:  # the rows the rules refused, each beside its row; the others are saved
        issues = {records[i["row"] - 1]["student"]: i for i in report.issues if 0 < (i.get("row") or 0) <= len(records)}
        return await asyncio.to_thread(again, issues=issues, saved=report.applied + report.unchanged)
    query = urlencode({"step": step, "class": wanted, "saved": report.applied + report.unchanged})
    return RedirectResponse(f"{request.url.path}?{query}", status_code=303)


# --- R11: existence, record by record -----------------------------------------------------------------------

def _class_counts(session, round_id: str, school_code: str) -> list[dict]:
    """R11 class by class, in one grouped query: what "every class" shows of a school of 3,000 (its classes and
    what is left in each), where a row per student would be a 2 MB page no one reads on a phone."""
    marks = and_(ExistenceMark.student_pk == Student.id, ExistenceMark.round_id == round_id)
    found = session.execute(
        select(Student.grade, Student.classroom, func.count(Student.id),
               func.sum(case((ExistenceMark.mark == Mark.present.value, 1), else_=0)),
               func.sum(case((ExistenceMark.mark == Mark.exception.value, 1), else_=0)))
        .select_from(Student).outerjoin(ExistenceMark, marks)
        .where(Student.school_code == school_code, Student.status == ACTIVE)
        .group_by(Student.grade, Student.classroom).order_by(Student.grade, Student.classroom)).all()
    return [dict(grade=grade, room=room, students=n, present=present or 0, exceptions=exceptions or 0,
                 unmarked=n - (present or 0) - (exceptions or 0)) for grade, room, n, present, exceptions in found]


def students_by_class(session, school_code: str) -> list[tuple[tuple[str, str], list[tuple[str, str]]]]:
    """Every active student for the exception form's list, class by class: ((grade, room), [(id, name)])."""
    found = session.execute(
        select(Student.grade, Student.classroom, Student.student_id, Student.prefix, Student.first_name,
               Student.last_name)
        .where(Student.school_code == school_code, Student.status == ACTIVE)
        .order_by(Student.grade, Student.classroom, Student.student_no, Student.id)).all()
    return [(cls, [(sid, f"{prefix}{first} {last}".strip()) for _, _, sid, prefix, first, last in rows])
            for cls, rows in groupby(found, key=lambda row: (row[0], row[1]))]


async def _existence(request: Request, page_user: PageUser, engine, round_id: str, school_code: str,
                     wanted: str | None, *, problem: Refusal | None = None, problem_for: str | None = None,
                     form: dict | None = None, done: str | None = None) -> Response:
    def scope():  # the school's staff only, before the API's list (which admits officers too)
        with session_scope(engine) as session:
            school = staff_school(session, page_user, school_code, round_id)
            classes = _classes(session, school_code)
            # a class at a time by default; "" (or a class the school does not have) is every class: the classes
            # with their counts, not 3,000 rows
            chosen = _chosen(classes, wanted) if wanted != "" else None
            if chosen is not None:  # the API's own list of the class
                listing = list_existence_marks(round_id, school_code, page_user.user, session, grade=chosen[0],
                                               classroom=chosen[1], mark=None)
                return school, classes, chosen, None, listing.counts, listing.marks, []
            per_class = _class_counts(session, round_id, school_code)
            counts = existence_counts_out(ExistenceCounts(  # the school's, as the gate counts them: the classes' sum
                students=sum(c["students"] for c in per_class), present=sum(c["present"] for c in per_class),
                exceptions=sum(c["exceptions"] for c in per_class)))
            return school, classes, None, per_class, counts, [], students_by_class(session, school_code)

    school, classes, chosen, per_class, counts, marks, students = await asyncio.to_thread(scope)
    return await asyncio.to_thread(
        page, request, "work/existence.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
        round_id=round_id, classes=classes, chosen=chosen, counts=counts, marks=marks, per_class=per_class,
        students=students, kinds=[k.value for k in ExceptionKind], class_key=class_key, problem=problem,
        problem_for=problem_for, form=form or {"student": "", "kind": "", "note": ""}, done=done,
        status=problem.status if problem else 200)


@router.get(WORK + "/existence", operation_id="workbench_existence", include_in_schema=False)
async def workbench_existence(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                              engine: EngineDep, cls: ClassQuery = None,
                              done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    remember(request, page_user)
    return await _existence(request, page_user, engine, round_id, school_code, cls,
                            done=done if done in ("present", "exception") else None)


def _back(request: Request, wanted: str, done: str) -> RedirectResponse:
    path = request.url.path.rsplit("/", 1)[0]
    return RedirectResponse(f"{path}?{urlencode({'class': wanted, 'done': done})}", status_code=303)


@router.post(WORK + "/existence/present", operation_id="workbench_mark_present", include_in_schema=False)
async def workbench_mark_present(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                                 engine: EngineDep, client: TemporalDep) -> Response:
    """Everyone, this class, or one student present: the API's own route, with its selection rule."""
    form = await staff_form(request, page_user, engine, school_code, round_id)
    who, wanted = str(form.get("who") or ""), str(form.get("class") or "")
    grade, _, room = wanted.partition("/")
    selection = {"everyone": {"all": True}, "class": {"grade": grade or None, "classroom": room if grade else None},
                 "student": {"students": [str(form.get("student") or "")] if form.get("student") else []}}
    try:
        body = _validated(MarkPresentIn, selection.get(who, {}))
        await mark_students_present(round_id, school_code, body, page_user.user, engine, client)
    except Refusal as problem:
        if problem.code in OFF_LIMITS:  # not this user's to do: the page that says so, nothing of the form
            raise
        return await _existence(request, page_user, engine, round_id, school_code, wanted, problem=problem,
                                problem_for="present")
    return _back(request, wanted, "present")


FIELD_OF = {"exception_note_required": "note", "exception_without_case": "kind", "student_not_on_roster": "student"}


@router.post(WORK + "/existence/exception", operation_id="workbench_mark_exception", include_in_schema=False)
async def workbench_mark_exception(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                                   engine: EngineDep, client: TemporalDep) -> Response:
    form = await staff_form(request, page_user, engine, school_code, round_id)
    wanted = str(form.get("class") or "")
    sent = {name: str(form.get(name) or "") for name in ("student", "kind", "note")}
    try:
        body = _validated(MarkExceptionIn, {**sent, "note": sent["note"] or None})
        await mark_student_exception(round_id, school_code, body, page_user.user, engine, client)
    except Refusal as problem:
        if problem.code in OFF_LIMITS:  # not this user's to do: the page that says so, nothing of the form
            raise
        # a form that is not the rules' business (no student chosen, no kind) is about the field left empty
        where = FIELD_OF.get(problem.code) or ("student" if not sent["student"] else "kind" if not sent["kind"]
                                               else "exception")
        return await _existence(request, page_user, engine, round_id, school_code, wanted, problem=problem,
                                problem_for=where, form=sent)
    return _back(request, wanted, "exception")
