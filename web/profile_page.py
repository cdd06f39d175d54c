"""The school's basic data (R1) as a page: the first item of the staff's list, which linked to the API's docs.

The form sends the API's own `update_school_profile` (api/routers/students.py), so the round's rules answer it as
they answer the API (e.g. nothing changes while the school's data is confirmed) and a refusal is shown beside the
field or the button it is about. The registered emails stay the administrator's (web/admin_pages.py): the intake
trusts mail from them.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from api.deps import EngineDep, TemporalDep
from api.routers import students as students_api
from api.viewer import PageUser, PageUserDep
from db.engine import session_scope
from domain.refusals import Refusal
from domain.roster_rules import SchoolProfileIn
from web.app import PageRoute, path_of, remember
from web.forms import Beside, field_refusal
from web.homes import PROFILE_FIELDS
from web.rendering import page
from web.round_work_pages import OFF_LIMITS, WORK, staff_form, staff_school

router = APIRouter(route_class=PageRoute, tags=["workbench"])
PROFILE = WORK + "/profile"


def _profile_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str, *,
                  form: dict | None = None, problem: Refusal | None = None, problem_for: str | None = None,
                  saved: bool = False) -> Response:
    with session_scope(engine) as session:
        school = staff_school(session, page_user, school_code, round_id)
        session.expunge(school)
    return page(request, "work/profile.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round_id=round_id, fields=PROFILE_FIELDS, saved=saved and problem is None,
                form=form or {name: getattr(school, name) or "" for name in PROFILE_FIELDS},
                problem=problem, problem_for=problem_for,
                action=path_of(PROFILE, school_code=school.code, round_id=round_id),
                status=problem.status if problem else 200)


@router.get(PROFILE, operation_id="workbench_school_profile", include_in_schema=False)
async def workbench_school_profile(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                                   engine: EngineDep, saved: Annotated[str | None, Query(max_length=2)] = None
                                   ) -> Response:
    remember(request, page_user)
    return await asyncio.to_thread(_profile_page, request, page_user, engine, school_code, round_id,
                                   saved=saved == "1")


@router.post(PROFILE, operation_id="workbench_save_school_profile", include_in_schema=False)
async def workbench_save_school_profile(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                                        engine: EngineDep, client: TemporalDep) -> Response:
    form = await staff_form(request, page_user, engine, school_code, round_id)
    sent = {name: value.strip()[:1000] if isinstance(value := form.get(name), str) else "" for name in PROFILE_FIELDS}
    try:
        try:
            body = SchoolProfileIn(**sent)
        except ValidationError as exc:
            raise Beside(*field_refusal(exc)) from None
        await students_api.update_school_profile(round_id, school_code, body, page_user.user, engine, client)
    except Beside as beside:
        return await asyncio.to_thread(_profile_page, request, page_user, engine, school_code, round_id, form=sent,
                                       problem=beside.problem, problem_for=beside.field)
    except Refusal as problem:
        if problem.code in OFF_LIMITS:
            raise
        return await asyncio.to_thread(_profile_page, request, page_user, engine, school_code, round_id, form=sent,
                                       problem=problem, problem_for="submit")
    return RedirectResponse(path_of(PROFILE, school_code=school_code, round_id=round_id) + "?saved=1", status_code=303)
