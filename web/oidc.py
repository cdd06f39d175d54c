"""Single sign-on with an OpenID Connect provider (optional; on when `DMCFLOW_OIDC_ISSUER` and `_CLIENT_ID` are set).

The authorization-code flow with PKCE (S256), state and nonce, through Authlib's Starlette client: it reads the
provider's discovery document, sends the browser to the provider, redeems the code at the token endpoint and
verifies the ID token: its signature against the provider's JWKS (fetched again once when a token names an unknown
key: the provider rotated), its issuer, audience (our client id), expiry and nonce. The discovery document must
name the configured issuer, or nobody signs in.

Between leaving for the provider and coming back, Authlib keeps the pending sign-in (state, nonce, PKCE verifier)
in `request.session`; this app has no cookie session middleware, so that one dict travels in a short-lived cookie
of its own (HttpOnly, SameSite=Lax, path /login/oidc, ten minutes). It need not be signed: what it holds is only
good in the browser that holds it. An attacker's pending sign-in planted in a victim's browser could only log the
victim in as the attacker, which the password form's `from_this_site` check cannot stop either; a victim's code
replayed in another browser fails PKCE and the nonce.

Which account. The provider never creates one: a sign-in reaches an existing, active account or is refused in
words. The first time, the account is found by `DMCFLOW_OIDC_USER_CLAIM`: `email` (only with `email_verified`)
against the account's registered email, the address its password links already go to, so whoever controls it could
set the password anyway and binding it grants nothing new; or another claim (e.g. `preferred_username`) against
the user name, for a provider that issues this system's user names. That first sign-in binds the account to the
provider's issuer and subject (`users.oidc_issuer/oidc_subject`), and from then on only they match: OpenID
Connect promises that `iss` with `sub` never changes or passes to someone else, while an email address can. An
account already bound to another subject is not taken over by a matching email. With `DMCFLOW_OIDC_AREAS` set,
only the accounts of those areas may sign in here: an area's provider does not speak for the rest of the country.

Then the same server-side session as the password login opens (db/web_sessions.py: hashed id, expiry, CSRF,
revoked by logout) with the same cookie.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from typing import Annotated

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from joserfc.errors import JoseError
from sqlmodel import Session, select

from api.deps import EngineDep, SettingsDep
from api.sign_in import auth_now, session_policy
from api.viewer import set_session_cookie
from db import accounts
from db.engine import session_scope
from db.models import User
from db.web_sessions import open_session
from dmcflow.settings import Settings
from domain.refusals import Refusal, not_found, refusal
from web.app import PageRoute
from web.auth import _login_form as login_form, safe_next

log = logging.getLogger(__name__)
router = APIRouter(route_class=PageRoute, tags=["accounts"])
START, CALLBACK = "/login/oidc", "/login/oidc/callback"
PENDING_COOKIE = "dmcflow_oidc"
PENDING_SECONDS = 600  # the time a person has at the provider's page
LEEWAY_SECONDS = 60  # clock skew allowed on the ID token's exp/iat
HTTP_TIMEOUT_SECONDS = 10.0

_lock = threading.Lock()


# --- refusals -------------------------------------------------------------------------------------------------

def sso_failed(name: str) -> Refusal:
    return refusal("sso_failed", f"{name} ไม่ได้ยืนยันตัวตนให้ (ยกเลิก หรือเกิดข้อผิดพลาด) กรุณาลองอีกครั้ง "
                   "หรือเข้าสู่ระบบด้วยชื่อผู้ใช้และรหัสผ่าน",
                   f"{name} did not confirm who you are (cancelled, or an error); try again, or log in with your "
                   "user name and password", 401)


def sso_state_mismatch(name: str) -> Refusal:
    return refusal("sso_state_mismatch", f"การเข้าสู่ระบบด้วย {name} นี้หมดเวลา หรือไม่ได้เริ่มจากหน้าเข้าสู่ระบบของระบบนี้ "
                   f"กรุณากด \"เข้าสู่ระบบด้วย {name}\" อีกครั้ง",
                   f"This sign-in with {name} has expired or did not start from this site's login page; press "
                   f"\"Log in with {name}\" again", 401)


def sso_token_invalid(name: str) -> Refusal:
    return refusal("sso_token_invalid", f"ข้อมูลยืนยันตัวตนที่ได้จาก {name} ตรวจสอบไม่ผ่าน (ลายมือชื่อ ผู้รับ หรือเวลาหมดอายุ "
                   "ไม่ถูกต้อง) จึงเข้าสู่ระบบไม่ได้",
                   f"The proof of identity from {name} failed the checks (signature, audience or expiry), so you "
                   "are not logged in", 401)


def sso_unavailable(name: str) -> Refusal:
    return refusal("sso_unavailable", f"ติดต่อ {name} ไม่ได้ในขณะนี้ กรุณาลองใหม่ภายหลัง หรือเข้าสู่ระบบด้วยชื่อผู้ใช้และรหัสผ่าน",
                   f"{name} cannot be reached at the moment; try again later, or log in with your user name and "
                   "password", 503)


def sso_no_account(name: str) -> Refusal:
    return refusal("sso_no_account", f"ไม่พบบัญชีผู้ใช้ของระบบนี้ที่ตรงกับบัญชี {name} ของท่าน (ระบบไม่สร้างบัญชีให้เอง) "
                   "กรุณาติดต่อเจ้าหน้าที่เขตพื้นที่หรือผู้ดูแลระบบ",
                   f"No account of this system matches your {name} account (none is created for you); contact "
                   "your district officer or an administrator", 403)


def account_disabled() -> Refusal:
    return refusal("account_disabled", "บัญชีผู้ใช้นี้ถูกระงับการใช้งานแล้ว จึงเข้าสู่ระบบไม่ได้ "
                   "กรุณาติดต่อเจ้าหน้าที่เขตพื้นที่หรือผู้ดูแลระบบ",
                   "This account has been disabled, so it cannot log in; contact your district officer or an "
                   "administrator", 403)


def sso_email_unverified(name: str) -> Refusal:
    return refusal("sso_email_unverified", f"{name} ยังไม่ได้ยืนยันอีเมลของบัญชีนี้ จึงใช้หาบัญชีผู้ใช้ของท่านไม่ได้ "
                   "กรุณายืนยันอีเมลกับผู้ให้บริการ หรือเข้าสู่ระบบด้วยชื่อผู้ใช้และรหัสผ่าน",
                   f"{name} has not verified this account's email, so it cannot find your account; verify it "
                   "there, or log in with your user name and password", 403)


def sso_ambiguous() -> Refusal:
    return refusal("sso_ambiguous", "อีเมลนี้ลงทะเบียนไว้กับบัญชีผู้ใช้มากกว่าหนึ่งบัญชี กรุณาเข้าสู่ระบบด้วยชื่อผู้ใช้และรหัสผ่าน",
                   "This email is registered for more than one account; log in with your user name and password",
                   403)


def sso_bound_elsewhere(name: str) -> Refusal:
    return refusal("sso_bound_elsewhere", f"บัญชีผู้ใช้นี้ผูกกับบัญชี {name} อื่นไว้แล้ว กรุณาเข้าสู่ระบบด้วยบัญชี {name} "
                   "เดิม หรือติดต่อผู้ดูแลระบบ",
                   f"This account is bound to another {name} account; sign in with that one, or contact an "
                   "administrator", 403)


def sso_outside_areas(name: str) -> Refusal:
    return refusal("sso_outside_areas", f"บัญชีผู้ใช้นี้อยู่นอกเขตพื้นที่ที่เข้าสู่ระบบด้วย {name} ได้ "
                   "กรุณาเข้าสู่ระบบด้วยชื่อผู้ใช้และรหัสผ่าน",
                   f"This account is outside the areas that may sign in with {name}; log in with your user "
                   "name and password", 403)


# --- the provider -----------------------------------------------------------------------------------------------

def provider(request: Request) -> StarletteOAuth2App:
    """The app's Authlib client of the configured provider (it caches the discovery document and the JWKS)."""
    state = request.app.state
    settings: Settings = state.settings
    if not settings.oidc_enabled:
        raise not_found("หน้า", "page", request.url.path)
    with _lock:
        if getattr(state, "oidc", None) is None:
            secret = settings.oidc_client_secret
            state.oidc = OAuth().register(
                "sso", client_id=settings.oidc_client_id, client_secret=secret.get_secret_value() if secret else None,
                server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
                client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256",
                               "timeout": HTTP_TIMEOUT_SECONDS,
                               **({} if secret else {"token_endpoint_auth_method": "none"})})
    return state.oidc


async def discovered(client: StarletteOAuth2App, settings: Settings) -> dict:
    metadata = await client.load_server_metadata()
    if metadata.get("issuer") != settings.oidc_issuer:  # OpenID Connect Discovery 1.0, section 4.3
        client.server_metadata.clear()  # read again next time (the operator may fix either side)
        raise ValueError("the discovery document names another issuer")
    return metadata


def claims_options(settings: Settings) -> dict:
    """What the ID token must say, on top of Authlib's own checks (nonce, azp, at_hash): Authlib checks the audience
    only when asked to."""
    return {"iss": {"essential": True, "value": settings.oidc_issuer},
            "aud": {"essential": True, "value": settings.oidc_client_id},
            "sub": {"essential": True}, "exp": {"essential": True}, "iat": {"essential": True}}


def _pending(cookie: str | None) -> dict:
    """The pending sign-in the cookie carries, in the shape Authlib wrote it ({} when absent, garbled or expired:
    the state check then fails)."""
    try:
        value = json.loads(base64.urlsafe_b64decode((cookie or "").encode()))
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    now = time.time()
    kept = {k: v for k, v in value.items() if k.startswith("_state_sso_") and isinstance(v, dict)
            and isinstance(v.get("data"), dict) and isinstance(v.get("exp"), (int, float)) and v["exp"] >= now}
    if kept and isinstance(value.get("next"), str):
        kept["next"] = value["next"]
    return kept


def _forget_pending(response: Response, settings: Settings) -> None:
    response.delete_cookie(PENDING_COOKIE, path=START, httponly=True, samesite="lax",
                           secure=settings.session_cookie_secure)


# --- which account ------------------------------------------------------------------------------------------------

def account_for(session: Session, settings: Settings, claims: dict) -> User:
    """The active account these verified claims belong to, bound to the provider's subject at its first use (see
    the module's doc); refuses otherwise."""
    name = settings.oidc_provider_name
    issuer, subject = claims["iss"], claims["sub"]
    user = session.exec(select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)).first()
    bind = user is None
    if user is None:
        user = _first_use(session, settings, claims)
    if not user.active:
        raise account_disabled()
    if settings.oidc_areas and user.area not in settings.oidc_areas:
        raise sso_outside_areas(name)
    if bind:
        user.oidc_issuer, user.oidc_subject = issuer, subject
        session.add(user)
    return user


def _first_use(session: Session, settings: Settings, claims: dict) -> User:
    name, claim = settings.oidc_provider_name, settings.oidc_user_claim
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise sso_no_account(name)
    if claim == "email":
        if claims.get("email_verified") is not True:
            raise sso_email_unverified(name)
        column, value = User.email, value.strip().lower()
    else:
        column, value = User.username, accounts.normalise_username(value)
    named = list(session.exec(select(User).where(User.username.is_not(None), column == value)))
    if not named:
        raise sso_no_account(name)
    unbound = [u for u in named if u.oidc_subject is None]
    if not unbound:
        raise sso_bound_elsewhere(name)
    active = [u for u in unbound if u.active]
    if not active:
        raise account_disabled()
    if len(active) > 1:
        raise sso_ambiguous()
    return active[0]


# --- the routes ---------------------------------------------------------------------------------------------------

@router.get(START, operation_id="sso_start", include_in_schema=False)
async def sso_start(request: Request, settings: SettingsDep,
                    next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """Off to the provider's login page, the pending sign-in kept in this browser's cookie."""
    client = provider(request)
    target = safe_next(next)
    request.scope["session"] = pending = {}
    try:
        await discovered(client, settings)
        response = await client.authorize_redirect(request, settings.public_url.rstrip("/") + CALLBACK)
    except (httpx.HTTPError, ValueError, KeyError, RuntimeError) as exc:  # down, or a document missing an endpoint
        log.warning("single sign-on: the provider cannot be reached or read (%s)", type(exc).__name__)
        return login_form(request, next_url=target, problem=sso_unavailable(settings.oidc_provider_name),
                          problem_for="sso")
    pending["next"] = target
    encoded = base64.urlsafe_b64encode(json.dumps(pending, separators=(",", ":")).encode()).decode()
    response.set_cookie(PENDING_COOKIE, encoded, max_age=PENDING_SECONDS, path=START, httponly=True,
                        samesite="lax", secure=settings.session_cookie_secure)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get(CALLBACK, operation_id="sso_callback", include_in_schema=False)
async def sso_callback(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    """Back from the provider: the code redeemed, the ID token verified, the account found, the session opened."""
    client, name = provider(request), settings.oidc_provider_name
    pending = _pending(request.cookies.get(PENDING_COOKIE))
    target = safe_next(pending.get("next"))
    request.scope["session"] = pending
    try:
        await discovered(client, settings)
        token = await client.authorize_access_token(request, claims_options=claims_options(settings),
                                                    leeway=LEEWAY_SECONDS)
        claims = token.get("userinfo")  # the ID token's verified claims; a token answer without one is no sign-in
        problem = None if claims else sso_token_invalid(name)
    except MismatchingStateError:
        problem = sso_state_mismatch(name)
    except JoseError as exc:  # signature, key, issuer, audience, expiry, nonce
        log.warning("single sign-on: ID token refused (%s)", type(exc).__name__)
        problem = sso_token_invalid(name)
    except AuthlibBaseError as exc:  # the provider's error answer (cancelled at its page, code refused)
        log.warning("single sign-on: the provider refused (%s)", type(exc).__name__)  # not its words: they come in the URL
        problem = sso_failed(name)
    except (httpx.HTTPError, ValueError, KeyError, RuntimeError) as exc:  # down, or a document missing an endpoint
        log.warning("single sign-on: the provider cannot be reached or read (%s)", type(exc).__name__)
        problem = sso_unavailable(name)

    def sign_in() -> str:
        with session_scope(engine) as session:
            user = account_for(session, settings, claims)
            return open_session(session, user, auth_now(request), session_policy(request))[1]

    if problem is None:
        try:
            session_id = await asyncio.to_thread(sign_in)
        except Refusal as refused:
            problem = refused
    if problem is not None:
        log.info("single sign-on refused: %s", problem.code)
        response = login_form(request, next_url=target, problem=problem, problem_for="sso")
    else:
        response = RedirectResponse(target, status_code=303)  # a session already in this browser is replaced
        set_session_cookie(response, session_id, settings)
    _forget_pending(response, settings)  # used once, whatever became of it
    return response
