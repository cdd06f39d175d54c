"""Who may watch what: the dashboard's reads accept the bearer token, or the browser's session cookie.

A browser cannot put an `Authorization` header on an `EventSource` (the live feed) or on a plain
download link, so the page logs in once (`dashboard_login`): the token is checked and kept in an
HttpOnly, SameSite=Strict cookie. Page scripts never see it (nothing to steal from sessionStorage),
other sites' pages never send it, and it is honoured only by the read-only GET routes that use
`ViewerDep` (the dashboard, its feed, reports and evidence packs): every decision of the API still
needs the bearer token, so the cookie cannot be used to confirm, certify or decide anything.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.deps import bearer, get_engine
from db.directory import user_by_token
from db.engine import session_scope
from db.models import Round, User
from db.monitoring import area_exists
from domain.refusals import forbidden, not_found, unauthenticated

COOKIE = "dmcflow_token"
LANG_COOKIE = "dmcflow_lang"
SESSION_SECONDS = 12 * 3600
WATCHERS = ("district", "admin")


def token_of(request: Request, creds: HTTPAuthorizationCredentials | None) -> str | None:
    if creds is not None and creds.credentials:
        return creds.credentials
    return request.cookies.get(COOKIE) or None


def lookup(engine: Engine, token: str | None) -> User | None:
    if not token:
        return None
    with session_scope(engine) as session:
        return user_by_token(session, token)


def viewer(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
           engine: Annotated[Engine, Depends(get_engine)]) -> User:
    user = lookup(engine, token_of(request, creds))
    if user is None:
        raise unauthenticated()
    return user


ViewerDep = Annotated[User, Depends(viewer)]


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
