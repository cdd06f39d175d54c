"""A new student on the roster: added (R5, R6) or transferred in, through the API's own `add_student` and
`transfer_in_student`; a refusal comes back as the form with the reason beside its field."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from api.deps import EngineDep, TemporalDep
from api.routers import students as students_api
from api.viewer import PageUser, PageUserDep, require_page_csrf
from db.engine import session_scope
from domain.refusals import Refusal, refusal
from domain.roster_rules import StudentIn
from domain.thai_time import arabic_digits
from web.app import PageRoute, path_of, remember
from web.forms import CsrfForm, field_refusal
from web.rendering import page
from web.roster_pages.common import (FIELD_OF, NOT_A_FORM_MATTER, ROSTER, ROUND_LIMIT, SCHOOL_LIMIT, Text,
                                     optional_date, school_and_round)

router = APIRouter(route_class=PageRoute, tags=["workbench"])
NEW_KINDS = ("add", "transfer_in")
EMPTY_NEW = {"student": "", "prefix": "", "first_name": "", "last_name": "", "gender": "", "grade": "",
             "classroom": "", "student_no": "", "birth_date": "", "entry_academic_year": "", "from_school": "",
             "sat_final_exam_here": False}


def _new_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str, kind: str,
              form: dict | None = None, problem: Refusal | None = None, problem_for: str | None = None) -> Response:
    with session_scope(engine) as session:
        school, found = school_and_round(session, page_user, school_code, round_id)
        session.expunge_all()
    return page(request, "roster/new.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, kind=kind if kind in NEW_KINDS else "add", form=form or EMPTY_NEW, problem=problem,
                problem_for=problem_for if problem_for in EMPTY_NEW else ("submit" if problem else None),
                base=path_of(ROSTER, school_code=school.code, round_id=round_id),
                status=problem.status if problem else 200)


@router.get(ROSTER + "/new", operation_id="roster_new_page", include_in_schema=False)
async def roster_new_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, page_user: PageUserDep,
                          engine: EngineDep, kind: Annotated[str, Query(max_length=20)] = "add") -> Response:
    remember(request, page_user)
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
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    form = dict(student=student, prefix=prefix, first_name=first_name, last_name=last_name, gender=gender,
                grade=grade, classroom=classroom, student_no=student_no, birth_date=birth_date,
                entry_academic_year=entry_academic_year, from_school=from_school,
                sat_final_exam_here=sat_final_exam_here)
    kind = kind if kind in NEW_KINDS else "add"
    try:
        try:
            body = StudentIn(**{**form, "birth_date": optional_date(birth_date),
                                "entry_academic_year": int(arabic_digits(entry_academic_year).strip())
                                if entry_academic_year.strip() else None,
                                "from_school": from_school or None})
        except ValidationError as exc:
            problem, field = field_refusal(exc)
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
    base = path_of(ROSTER, school_code=school_code, round_id=round_id)
    return RedirectResponse(f"{base}?{urlencode({'notice': notice})}", status_code=303)


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return True
    except ValueError:
        return False
