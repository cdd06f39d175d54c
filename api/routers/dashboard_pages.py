"""The monitoring dashboard in the browser: log in once with a token, then watch an area (district
officers) or every area of a round (administrators). Thai first, English on a toggle."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import select

from api.dashboard_views import area_dashboard_json, round_overview
from api.deps import EngineDep, NowDep, SettingsDep
from api.pages import CSP, STATIC_FILES, render_page, script_json, static_file
from api.viewer import COOKIE, LANG_COOKIE, SESSION_SECONDS, WATCHERS, area_in_scope, lookup, round_row
from db import monitoring as reads
from db.engine import session_scope
from db.models import Round, User
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


def _error_page(lang: str, user: User | None, problem: Refusal) -> HTMLResponse:
    return _html(render_page("error.html", lang=lang, user=user, problem=problem), problem.status)


def _safe_next(value: str | None) -> str:
    """Only back to a dashboard page of this site, never elsewhere (no open redirect)."""
    if value and value.startswith("/dashboard") and not value.startswith("//") and "\\" not in value:
        return value
    return "/dashboard"


@router.get("/dashboard", operation_id="dashboard_page", response_class=HTMLResponse,
            summary="The monitoring dashboard (HTML, Thai; `lang=en`): the login form, an area's live view, "
                    "or a round's overview of every area (administrators)")
async def dashboard_page(request: Request, engine: EngineDep, now: NowDep, round: str | None = None,
                         area: str | None = None, lang: Literal["th", "en"] | None = None) -> HTMLResponse:
    language = _lang(request, lang)
    user = await asyncio.to_thread(lookup, engine, request.cookies.get(COOKIE))
    if user is None:
        return _login_page(language, str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""))

    def build() -> dict:
        if user.role not in WATCHERS:
            raise forbidden("ดูภาพรวมการติดตาม (เฉพาะเจ้าหน้าที่เขตและผู้ดูแลระบบ)",
                            "see the monitoring dashboard (district officers and administrators only)")
        with session_scope(engine) as session:
            rounds = [r.id for r in session.scalars(select(Round).order_by(Round.created_at.desc()))]
            if round is not None:
                chosen = round_row(session, round)
            else:
                chosen = reads.latest_round(session)
                if chosen is None:
                    raise refusal("no_round", "ยังไม่มีรอบให้ติดตาม", "There is no round to watch yet", 404)
            watched = area or (user.area if user.role == "district" else None)
            if watched is not None:
                area_in_scope(session, user, watched)
        page = {"round_id": chosen.id, "rounds": rounds, "lang": language, "user": user, "area": watched,
                "is_admin": user.role == "admin"}
        if watched is not None:
            page["mode"] = "area"
            page["data"] = area_dashboard_json(engine, chosen.id, watched, now)
        else:
            page["mode"] = "overview"
            page["data"] = round_overview(engine, chosen.id, now).model_dump_json()
        return page

    try:
        page = await asyncio.to_thread(build)
    except Refusal as problem:
        return _error_page(language, user, problem)
    return _html(render_page("dashboard.html", data_json=script_json(page.pop("data")), **page))


@router.post("/dashboard/login", operation_id="dashboard_login", response_class=HTMLResponse,
             summary="Log in to the dashboard with a token: sets an HttpOnly session cookie (district officers, admins)")
async def dashboard_login(request: Request, engine: EngineDep, settings: SettingsDep,
                          token: Annotated[str, Form(max_length=200)] = "",
                          next: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    language = _lang(request, None)
    target = _safe_next(next)
    user = await asyncio.to_thread(lookup, engine, token.strip())
    if user is None:
        problem = refusal("unauthenticated", "โทเค็นไม่ถูกต้อง", "The token is not valid", 401)
        return _login_page(language, target, problem, 401)
    if user.role not in WATCHERS:
        problem = forbidden("ดูภาพรวมการติดตาม (เฉพาะเจ้าหน้าที่เขตและผู้ดูแลระบบ)",
                            "see the monitoring dashboard (district officers and administrators only)")
        return _login_page(language, target, problem, 403)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token.strip(), max_age=SESSION_SECONDS, httponly=True, samesite="strict", path="/",
                        secure=(settings.public_url or "").startswith("https://"))
    return response


@router.post("/dashboard/logout", operation_id="dashboard_logout", response_class=RedirectResponse,
             summary="Log out of the dashboard (the session cookie is removed)")
async def dashboard_logout() -> Response:
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/dashboard/static/{name}", operation_id="dashboard_static", include_in_schema=False)
async def dashboard_static(name: str, v: str | None = None) -> Response:
    if name not in STATIC_FILES:
        raise refusal("not_found", "ไม่พบไฟล์", f"No file {name}", 404)
    data, digest = static_file(name)
    cache = "public, max-age=31536000, immutable" if v == digest else "no-cache"
    return Response(data, media_type=STATIC_FILES[name], headers={"Cache-Control": cache, "ETag": f'"{digest}"',
                                                                  "X-Content-Type-Options": "nosniff"})
