"""Single sign-on with OpenID Connect (issue 17, web/oidc.py) against a provider this test starts in process.

The provider is a small Starlette app under uvicorn on a loopback port: discovery, JWKS, an authorize endpoint
that signs in whoever the test says is at the provider's page, and a token endpoint that checks the client's
secret, the code, the redirect URI and PKCE before it answers an ID token signed with an RSA key made here. The
test can make it misbehave (another key, another audience, an expired token). The app runs in process behind
httpx's ASGI transport, as in test_accounts.py, and talks to the provider over real loopback HTTP; the browser's
part (following the redirects to the provider and back) is played by two httpx clients. No network beyond
loopback.
"""

from __future__ import annotations

import asyncio
import base64
import html
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from api.app import create_app
from db import accounts
from db.directory import disable_user, upsert_school
from db.engine import session_scope
from db.models import User, WebSession
from tests.conftest import free_port
from tests.db_backends import BOTH_BACKENDS

# where the database decides (finding, binding and refusing accounts, sessions) on SQLite and PostgreSQL
BOTH = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)

AREA, OTHER_AREA = "สพม.มหาสารคาม", "สพม.ขอนแก่น"
SCHOOL, OTHER_SCHOOL = "1044449001", "1040409001"
CLIENT_ID, CLIENT_SECRET = "dmcflow-test", "test-client-secret"
NAME = "OBEC SSO"
COOKIE, PENDING = "dmcflow_session", "dmcflow_oidc"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
# made once: an RSA key per test would cost more than the test
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY_SAME_KID = RSAKey.generate_key(2048, parameters={"kid": "k1"})
ROTATED_KEY = RSAKey.generate_key(2048, parameters={"kid": "k2"})
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()  # client_secret_basic


class Provider:
    """The OpenID Connect provider's side, as small as the flow allows."""

    def __init__(self, port: int) -> None:
        self.issuer = self.advertised_issuer = f"http://127.0.0.1:{port}"
        self.keys = [KEY]  # what /jwks publishes
        self.sign_with = KEY
        self.person: dict = {}  # the claims of whoever is signed in at the provider's page
        self.overrides: dict = {}  # claims of the next ID tokens replaced (or removed, with None)
        self.deny = False  # the person presses "cancel" at the provider
        self.codes: dict[str, dict] = {}
        self.authorize_requests: list[dict] = []
        self.jwks_fetches = 0
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery), Route("/jwks", self.jwks),
            Route("/authorize", self.authorize), Route("/token", self.token, methods=["POST"])])

    async def discovery(self, request: Request) -> JSONResponse:
        return JSONResponse({
            "issuer": self.advertised_issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

    async def jwks(self, request: Request) -> JSONResponse:
        self.jwks_fetches += 1
        return JSONResponse(KeySet(self.keys).as_dict(private=False))

    async def authorize(self, request: Request) -> RedirectResponse:
        q = dict(request.query_params)
        self.authorize_requests.append(q)
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code" and "openid" in q["scope"].split()
        if self.deny:
            return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'error': 'access_denied', 'state': q['state']})}")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**q, "person": dict(self.person)}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    async def token(self, request: Request) -> JSONResponse:
        form = dict(await request.form())
        if request.headers.get("authorization") != BASIC:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)  # a code works once
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"] \
                or grant.get("code_challenge_method") != "S256" \
                or create_s256_code_challenge(form.get("code_verifier", "")) != grant["code_challenge"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant["nonce"],
                  **grant["person"]}
        for name, value in self.overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        id_token = jwt.encode({"alg": "RS256", "kid": self.sign_with.kid}, claims, self.sign_with)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                             "id_token": id_token})


@asynccontextmanager
async def provider_served() -> AsyncIterator[Provider]:
    port = free_port()
    provider = Provider(port)
    server = uvicorn.Server(uvicorn.Config(provider.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield provider
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


class World:
    def __init__(self, engine, settings, provider: Provider) -> None:
        self.engine, self.settings, self.provider = engine, settings, provider
        settings.oidc_issuer, settings.oidc_client_id = provider.issuer, CLIENT_ID
        settings.oidc_client_secret = SecretStr(CLIENT_SECRET)
        settings.oidc_provider_name = NAME
        with session_scope(engine) as s:
            upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", AREA, [])
            upsert_school(s, OTHER_SCHOOL, "โรงเรียนขอนแก่นวิทยา", OTHER_AREA, [])
        self.ids = {name: self.account(name, role, scope) for name, role, scope in [
            ("staff.tuayang", "staff", SCHOOL), ("staff.kk", "staff", OTHER_SCHOOL), ("left.school", "staff", SCHOOL),
            ("district.mk", "district", AREA)]}
        with session_scope(engine) as s:
            disable_user(s, self.ids["left.school"])
        self.app = create_app(settings, engine=engine)

    def account(self, username: str, role: str, scope: str) -> str:
        with session_scope(self.engine) as s:
            user, _ = accounts.create_account(s, self.settings, accounts.AccountRow(
                username=username, role=role, scope=scope, name=f"คุณ {username}", email=f"{username}@example.org"),
                datetime.now(timezone.utc))
            return user.id

    def browser(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=("198.51.100.10", 40000)),
                                 base_url="http://dmcflow.test")

    def user(self, username: str) -> User:
        with session_scope(self.engine) as s:
            return s.exec(select(User).where(User.username == username)).one()

    def at_provider(self, username: str, **claims) -> None:
        """Who is signed in at the provider's page: the account's registered email, verified, unless told."""
        self.provider.person = {"sub": f"sub-{username}", "email": f"{username}@example.org",
                                "email_verified": True, "preferred_username": username, **claims}


@pytest.fixture
async def world(engine, settings) -> AsyncIterator[World]:
    async with provider_served() as provider:
        yield World(engine, settings, provider)


async def leave_for_provider(web: httpx.AsyncClient, login_path: str = "/login") -> httpx.Response:
    """The login page's "เข้าสู่ระบบด้วย ..." link: the answer redirecting to the provider."""
    page = await web.get(login_path)
    assert f"เข้าสู่ระบบด้วย {NAME}" in page.text
    start = await web.get(html.unescape(re.search(r'id="sso-login" href="([^"]+)"', page.text)[1]))
    assert start.status_code == 302 and urlsplit(start.headers["location"]).hostname == "127.0.0.1"
    return start


async def through_provider(start: httpx.Response) -> str:
    """The provider's page (the person is signed in there): answers the URL it sends the browser back to."""
    async with httpx.AsyncClient() as at_provider:
        back = await at_provider.get(start.headers["location"])
    assert back.status_code in (302, 307), back.text
    return back.headers["location"]


async def sso_login(web: httpx.AsyncClient, login_path: str = "/login") -> httpx.Response:
    back = await through_provider(await leave_for_provider(web, login_path))
    return await web.get(back)


def refused(r: httpx.Response, code: str) -> bool:
    return f'data-code="{code}"' in r.text


def sessions_of(world: World, username: str) -> list[WebSession]:
    with session_scope(world.engine) as s:
        return list(s.exec(select(WebSession).where(WebSession.user_id == world.ids[username])))


# --- signing in -------------------------------------------------------------------------------------------------

@BOTH
async def test_signing_in_at_the_provider_lands_on_the_users_own_home(world):
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        r = await sso_login(web, "/login?next=/%3Flang%3Den")
        assert r.status_code == 303 and r.headers["location"] == "/?lang=en"  # back where the login was asked for
        assert COOKIE in web.cookies and PENDING not in web.cookies  # the pending sign-in is used up
        home = await web.get("/")
        assert home.status_code == 200 and "คุณ staff.tuayang" in home.text
    asked = world.provider.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and asked["nonce"] and asked["state"]
    assert asked["redirect_uri"] == "http://dmcflow.test/login/oidc/callback"
    bound = world.user("staff.tuayang")
    assert (bound.oidc_issuer, bound.oidc_subject) == (world.provider.issuer, "sub-staff.tuayang")
    assert len(sessions_of(world, "staff.tuayang")) == 1  # the same server-side session as the password login


@BOTH
async def test_after_the_first_sign_in_the_providers_subject_finds_the_account_not_the_email(world):
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303
    # the person's email changes at the provider: the bound subject still finds the account
    world.at_provider("staff.tuayang", email="new.address@example.net")
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303
        assert "คุณ staff.tuayang" in (await web.get("/")).text
    # another subject presenting the bound account's email does not take the account over
    world.at_provider("staff.tuayang", sub="someone-else")
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 403 and refused(r, "sso_bound_elsewhere") and COOKIE not in web.cookies
        assert "ผูกกับบัญชี OBEC SSO อื่นไว้แล้ว" in r.text


@BOTH
async def test_a_preferred_username_claim_can_name_the_account_instead(world):
    world.settings.oidc_user_claim = "preferred_username"
    world.at_provider("district.mk", email="not-registered@example.net", email_verified=False,
                      preferred_username="District.MK")
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303
        assert "คุณ district.mk" in (await web.get("/")).text


async def test_the_login_page_offers_no_single_sign_on_while_none_is_configured(world):
    world.settings.oidc_issuer = None
    async with world.browser() as web:
        page = await web.get("/login")
        assert page.status_code == 200 and "sso-login" not in page.text and "เข้าสู่ระบบด้วย" not in page.text
        assert (await web.get("/login/oidc")).status_code == 404
        assert (await web.get("/login/oidc/callback?code=x&state=y")).status_code == 404


# --- what is refused -----------------------------------------------------------------------------------------

async def test_a_callback_whose_state_is_not_this_browsers_is_refused(world):
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        back = await through_provider(await leave_for_provider(web))
        code = parse_qs(urlsplit(back).query)["code"][0]
        forged = f"/login/oidc/callback?{urlencode({'code': code, 'state': 'not-the-state-sent'})}"
        r = await web.get(forged)
        assert r.status_code == 401 and refused(r, "sso_state_mismatch") and COOKIE not in web.cookies
        assert "หมดเวลา หรือไม่ได้เริ่มจากหน้าเข้าสู่ระบบของระบบนี้" in r.text
        assert 'aria-describedby="sso-problem"' in r.text  # the reason is tied to the sign-on button
        # the real answer cannot be used afterwards either: the pending sign-in went with the refusal
        again = await web.get(back)
        assert again.status_code == 401 and refused(again, "sso_state_mismatch")
    # login CSRF: an attacker's own callback URL opened in a victim's browser, which never started a sign-in
    async with world.browser() as attacker:
        back = await through_provider(await leave_for_provider(attacker))
    async with world.browser() as victim:
        r = await victim.get(back)
        assert r.status_code == 401 and refused(r, "sso_state_mismatch") and COOKIE not in victim.cookies
    assert sessions_of(world, "staff.tuayang") == []


async def test_an_id_token_signed_by_another_key_is_refused(world):
    world.at_provider("staff.tuayang")
    world.provider.sign_with = OTHER_KEY_SAME_KID  # the published key id, another key: the signature fails
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 401 and refused(r, "sso_token_invalid") and COOKIE not in web.cookies
        assert "ตรวจสอบไม่ผ่าน" in r.text
    world.provider.sign_with = ROTATED_KEY  # a key id the provider does not publish: fetched again, still unknown
    fetches = world.provider.jwks_fetches
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 401 and refused(r, "sso_token_invalid")
    assert world.provider.jwks_fetches == fetches + 1
    assert sessions_of(world, "staff.tuayang") == [] and world.user("staff.tuayang").oidc_subject is None


async def test_a_key_the_provider_rotated_to_is_fetched_and_accepted(world):
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303  # the JWKS of k1 is now cached
    world.provider.keys, world.provider.sign_with = [KEY, ROTATED_KEY], ROTATED_KEY
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303


@pytest.mark.parametrize("overrides", [
    {"aud": "another-client"},
    {"aud": ["another-client"], "azp": CLIENT_ID},  # made for another client, whatever it says of the party
    {"aud": None},
    {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
    {"iss": "https://another-issuer.example.org"},
    {"nonce": "not-the-nonce-sent"},
], ids=["other-audience", "other-audience-our-azp", "no-audience", "expired", "other-issuer", "other-nonce"])
async def test_an_id_token_for_someone_else_or_out_of_date_is_refused(world, overrides):
    world.at_provider("staff.tuayang")
    world.provider.overrides = overrides
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 401 and refused(r, "sso_token_invalid") and COOKIE not in web.cookies
    assert sessions_of(world, "staff.tuayang") == []


@BOTH
async def test_a_person_without_an_account_is_refused_in_thai_and_none_is_made(world):
    world.at_provider("nobody.here", sub="sub-nobody")
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 403 and refused(r, "sso_no_account") and COOKIE not in web.cookies
        assert "ไม่พบบัญชีผู้ใช้ของระบบนี้ที่ตรงกับบัญชี OBEC SSO" in r.text and "ระบบไม่สร้างบัญชีให้เอง" in r.text
    with session_scope(world.engine) as s:
        assert s.exec(select(User).where(User.email == "nobody.here@example.org")).first() is None


async def test_an_email_the_provider_has_not_verified_finds_no_account(world):
    world.at_provider("staff.tuayang", email_verified=False)
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 403 and refused(r, "sso_email_unverified") and COOKIE not in web.cookies
    assert world.user("staff.tuayang").oidc_subject is None


@BOTH
async def test_a_disabled_account_is_refused_with_the_reason(world):
    world.at_provider("left.school")
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 403 and refused(r, "account_disabled") and COOKIE not in web.cookies
        assert "บัญชีผู้ใช้นี้ถูกระงับการใช้งานแล้ว" in r.text
    # an account bound earlier and disabled since: refused too, and its open session is over
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303
        with session_scope(world.engine) as s:
            disable_user(s, world.ids["staff.tuayang"])
        assert (await web.get("/")).status_code == 303  # back to the login page
        r = await sso_login(web)
        assert r.status_code == 403 and refused(r, "account_disabled")


@BOTH
async def test_only_the_configured_areas_accounts_may_use_the_provider(world):
    world.settings.oidc_areas = [AREA]
    world.at_provider("staff.kk")
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 403 and refused(r, "sso_outside_areas") and COOKIE not in web.cookies
    assert world.user("staff.kk").oidc_subject is None
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303


async def test_cancelling_at_the_provider_or_a_provider_that_is_down_is_said_in_words(world):
    world.at_provider("staff.tuayang")
    world.provider.deny = True
    async with world.browser() as web:
        r = await sso_login(web)
        assert r.status_code == 401 and refused(r, "sso_failed") and "ไม่ได้ยืนยันตัวตนให้" in r.text
    world.settings.oidc_issuer = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    world.app.state.oidc = None
    async with world.browser() as web:
        r = await web.get("/login/oidc")
        assert r.status_code == 503 and refused(r, "sso_unavailable") and "ติดต่อ OBEC SSO ไม่ได้ในขณะนี้" in r.text


async def test_a_discovery_document_naming_another_issuer_signs_nobody_in(world):
    world.provider.advertised_issuer = "https://impostor.example.org"
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        r = await web.get("/login/oidc")
        assert r.status_code == 503 and refused(r, "sso_unavailable")


# --- the session it opens -------------------------------------------------------------------------------------

@BOTH
async def test_logout_revokes_a_single_sign_on_session(world):
    world.at_provider("staff.tuayang")
    async with world.browser() as web:
        assert (await sso_login(web)).status_code == 303
        session_id = web.cookies[COOKIE]
        token = CSRF.search((await web.get("/")).text)[1]
        r = await web.post("/logout", data={"csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/login"
    [row] = sessions_of(world, "staff.tuayang")
    assert row.revoked_at is not None
    async with world.browser() as stolen:  # the old cookie opens nothing any more
        stolen.cookies.set(COOKIE, session_id, domain="dmcflow.test")
        assert (await stolen.get("/")).status_code == 303


# --- in a real browser --------------------------------------------------------------------------------------------

@pytest.mark.slow  # Chromium against the app and the provider, both under uvicorn
async def test_in_a_browser_the_button_takes_the_person_to_the_provider_and_home(world):
    from tests.test_dashboard_browser import browser
    from tests.web.test_pages import looked_at, new_page, tab_to

    port = free_port()
    base = world.settings.public_url = f"http://127.0.0.1:{port}"  # the callback the provider sends back to
    server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        async with browser() as b:
            page, problems = await new_page(b, base)
            await page.goto("/login")
            await looked_at(page, "login-sso")  # the login page with its sign-on button: axe-clean, both widths
            world.at_provider("nobody.here", sub="sub-nobody")
            await tab_to(page, "#sso-login")  # the keyboard alone reaches and presses it
            await page.keyboard.press("Enter")
            await page.wait_for_selector('[data-code="sso_no_account"]')
            assert page.url.startswith(f"{base}/login/oidc/callback")
            await looked_at(page, "login-sso-refused")  # the refusal in words beside the button
            world.at_provider("staff.tuayang")
            await page.click("#sso-login")
            await page.wait_for_url(f"{base}/")
            assert "คุณ staff.tuayang" in await page.content()
            # the one failed load is the refusal's own page (answered 403, as the password form's 401)
            assert [p for p in problems if "status of 403" not in p] == [], problems
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
