"""Who may watch what: the dashboard's reads accept the bearer token, or the browser's web session.

A browser cannot put an `Authorization` header on an `EventSource` (the live feed) or on a plain
download link, so the page logs in once (`dashboard_login`): the token is checked and a server-side
session opened (db/web_sessions.py). The cookie holds only that session's random id, never the token: it
is no bearer token, it ends on logout, after the idle time and at the absolute expiry, and with its
user (`dmcflow users disable`, `users rotate-token`). It is HttpOnly (page scripts never see it),
SameSite=Lax, `Secure` unless `DMCFLOW_SESSION_COOKIE_SECURE=false` (`dmcflow dev` on loopback), and
honoured only by the read-only GET routes that use `ViewerDep`, by the dashboard's own forms and by the
workbench's pages (web/, `current_page_user`), whose forms send a decision with the session's CSRF token:
every route of the API itself still needs the bearer token.

Every form POST that acts on a session carries the session's CSRF token in a hidden field, compared
server-side (`require_csrf`); the login form, which has no session yet, is refused when a browser says it
comes from another site (Sec-Fetch-Site / Origin), so no other site can log a victim in either.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.deps import bearer, get_engine
from api.sign_in import auth_now, session_of, user_of_token
from db.engine import session_scope
from db.models import Round, User, WebSession
from db.web_sessions import revoke_session
from db.monitoring import area_exists
from dmcflow.settings import Settings
from domain.refusals import Refusal, forbidden, not_found, refusal, unauthenticated

COOKIE = "dmcflow_session"
LANG_COOKIE = "dmcflow_lang"
CSRF_FIELD = "csrf_token"
WATCHERS = ("district", "admin")


def csrf_failed() -> Refusal:
    return refusal("csrf_failed", "แบบฟอร์มนี้ไม่ได้ส่งมาจากหน้าของระบบหรือหมดอายุแล้ว กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง",
                   "This form did not come from this site's page, or is stale; reload the page and try again", 403)


def csrf_ok(row: WebSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(row.csrf_secret.encode(), presented.encode())


def end_session(request: Request, engine: Engine, csrf_token: str | None) -> Refusal | None:
    """Log out: the browser's session is revoked on the server, if the form carries its CSRF token (a refusal
    otherwise). No live session: nothing to end. Blocking (database): run it in a thread."""
    found = session_of(request, engine, request.cookies.get(COOKIE, ""))
    if found is None:
        return None
    if not csrf_ok(found[0], csrf_token):
        return csrf_failed()
    with session_scope(engine) as session:
        revoke_session(session, request.cookies[COOKIE], auth_now(request))
    return None


def from_this_site(request: Request, settings: Settings) -> bool:
    """False when the browser says the form was sent from another site (login CSRF); clients that are not
    browsers send neither header and cannot be made to send a victim's request."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    if settings.public_url:
        public = urlsplit(settings.public_url)
        own.add(f"{public.scheme}://{public.netloc}")
    return origin in own


def set_session_cookie(response: Response, session_id: str, settings: Settings) -> None:
    response.set_cookie(COOKIE, session_id, max_age=settings.session_absolute_hours * 3600, httponly=True,
                        samesite="lax", path="/", secure=settings.session_cookie_secure)


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=settings.session_cookie_secure)


def viewer(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
           engine: Annotated[Engine, Depends(get_engine)]) -> User:
    if creds is not None and creds.credentials:
        return user_of_token(request, engine, creds.credentials)
    found = session_of(request, engine, request.cookies.get(COOKIE, ""))
    if found is None:
        raise unauthenticated()
    return found[1]


ViewerDep = Annotated[User, Depends(viewer)]

LOGIN_PAGE = "/login"  # the workbench's password login (web/auth.py)


class SignInRequired(Exception):
    """A workbench page was asked for without a live session: the browser is sent to the login page
    (web/app.py turns this into a redirect that comes back to `next_url`)."""

    def __init__(self, next_url: str) -> None:
        super().__init__("sign-in required")
        self.next_url = next_url


@dataclass(frozen=True)
class PageUser:
    """The signed-in user of a workbench page and the session's CSRF token, which every form carries."""

    user: User
    csrf_token: str


def current_page_user(request: Request, engine: Annotated[Engine, Depends(get_engine)]) -> PageUser:
    """Pages take only the session cookie, never a bearer token; a made-up id from a locked-out address is
    the 429 refusal (api/sign_in.py), no session at all is `SignInRequired`."""
    found = session_of(request, engine, request.cookies.get(COOKIE, ""))
    if found is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(here if request.method == "GET" else "/")
    return PageUser(user=found[1], csrf_token=found[0].csrf_secret)


PageUserDep = Annotated[PageUser, Depends(current_page_user)]


def require_page_csrf(page_user: PageUser, presented: str | None) -> None:
    if not (presented and hmac.compare_digest(page_user.csrf_token.encode(), presented.encode())):
        raise csrf_failed()


def require_watcher(user: User) -> None:
    if user.role not in WATCHERS:
        raise forbidden("ดูภาพรวมการติดตาม (เฉพาะเจ้าหน้าที่เขตและผู้ดูแลระบบ)",
                        "see the monitoring dashboard (district officers and administrators only)")


def round_row(session: Session, round_id: str) -> Round:
    row = session.get(Round, round_id)
    if row is None:
        raise not_found("รอบ", "round", round_id)
    return row


def area_in_scope(session: Session, user: User, area: str) -> None:
    """A district officer watches only the own area, an administrator every area; an unknown area is a 404."""
    require_watcher(user)
    if not area_exists(session, area):
        raise not_found("เขตพื้นที่", "area", area)
    if user.role == "district" and user.area != area:
        raise forbidden("ดูข้อมูลของเขตพื้นที่อื่น", "see another area")
