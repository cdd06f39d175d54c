"""Logging in with a user name and password, logging out, and setting a password through a one-time link.

The login opens the same server-side session as the dashboard (db/web_sessions.py: only the id's hash is stored,
idle and absolute expiry, a CSRF secret per session) and logout revokes it. The forms that have no session yet
(login, forgot password, set password) are refused when the browser says another site sent them (login CSRF);
the set-password form is also bound to its link's secret token. Single sign-on, when configured, opens the same
session from an OpenID Connect provider (web/oidc.py); the login page shows its button.

Guessing passwords. Issue 15's limiter counts every failed sign-in per address and per credential and lets a
valid credential in whatever the counts: right for 192-bit tokens, which cannot be guessed. A password can be, so
this form also stops guesses before it checks them: while one account has failed `DMCFLOW_AUTH_FAILURE_LIMIT`
times from one address, or five times that from all addresses together, within the window, an attempt on it is
answered 429 without the password being checked (no answer to learn from, no Argon2 work to spend). Other accounts
behind the same address (a school's NAT) are not affected. Failures still count towards issue 15's per-address
limit, as before.

"Forgot password" answers the same whether or not an account matches, and sends the link only to the account's
registered email; a user gets at most one such link per `RESET_GAP`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.background import BackgroundTask

from api.auth_limits import FailedAuthLimiter, client_address
from api.deps import EngineDep, SettingsDep
from api.sign_in import auth_now, failed_sign_in, session_of, session_policy
from api.viewer import (
    COOKIE, CSRF_FIELD, clear_session_cookie, csrf_failed, end_session, from_this_site, set_session_cookie,
)
from db import accounts
from db.engine import session_scope
from db.web_sessions import open_session
from domain.refusals import Refusal, invalid, refusal
from mailer import outbox
from web.app import PageRoute
from web.rendering import page

log = logging.getLogger(__name__)
router = APIRouter(route_class=PageRoute, tags=["accounts"])
RESET_GAP = timedelta(minutes=2)  # "forgot password" for one account mails at most one link this often
ACCOUNT_WIDE = 5  # one account may fail this many times the per-address limit from all addresses together
NO_REFERRER = {"Referrer-Policy": "no-referrer"}  # a page whose URL holds a link's token never passes it on
PasswordForm = Annotated[str, Form(max_length=1000)]  # over accounts.PASSWORD_MAX: refused beside the field


def login_failed() -> Refusal:  # the code of every failed sign-in (api/sign_in.py), whatever was presented
    return refusal("unauthenticated", "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง", "The user name or password is not right", 401)


def too_many_guesses(retry_after: int) -> Refusal:
    minutes = max(1, -(-retry_after // 60))
    problem = refusal("too_many_failed_logins",
                      f"ใส่รหัสผ่านผิดหลายครั้งเกินไป กรุณารอ {minutes} นาทีแล้วลองใหม่ หรือขอลิงก์ตั้งรหัสผ่านใหม่",
                      f"Too many wrong passwords; try again in {minutes} minute(s), or ask for a new password link",
                      429)
    problem.headers = {"Retry-After": str(retry_after)}
    return problem


class PasswordGuesses:
    """Failed passwords per account from one address, and per account from everywhere (see the module's doc)."""

    def __init__(self, limit: int, window: float) -> None:
        self.here = FailedAuthLimiter(limit, window)
        self.anywhere = FailedAuthLimiter(limit * ACCOUNT_WIDE, window)

    def retry_after(self, address: str, username: str) -> int | None:
        pair = f"{address} {username}"
        waits = [w for w in (self.here.retry_after(pair, pair), self.anywhere.retry_after(username, username)) if w]
        return max(waits) if waits else None

    def failed(self, address: str, username: str) -> None:
        pair = f"{address} {username}"
        for limiter, key in ((self.here, pair), (self.anywhere, username)):
            try:
                limiter.failed(key, key)
            except Refusal:
                pass  # already over: retry_after answers for it


_guesses_lock = threading.Lock()


def password_guesses(request: Request) -> PasswordGuesses:
    state = request.app.state
    with _guesses_lock:
        if getattr(state, "password_guesses", None) is None:
            settings = state.settings
            state.password_guesses = PasswordGuesses(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    return state.password_guesses


def safe_next(value: str | None) -> str:
    """Back to a page of this site after login, never elsewhere (no open redirect): a path of this site, without
    the backslashes, spaces and control characters that browsers drop or turn into `//other.site`."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value \
            and all(ord(c) > 0x20 and c != "\x7f" for c in value) \
            and not value.startswith(("/login", "/logout", "/password/")):
        return value
    return "/"


class HideLinkTokens(logging.Filter):
    """The access log shows `/password/set?token=[hidden]`: whoever reads logs must not get a working link."""

    TOKEN = re.compile(r"(token=)[^&\s]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "token=" in a for a in record.args):
            record.args = tuple(self.TOKEN.sub(r"\1[hidden]", a) if isinstance(a, str) else a for a in record.args)
        return True


logging.getLogger("uvicorn.access").addFilter(HideLinkTokens())  # uvicorn's logging config keeps a logger's filters


async def deliver_links(engine, settings, keys: Iterable[str]) -> None:
    """Sends the links' mails after the answer; a mail that cannot go now stays in the outbox (resend later)."""
    for key in keys:
        try:
            await outbox.deliver(engine, settings, key)
        except Exception as exc:  # noqa: BLE001  the page has answered; the user can ask again
            log.warning("password link not sent now (%s); it stays in the outbox", type(exc).__name__)


def _login_form(request: Request, *, next_url: str = "/", username: str = "", problem: Refusal | None = None,
                problem_for: str | None = None, notice: str | None = None) -> Response:
    status = problem.status if problem else 200
    settings = request.app.state.settings  # single sign-on (web/oidc.py): its button when a provider is configured
    return page(request, "auth/login.html", next_url=next_url, username=username, problem=problem,
                problem_for=problem_for, notice=notice, status=status,
                sso_name=settings.oidc_provider_name if settings.oidc_enabled else None,
                headers=getattr(problem, "headers", None) if problem else None)


# --- login and logout ------------------------------------------------------------------------------------

@router.get("/login", operation_id="login_page", include_in_schema=False)
async def login_page(request: Request, engine: EngineDep,
                     next: Annotated[str | None, Query(max_length=500)] = None,
                     notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    try:
        found = await asyncio.to_thread(session_of, request, engine, request.cookies.get(COOKIE, ""))
    except Refusal as locked:  # made-up session ids from this address: the form still takes a valid password
        return _login_form(request, next_url=safe_next(next), problem=locked)
    if found is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    response = _login_form(request, next_url=safe_next(next), notice=notice if notice == "password_set" else None)
    if COOKIE in request.cookies:
        clear_session_cookie(response, request.app.state.settings)  # an ended session: the browser forgets it
    return response


@router.post("/login", operation_id="login", include_in_schema=False)
async def login(request: Request, engine: EngineDep, settings: SettingsDep,
                username: Annotated[str, Form(max_length=200)] = "", password: PasswordForm = "",
                next: Annotated[str | None, Form(max_length=500)] = None) -> Response:
    target = safe_next(next)
    name = accounts.normalise_username(username)
    if not from_this_site(request, settings):  # another site's page posting a login (login CSRF)
        return _login_form(request, next_url=target, username=name, problem=csrf_failed(), problem_for="password")
    if not name:
        return _login_form(request, next_url=target, problem=refusal(  # nothing presented: not a failed sign-in
            "unauthenticated", "กรุณากรอกชื่อผู้ใช้", "Enter your user name", 401), problem_for="username")
    if not password:
        return _login_form(request, next_url=target, username=name, problem=refusal(
            "unauthenticated", "กรุณากรอกรหัสผ่าน", "Enter your password", 401), problem_for="password")
    guesses, address = password_guesses(request), client_address(request)
    wait = guesses.retry_after(address, name)
    if wait is not None:
        return _login_form(request, next_url=target, username=name, problem=too_many_guesses(wait),
                           problem_for="password")

    def sign_in() -> str | None:
        now = auth_now(request)
        with session_scope(engine) as session:
            user = accounts.verify_login(session, name, password[:accounts.PASSWORD_MAX + 1], now)
            if user is None:
                return None
            _, session_id = open_session(session, user, now, session_policy(request))
            return session_id

    session_id = await asyncio.to_thread(sign_in)
    if session_id is None:
        guesses.failed(address, name)
        try:
            failed_sign_in(request, "password:" + name)  # issue 15's per-address count (429 once over it)
        except Refusal:
            problem = too_many_guesses(guesses.retry_after(address, name) or int(settings.auth_failure_window_seconds))
        else:
            problem = login_failed()
        return _login_form(request, next_url=target, username=name, problem=problem, problem_for="password")
    response = RedirectResponse(target, status_code=303)  # a session already in this browser is simply replaced
    set_session_cookie(response, session_id, settings)
    return response


@router.post("/logout", operation_id="logout", include_in_schema=False)
async def logout(request: Request, engine: EngineDep, settings: SettingsDep,
                 csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=100)] = None) -> Response:
    problem = await asyncio.to_thread(end_session, request, engine, csrf_token)
    if problem is not None:
        raise problem
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response


# --- setting a password through a link -----------------------------------------------------------------------

def _set_form(request: Request, token: str, username: str, problem: Refusal | None = None,
              problem_for: str | None = None) -> Response:
    return page(request, "auth/password_set.html", token=token, username=username, problem=problem,
                problem_for=problem_for, min_length=request.app.state.settings.password_min_length,
                status=problem.status if problem else 200, headers=NO_REFERRER)


def _link_problem(request: Request, problem: Refusal) -> Response:
    return page(request, "auth/link_problem.html", problem=problem, status=problem.status, headers=NO_REFERRER)


@router.get("/password/set", operation_id="password_set_page", include_in_schema=False)
async def password_set_page(request: Request, engine: EngineDep,
                            token: Annotated[str, Query(max_length=100)] = "") -> Response:
    def check() -> str:
        with session_scope(engine) as session:
            return accounts.redeem_check(session, token, auth_now(request))[1].username or ""

    try:
        username = await asyncio.to_thread(check)
    except Refusal as problem:
        return _link_problem(request, problem)
    return _set_form(request, token, username)


@router.post("/password/set", operation_id="password_set", include_in_schema=False)
async def password_set(request: Request, engine: EngineDep, settings: SettingsDep,
                       token: Annotated[str, Form(max_length=100)] = "", password: PasswordForm = "",
                       password_repeat: PasswordForm = "") -> Response:
    if not from_this_site(request, settings):
        return _link_problem(request, csrf_failed())

    def apply() -> tuple[str, tuple[str, Refusal] | None]:
        now = auth_now(request)
        with session_scope(engine) as session:
            link, user = accounts.redeem_check(session, token, now)
            wrong = accounts.password_problem(user, password, password_repeat, settings)
            if wrong is None:
                accounts.set_password(session, user, password, now)
                link.used_at = now
                session.add(link)
            return user.username or "", wrong

    try:
        username, wrong = await asyncio.to_thread(apply)
    except Refusal as problem:
        return _link_problem(request, problem)
    if wrong is not None:
        return _set_form(request, token, username, wrong[1], wrong[0])
    return RedirectResponse("/login?notice=password_set", status_code=303)


# --- forgot password -----------------------------------------------------------------------------------------

@router.get("/password/forgot", operation_id="password_forgot_page", include_in_schema=False)
async def password_forgot_page(request: Request) -> Response:
    return page(request, "auth/password_forgot.html", sent=False, identifier="", problem=None)


@router.post("/password/forgot", operation_id="password_forgot", include_in_schema=False)
async def password_forgot(request: Request, engine: EngineDep, settings: SettingsDep,
                          identifier: Annotated[str, Form(max_length=254)] = "") -> Response:
    if not from_this_site(request, settings):
        return page(request, "auth/password_forgot.html", sent=False, identifier="", problem=csrf_failed(),
                    status=403)
    if not identifier.strip():
        return page(request, "auth/password_forgot.html", sent=False, identifier="", status=422, problem=invalid(
            "identifier_missing", "กรุณากรอกชื่อผู้ใช้หรืออีเมล", "Enter your user name or email"))

    def issue() -> list[str]:
        now = auth_now(request)
        keys = []
        with session_scope(engine) as session:
            for user in accounts.users_for_forgotten(session, identifier):
                last = accounts.last_link_at(session, user.id)
                if last is not None and now - last < RESET_GAP:
                    continue  # asked again at once: the link just sent is the one to use
                key = accounts.issue_link(session, settings, user, "reset", now)
                if key:
                    keys.append(key)
        return keys

    keys = await asyncio.to_thread(issue)
    # the same page whether or not an account matched; the mail leaves after the answer
    response = page(request, "auth/password_forgot.html", sent=True, identifier="", problem=None)
    response.background = BackgroundTask(deliver_links, engine, settings, keys)
    return response
