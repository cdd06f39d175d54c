"""The workbench's shell and homes: server-rendered pages for the people who do the round.

`/` is the signed-in user's home by role: the school staff's list of what is left and the confirmation
(R11), the director's summary and certification (R12), the district officer's and the administrator's work
queue. A form's POST sends the same Temporal update as the API (api/workflow_updates.py) and a refusal is
shown in words beside the button. Pages take the web session only (api/viewer.py `current_page_user`):
without one the browser goes to the login page; every form carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from api.deps import EngineDep, NowDep, TemporalDep, actor_of, require_role, school_in_scope
from api.errors import OUTAGE
from api.viewer import (COOKIE, LOGIN_PAGE, PageUser, PageUserDep, SignInRequired,
                        clear_session_cookie, require_page_csrf)
from api.views import school_round_view
from api.workflow_updates import school_update
from db.engine import session_scope
from db.models import School
from domain.refusals import Refusal, not_found, refusal
from domain.school_round import Stage, already_certified
from web.forms import CsrfForm
from web.homes import school_home, work_queue
from web.rendering import STATIC_TYPES, page, static_file
from workflows.school_round import SchoolRoundWorkflow


def _problem_page(request: Request, problem: Refusal) -> Response:
    found: PageUser | None = getattr(request.state, "page_user", None)
    return page(request, "error.html", user=found.user if found else None, csrf_token=found.csrf_token if found else "",
                problem=problem, status=problem.status, headers=getattr(problem, "headers", None))


def _invalid(exc: RequestValidationError) -> Refusal:
    where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:5])
    return refusal("invalid_request", f"ข้อมูลที่ส่งมาไม่ถูกต้อง: {where}", f"The request is invalid: {where}", 422)


class PageRoute(APIRoute):
    """A page answers a browser in HTML: a refusal is a page that says it (Thai, English), never JSON; no
    session is a redirect to the login page, which comes back here afterwards."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired as missing:
                response = RedirectResponse(f"{LOGIN_PAGE}?next={quote(missing.next_url, safe='/')}", status_code=303)
                if COOKIE in request.cookies:  # an ended or made-up session: the browser forgets it
                    clear_session_cookie(response, request.app.state.settings)
                return response
            except Refusal as problem:
                return _problem_page(request, problem)
            except RequestValidationError as exc:
                return _problem_page(request, _invalid(exc))
            except (RPCError, RPCTimeoutOrCancelledError) as exc:
                if isinstance(exc, RPCError) and exc.status not in OUTAGE:
                    raise
                return _problem_page(request, refusal(
                    "temporal_unavailable", "ระบบจัดการขั้นตอนงานไม่พร้อมให้บริการชั่วคราว รายการนี้อาจยังไม่ถูกบันทึก "
                    "กรุณาโหลดหน้าใหม่เพื่อตรวจสอบแล้วลองอีกครั้ง", "The workflow service is unavailable for the moment; "
                    "this may not have been recorded: reload the page to check, then try again", 503))

        return page_handler


router = APIRouter(route_class=PageRoute, tags=["workbench"])
RoundQuery = Annotated[str | None, Query(max_length=40)]
SCHOOL_ROLES = ("staff", "director")


def remember(request: Request, page_user: PageUser) -> None:
    """Every page route's first line: a refusal page (`_problem_page`) still shows the user's menu."""
    request.state.page_user = page_user


def path_of(template: str, **parts: str | int) -> str:
    """A page's path from its route template, each part quoted whole: a `/` in a value stays in its segment."""
    return template.format(**{name: quote(str(value), safe="") for name, value in parts.items()})


def _home(request: Request, page_user: PageUser, engine, now, round_id: str | None,
          problem: Refusal | None = None, problem_for: str | None = None) -> Response:
    user = page_user.user
    common = dict(user=user, csrf_token=page_user.csrf_token, now=now, problem=problem, problem_for=problem_for,
                  status=problem.status if problem else 200)
    from web.live_pages import home_live  # it builds on this module's PageRoute

    with session_scope(engine) as session:
        live = home_live(session, user, round_id, now) if problem is None else None  # read before the page's data
        if user.role in SCHOOL_ROLES:
            school = session.get(School, user.school_code)
            if school is None:
                raise not_found("โรงเรียน", "school", user.school_code or "")
            home = school_home(session, school, round_id, now)
            template = "home_staff.html" if user.role == "staff" else "home_director.html"
            return page(request, template, home=home, live=live, **common)
        return page(request, "home_officer.html", queue=work_queue(session, user, now), live=live, **common)


@router.get("/", operation_id="workbench_home", include_in_schema=False)
async def workbench_home(request: Request, page_user: PageUserDep, engine: EngineDep, now: NowDep,
                         round: RoundQuery = None) -> Response:
    remember(request, page_user)
    return await asyncio.to_thread(_home, request, page_user, engine, now, round)


async def _decide(request: Request, page_user: PageUser, engine, client, now, round_id: str, school_code: str,
                  csrf_token: str | None, role: str, update, action: str, what: tuple[str, str]) -> Response:
    """The check of the form, then the API's own update; a refusal comes back as the home page with the
    reason beside the button it is about."""
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)  # before anything else: another site's form learns nothing
    user = page_user.user
    require_role(user, role, what_th=what[0], what_en=what[1])

    def view():
        with session_scope(engine) as session:
            return school_round_view(session, round_id, school_in_scope(session, user, school_code), now)

    current = await asyncio.to_thread(view)
    try:
        if current.stage == Stage.certified.value:
            raise already_certified()  # its workflow has ended: say why, not "not running"
        await school_update(client, round_id, school_code, update, actor_of(user), engine=engine)
    except Refusal as problem:
        return await asyncio.to_thread(_home, request, page_user, engine, now, round_id, problem, action)
    return RedirectResponse(f"/?round={quote(round_id, safe='')}", status_code=303)


SCHOOL_ROUND = "/school/{school_code}/rounds/{round_id}"


@router.post(SCHOOL_ROUND + "/confirm", operation_id="workbench_confirm", include_in_schema=False)
async def workbench_confirm(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                            engine: EngineDep, client: TemporalDep, now: NowDep, csrf_token: CsrfForm = None) -> Response:
    return await _decide(request, page_user, engine, client, now, round_id, school_code, csrf_token, "staff",
                         SchoolRoundWorkflow.confirm, "confirm",
                         ("ยืนยันข้อมูล (เฉพาะเจ้าหน้าที่โรงเรียน)", "confirm (school staff only)"))


@router.post(SCHOOL_ROUND + "/withdraw", operation_id="workbench_withdraw", include_in_schema=False)
async def workbench_withdraw(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                             engine: EngineDep, client: TemporalDep, now: NowDep, csrf_token: CsrfForm = None
                             ) -> Response:
    return await _decide(request, page_user, engine, client, now, round_id, school_code, csrf_token, "staff",
                         SchoolRoundWorkflow.withdraw_confirmation, "withdraw",
                         ("ยกเลิกการยืนยัน (เฉพาะเจ้าหน้าที่โรงเรียน)", "withdraw a confirmation (school staff only)"))


@router.post(SCHOOL_ROUND + "/certify", operation_id="workbench_certify", include_in_schema=False)
async def workbench_certify(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                            engine: EngineDep, client: TemporalDep, now: NowDep, csrf_token: CsrfForm = None) -> Response:
    return await _decide(request, page_user, engine, client, now, round_id, school_code, csrf_token, "director",
                         SchoolRoundWorkflow.certify, "certify",
                         ("รับรองข้อมูล (เฉพาะผู้อำนวยการ)", "certify (director only)"))


# the style sheet (and any script) of the pages: hashed URLs, cached for good when the hash matches
static_router = APIRouter()


@static_router.get("/static/{name}", operation_id="workbench_static", include_in_schema=False)
async def workbench_static(name: str, v: str | None = None) -> Response:
    found = static_file(name)
    if found is None:
        raise refusal("not_found", "ไม่พบไฟล์", f"No file {name}", 404)
    data, digest = found
    cache = "public, max-age=31536000, immutable" if v == digest else "no-cache"
    return Response(data, media_type=STATIC_TYPES["." + name.rsplit(".", 1)[-1]],
                    headers={"Cache-Control": cache, "ETag": f'"{digest}"', "X-Content-Type-Options": "nosniff"})


def install(app) -> None:
    from web import auth, users  # they build on this module's PageRoute

    app.include_router(router)
    app.include_router(static_router)
    app.include_router(auth.router)  # /login, /logout, /password/set, /password/forgot
    from web import oidc
    app.include_router(oidc.router)  # /login/oidc: single sign-on, when a provider is configured
    app.include_router(users.router)  # /users
    from web import district_pages
    app.include_router(district_pages.router)  # /queue and its items, extensions
    from web import roster_pages
    app.include_router(roster_pages.router)  # /roster: the staff's import, student list and forms
    from web import case_pages, round_work_pages
    app.include_router(round_work_pages.router)  # the staff's R10 menus and R11 existence
    app.include_router(case_pages.router)  # the staff's dropouts, duplicate cases, ID corrections
    from web import profile_page
    app.include_router(profile_page.router)  # the staff's R1 basic data of the school
    from web import admin_pages
    app.include_router(admin_pages.router)  # /admin/rounds, /admin/schools
    from web import live_pages
    app.include_router(live_pages.router)  # /live/...: the event streams of the live pages
