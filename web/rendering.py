"""Rendering the workbench's pages: Jinja2 templates in `web/templates`, hand-written files in `web/static`.

No build step and nothing from the internet: the style sheet (and any script) is served by the app itself
with a content hash in its URL, and the Content-Security-Policy admits nothing else.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.viewer import CSRF_FIELD, LANG_COOKIE
from web.i18n import ROLE_KEYS, clock_time, language, time_left, translator, when

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"}
LANG_COOKIE_SECONDS = 365 * 24 * 3600


@lru_cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.globals["static_url"] = static_url
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    return env


@lru_cache
def static_file(name: str) -> tuple[bytes, str] | None:
    """The file's bytes and content hash; None for anything that is not a file of web/static."""
    path = STATIC / name
    if "/" in name or "\\" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        return None
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:12]


def static_url(name: str) -> str:
    found = static_file(name)
    return f"/static/{name}?v={found[1] if found else ''}"


def page_language(request: Request) -> str:
    """`?lang=en` (remembered in a cookie by `page`), else the cookie, else Thai."""
    return language(request.query_params.get("lang") or request.cookies.get(LANG_COOKIE))


def switch_url(request: Request, lang: str) -> str:
    """This same page in the other language (the query kept, `lang` replaced)."""
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    query.append(("lang", "th" if lang == "en" else "en"))
    return f"{request.url.path}?{urlencode(query)}"


def _paths(routes) -> set[str]:
    found: set[str] = set()
    for route in routes:
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        if hasattr(inner, "routes") and not hasattr(route, "endpoint"):
            found |= _paths(inner.routes)
        elif getattr(route, "path", None):
            found.add(route.path)
    return found


def routed_paths(request: Request) -> set[str]:
    """The app's paths (pages of later sessions appear in the menu as soon as they are routed)."""
    cached = getattr(request.app.state, "workbench_paths", None)
    if cached is None:
        cached = request.app.state.workbench_paths = frozenset(_paths(request.app.routes))
    return cached


def nav_items(request: Request, role: str) -> list[tuple[str, str]]:
    """(message key, path) of the menu for this role: only pages that exist in this app."""
    wanted = [("nav_home", "/")]
    if role in ("district", "admin"):
        wanted += [("nav_queue", "/queue"), ("nav_dashboard", "/dashboard"), ("nav_users", "/users")]
    if role in ("staff", "director"):
        wanted += [("nav_roster", "/roster")]
    if role == "admin":
        wanted += [("nav_rounds", "/admin/rounds"), ("nav_schools", "/admin/schools")]
    routed = routed_paths(request)
    return [(key, path) for key, path in wanted if path in routed]


def page(request: Request, template: str, *, user=None, csrf_token: str = "", status: int = 200,
         headers: dict[str, str] | None = None, **context) -> HTMLResponse:
    """The template in the page's language, inside the shell (base.html): its menu for the user's role."""
    lang = page_language(request)
    t = translator(lang)
    body = _env().get_template(template).render(
        request_path=request.url.path, lang=lang, t=t, user=user, csrf_token=csrf_token,
        role_name=t(ROLE_KEYS[user.role]) if user is not None and user.role in ROLE_KEYS else "",
        nav=nav_items(request, user.role) if user is not None else [], switch_url=switch_url(request, lang),
        logout_url="/logout" if "/logout" in routed_paths(request) else "/dashboard/logout",
        when=lambda instant: when(instant, lang), clock_time=lambda instant: clock_time(instant, lang),
        time_left=lambda now, cutoff: time_left(now, cutoff, lang), **context)
    response = HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
    if request.query_params.get("lang") in ("th", "en"):  # the switch is remembered on every page
        response.set_cookie(LANG_COOKIE, lang, max_age=LANG_COOKIE_SECONDS, samesite="lax", path="/")
    return response
