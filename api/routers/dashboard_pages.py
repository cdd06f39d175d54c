"""The monitoring dashboard in the browser: log in once with a token (a web session is opened: api/viewer.py),
then watch an area (district officers) or every area of a round (administrators). Thai first, English on a
toggle."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import select

from api.dashboard_views import area_dashboard_json, round_overview_json
from api.deps import EngineDep, NowDep, SettingsDep
from api.pages import CSP, STATIC_FILES, render_page, script_json, static_file
from api.sign_in import auth_now, failed_sign_in, session_of, session_policy, token_expired
from api.viewer import (
    COOKIE, CSRF_FIELD, LANG_COOKIE, WATCHERS, area_in_scope, clear_session_cookie, csrf_failed,
    end_session, from_this_site, round_row, set_session_cookie,
)
from db import monitoring as reads
from db.directory import token_owner
from db.engine import session_scope
from db.models import Round, User, WebSession
from db.web_sessions import open_session
from domain.refusals import Refusal, forbidden, refusal

router = APIRouter(tags=["dashboard"])
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}


def _lang(request: Request, lang: str | None) -> str:
    chosen = lang or request.cookies.get(LANG_COOKIE) or "th"
    return "en" if chosen == "en" else "th"


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def _login_page(lang: str, next_url: str, problem: Refusal | None = None, status: int = 200) -> HTMLResponse:
    return _html(render_page("login.html", lang=lang, next_url=next_url, problem=problem), status)


def _error_page(lang: str, user: User | None, problem: Refusal, csrf_token: str = "") -> HTMLResponse:
    response = _html(render_page("error.html", lang=lang, user=user, problem=problem, csrf_token=csrf_token),
                     problem.status)
    response.headers.update(getattr(problem, "headers", None) or {})
    return response


def _current_session(request: Request, engine) -> tuple[WebSession, User] | None:
    """The browser's live session, or None; raises the 429 refusal for a made-up id from a locked client."""
    return session_of(request, engine, request.cookies.get(COOKIE, ""))


def _shown_login(request: Request, settings, language: str, next_url: str, problem: Refusal | None = None,
                 status: int = 200) -> HTMLResponse:
    response = _login_page(language, next_url, problem, status)
    if problem is not None:
        response.headers.update(getattr(problem, "headers", None) or {})
    if COOKIE in request.cookies:
        clear_session_cookie(response, settings)  # an ended or made-up session: the browser forgets it
    return response


def _safe_next(value: str | None) -> str:
    """Only back to a dashboard page of this site, never elsewhere (no open redirect)."""
    if value and value.startswith("/dashboard") and not value.startswith("//") and "\\" not in value:
        return value
    return "/dashboard"


@router.get("/dashboard", operation_id="dashboard_page", response_class=HTMLResponse,
            summary="The monitoring dashboard (HTML, Thai; `lang=en`): the login form, an area's live view, "
                    "or a round's overview of every area (administrators)")
def dashboard_page(request: Request, engine: EngineDep, settings: SettingsDep, now: NowDep,
                   round: str | None = None, area: str | None = None,
                   lang: Literal["th", "en"] | None = None) -> HTMLResponse:
    language = _lang(request, lang)
    here = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
    try:
        found = _current_session(request, engine)
    except Refusal as problem:  # too many made-up sessions from here: the form still takes a valid token
        return _shown_login(request, settings, language, here, problem, problem.status)
    if found is None:
        return _shown_login(request, settings, language, here)
    web_session, user = found

    def build() -> dict:
        if user.role not in WATCHERS:
            raise forbidden("ดูภาพรวมการติดตาม (เฉพาะเจ้าหน้าที่เขตและผู้ดูแลระบบ)",
                            "see the monitoring dashboard (district officers and administrators only)")
        with session_scope(engine) as session:
            rounds = list(session.scalars(select(Round.id).order_by(Round.created_at.desc())))
            if round is not None:
                chosen = round_row(session, round)
            else:
                chosen = reads.latest_round(session)
                if chosen is None:
                    raise refusal("no_round", "ยังไม่มีรอบให้ติดตาม", "There is no round to watch yet", 404)
            watched = area or (user.area if user.role == "district" else None)
            page = {"round_id": chosen.id, "rounds": rounds, "lang": language, "user": user, "area": watched,
                    "is_admin": user.role == "admin"}
            if watched is not None:
                area_in_scope(session, user, watched)
                page["mode"] = "area"
                page["data"] = area_dashboard_json(engine, chosen.id, watched, now, session)
        if watched is None:
            page["mode"] = "overview"
            page["data"] = round_overview_json(engine, chosen.id, now)
        return page

    try:
        page = build()
    except Refusal as problem:
        return _error_page(language, user, problem, web_session.csrf_secret)
    return _html(render_page("dashboard.html", data_json=script_json(page.pop("data")),
                             csrf_token=web_session.csrf_secret, **page))


@router.post("/dashboard/login", operation_id="dashboard_login", response_class=HTMLResponse,
             summary="Log in to the dashboard with a token: opens a web session, whose id is set in an HttpOnly "
                     "cookie (district officers, admins)")
async def dashboard_login(request: Request, engine: EngineDep, settings: SettingsDep,
                          token: Annotated[str, Form(max_length=200)] = "",
                          next: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    language = _lang(request, None)
    target = _safe_next(next)
    if not from_this_site(request, settings):  # another site's page posting a token (login CSRF)
        return _login_page(language, "/dashboard", csrf_failed(), 403)
    token = token.strip()

    def sign_in() -> tuple[User, str] | Refusal:
        """The user and a new session id; a valid token is never refused, a wrong one is counted (or 429)."""
        with session_scope(engine) as session:
            user = token_owner(session, token) if token else None
            if user is None:
                try:
                    failed_sign_in(request, "token:" + token)
                except Refusal as locked:
                    return locked
                return refusal("unauthenticated", "โทเค็นไม่ถูกต้อง", "The token is not valid", 401)
            if auth_now(request) >= user.token_expires_at:
                return token_expired()
            if user.role not in WATCHERS:
                return forbidden("ดูภาพรวมการติดตาม (เฉพาะเจ้าหน้าที่เขตและผู้ดูแลระบบ)",
                                 "see the monitoring dashboard (district officers and administrators only)")
            _, session_id = open_session(session, user, auth_now(request), session_policy(request))
            return user, session_id

    outcome = await asyncio.to_thread(sign_in)
    if isinstance(outcome, Refusal):
        response = _login_page(language, target, outcome, outcome.status)
        response.headers.update(getattr(outcome, "headers", None) or {})
        return response
    # a session already in this browser (another user's, or a stale one) is simply replaced
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, outcome[1], settings)
    return response


@router.post("/dashboard/logout", operation_id="dashboard_logout", response_class=RedirectResponse,
             summary="Log out of the dashboard: the web session is revoked (the form carries its CSRF token)")
async def dashboard_logout(request: Request, engine: EngineDep, settings: SettingsDep,
                           csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=100)] = None
                           ) -> Response:
    try:
        problem = await asyncio.to_thread(end_session, request, engine, csrf_token)
    except Refusal as locked:
        problem = locked
    if problem is not None:
        return _error_page(_lang(request, None), None, problem)
    response = RedirectResponse("/dashboard", status_code=303)
    clear_session_cookie(response, settings)
    return response


@router.get("/dashboard/static/{name}", operation_id="dashboard_static", include_in_schema=False)
async def dashboard_static(name: str, v: str | None = None) -> Response:
    if name not in STATIC_FILES:
        raise refusal("not_found", "ไม่พบไฟล์", f"No file {name}", 404)
    data, digest = static_file(name)
    cache = "public, max-age=31536000, immutable" if v == digest else "no-cache"
    return Response(data, media_type=STATIC_FILES[name], headers={"Cache-Control": cache, "ETag": f'"{digest}"',
                                                                  "X-Content-Type-Options": "nosniff"})
