"""The roster's list: one page of a school's students, searched by name or ID and filtered by class and status.

A search is posted, never in the URL; the list shows an ID masked but for its last four digits.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlmodel import Session

from api.deps import EngineDep, school_in_scope
from api.viewer import PageUser, PageUserDep, require_page_csrf
from db.engine import session_scope
from db.models import Student
from domain.refusals import refusal
from domain.thai_time import arabic_digits
from web.app import PageRoute, path_of, remember
from web.forms import CsrfForm
from web.homes import school_round_for
from web.rendering import page
from web.roster_pages.common import ROSTER, ROUND_LIMIT, SCHOOL_LIMIT, school_and_round

router = APIRouter(route_class=PageRoute, tags=["workbench"])
PAGE_SIZE = 50
STATUSES = ("studying", "transferred_out", "dropped_out", "deceased", "removed")


def mask_id(student_id: str) -> tuple[str, str]:
    """(the hidden part as dots, the last four characters): the list never shows a whole national ID."""
    return "•" * max(0, len(student_id) - 4), student_id[-4:]


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


def _list_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str, *, q: str = "",
               grade: str = "", status: str = "", page_no: int = 1, notice: str | None = None) -> Response:
    with session_scope(engine) as session:
        school, found = school_and_round(session, page_user, school_code, round_id)
        listing = roster_listing(session, school.code, q, grade, status, page_no)
        session.expunge_all()
    return page(request, "roster/list.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, listing=listing, q=q, grade=grade, status_filter=status, statuses=STATUSES, mask_id=mask_id,
                base=path_of(ROSTER, school_code=school.code, round_id=round_id),
                notice=notice if notice in ("added", "transferred_in") else None)


@router.get("/roster", operation_id="roster_start_page", include_in_schema=False)
async def roster_start_page(request: Request, page_user: PageUserDep, engine: EngineDep,
                            round: Annotated[str | None, Query(max_length=40)] = None,
                            school: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    """The menu's link: the user's own school (an officer names one) in its newest round."""
    remember(request, page_user)

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
    return RedirectResponse(path_of(ROSTER, school_code=code, round_id=round_id), status_code=303)


@router.get(ROSTER, operation_id="roster_page", include_in_schema=False)
async def roster_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT, page_user: PageUserDep,
                      engine: EngineDep, grade: Annotated[str, Query(max_length=4)] = "",
                      status: Annotated[str, Query(max_length=20)] = "",
                      page_no: Annotated[int, Query(alias="page", ge=1, le=10_000)] = 1,
                      notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    remember(request, page_user)
    return await asyncio.to_thread(_list_page, request, page_user, engine, school_code, round_id, grade=grade,
                                   status=status, page_no=page_no, notice=notice)


@router.post(ROSTER + "/search", operation_id="roster_search_page", include_in_schema=False)
async def roster_search_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                             page_user: PageUserDep, engine: EngineDep, csrf_token: CsrfForm = None,
                             q: Annotated[str, Form(max_length=120)] = "", grade: Annotated[str, Form(max_length=4)] = "",
                             status: Annotated[str, Form(max_length=20)] = "",
                             page_no: Annotated[int, Form(alias="page", ge=1, le=10_000)] = 1) -> Response:
    """A search by name or ID is posted, so that neither is written in an access log's URL."""
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    return await asyncio.to_thread(_list_page, request, page_user, engine, school_code, round_id, q=q, grade=grade,
                                   status=status, page_no=page_no)
