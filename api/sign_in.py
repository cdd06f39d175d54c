"""Who is calling: a bearer token (the API), or a web session (the dashboard's pages and reads).

Both look the credential up first and let a valid one in; only a failure meets the failed sign-in
limiter (api/auth_limits.py). Credentials are judged by the wall clock (`app.state.auth_clock`), never by
the rounds' clock that the tests skip through days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi import Request
from sqlalchemy.engine import Engine

from api.auth_limits import client_address
from db.directory import token_owner
from db.engine import session_scope
from db.models import User, WebSession
from db.web_sessions import SessionPolicy, known_session, live_session
from domain.refusals import Refusal, refusal, unauthenticated

AuthClock = Callable[[], datetime]


def token_expired() -> Refusal:
    return refusal("token_expired", "โทเค็นนี้หมดอายุแล้ว กรุณาขอโทเค็นใหม่จากผู้ดูแลระบบ",
                   "This token has expired; ask an administrator for a new one", 401)


def auth_now(request: Request) -> datetime:
    return request.app.state.auth_clock()


def session_policy(request: Request) -> SessionPolicy:
    settings = request.app.state.settings
    return SessionPolicy(idle=timedelta(minutes=settings.session_idle_minutes),
                         absolute=timedelta(hours=settings.session_absolute_hours))


def failed_sign_in(request: Request, credential: str) -> None:
    """Counts a failure (raises 429 instead while the address or the credential is over the limit)."""
    request.app.state.auth_limiter.failed(client_address(request), credential)


def user_of_token(request: Request, engine: Engine, token: str) -> User:
    """The user of a valid bearer token, or the refusal: 401 token_expired, 401 unauthenticated, 429."""
    with session_scope(engine) as session:
        user = token_owner(session, token)
    if user is not None:
        if auth_now(request) < user.token_expires_at:
            return user
        # a token that was issued and has run out is not a guess: told apart, and not counted
        raise token_expired()
    failed_sign_in(request, "token:" + token)
    raise unauthenticated()


def session_of(request: Request, engine: Engine, session_id: str) -> tuple[WebSession, User] | None:
    """The live session of this cookie value and its user, or None (no session: show the login form).

    An id that was a session once (expired, revoked, its user disabled) is simply over; an id that never
    was one is a failed sign-in (429 while over the limit)."""
    if not session_id:
        return None
    with session_scope(engine) as session:
        found = live_session(session, session_id, auth_now(request), session_policy(request))
        known = found is not None or known_session(session, session_id) is not None
    if not known:
        failed_sign_in(request, "session:" + session_id)
    return found
