"""One student on the roster: the whole ID, and the forms that change the record: edit (R9), transfer out
(R7), a death with its evidence, each through the API's own operation (api/routers/students.py)."""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlmodel import Session

from api.deps import EngineDep, TemporalDep, school_in_scope
from api.routers import students as students_api
from api.viewer import PageUser, PageUserDep, require_page_csrf
from db.engine import session_scope
from db.models import School, Student
from domain.refusals import Refusal, not_found, refusal
from domain.roster_rules import StudentUpdateIn
from web.app import PageRoute, path_of, remember
from web.forms import Beside, CsrfForm, field_refusal
from web.rendering import page
from web.roster_pages.common import (FIELD_OF, NOT_A_FORM_MATTER, ROSTER, ROUND_LIMIT, SCHOOL_LIMIT, STUDENT,
                                     StudentPk, Text, optional_date, school_and_round)

router = APIRouter(route_class=PageRoute, tags=["workbench"])
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
        school, found = school_and_round(session, page_user, school_code, round_id)
        pupil = _student(session, school, pk)
        session.expunge_all()
    return page(request, "roster/student.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, pupil=pupil, which=which, form=form or {}, problem=problem,
                problem_for=problem_for or ("submit" if problem else None),
                notice=notice if notice in NOTICES else None,
                base=path_of(ROSTER, school_code=school.code, round_id=round_id),
                status=problem.status if problem else 200)


@router.get(STUDENT, operation_id="roster_student_page", include_in_schema=False)
async def roster_student_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, pk: StudentPk,
                              page_user: PageUserDep, engine: EngineDep,
                              notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    remember(request, page_user)
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
            problem, field = field_refusal(exc)
            raise Beside(problem, field) from None
        except ValueError:
            raise Beside(refusal("invalid_field", "กรอกวันที่ให้ถูกต้อง", "Give a valid date", 422), "left_on") from None
        await operation(round_id, school_code, body, page_user.user, engine, client)
    except Beside as beside:
        return await asyncio.to_thread(_student_page, request, page_user, engine, school_code, round_id, pk,
                                       which=which, form=form, problem=beside.problem, problem_for=beside.field)
    except Refusal as problem:
        if problem.code in NOT_A_FORM_MATTER:
            raise
        return await asyncio.to_thread(_student_page, request, page_user, engine, school_code, round_id, pk,
                                       which=which, form=form, problem=problem,
                                       problem_for=FIELD_OF.get(problem.code, "submit"))
    base = path_of(STUDENT, school_code=school_code, round_id=round_id, pk=pk)
    return RedirectResponse(f"{base}?{urlencode({'notice': notice})}", status_code=303)


@router.post(STUDENT + "/edit", operation_id="roster_edit_student", include_in_schema=False)
async def roster_edit_student(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, pk: StudentPk,
                              page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                              csrf_token: CsrfForm = None, prefix: Text = "", first_name: Text = "",
                              last_name: Text = "", grade: Text = "", classroom: Text = "", student_no: Text = "",
                              reason: Text = "") -> Response:
    """R9: only what the clerk changed is sent (an unchanged field is not an edit)."""
    remember(request, page_user)
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
    remember(request, page_user)
    form = dict(left_on=left_on, to_school=to_school, reason=reason)
    return await _change(request, page_user, engine, client, school_code, round_id, pk, csrf_token, "transfer_out",
                         form, lambda sid: students_api.TransferOutBody(
                             student=sid, left_on=optional_date(left_on), to_school=to_school.strip() or None,
                             reason=reason.strip() or None),
                         students_api.transfer_out_student, "transferred_out")


@router.post(STUDENT + "/status", operation_id="roster_student_status", include_in_schema=False)
async def roster_student_status(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, pk: StudentPk,
                                page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                                csrf_token: CsrfForm = None, note: Text = "") -> Response:
    """A death, with its evidence: the only status a school sets (domain/roster_rules.py check_status_change)."""
    remember(request, page_user)
    form = dict(note=note)
    return await _change(request, page_user, engine, client, school_code, round_id, pk, csrf_token, "status", form,
                         lambda sid: students_api.StatusBody(student=sid, status="deceased", note=note),
                         students_api.set_student_status, "deceased")
