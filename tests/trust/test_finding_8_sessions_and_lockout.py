"""Finding 8 of issue 15: sessions are sessions, and the failed sign-in limiter never locks out a valid user.

Before: the dashboard cookie was the bearer token itself, `Secure` only with an https public URL; logout
only removed the cookie; tokens never expired and no command disabled or rotated a user; the limiter,
keyed on the address and checked before the lookup, answered 429 to valid tokens, while the login form
and the cookie were not limited at all.

The app runs in process (httpx's ASGI transport, whose `client=` is the connection's peer address); the
credentials' wall clock is injected (`create_app(auth_clock=...)`). The session cookie is `Secure`, which
httpx keeps away from an http:// URL, so these tests send it back themselves, as a browser over https would.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app
from db.directory import create_round, create_user, upsert_school
from db.engine import session_scope
from dmcflow import cli
from dmcflow.settings import Settings, get_settings
from domain.rounds import SHIPPED_ROUNDS
from tests.db_backends import BOTH_BACKENDS

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)

AREA, SCHOOL, ROUND = "สพม.มหาสารคาม", "1044449001", "2566-3"
COOKIE = "dmcflow_session"
LOGIN_FORM = 'action="/dashboard/login"'
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


class World:
    def __init__(self, engine, clock: Clock, **settings) -> None:
        self.engine, self.clock = engine, clock
        with session_scope(engine) as s:
            upsert_school(s, SCHOOL, "โรงเรียนทดสอบ", AREA, [])
            s.flush()
            create_round(s, SHIPPED_ROUNDS[ROUND])
            district, self.district_token = create_user(s, role="district", display_name="เขต", area=AREA)
            staff, self.staff_token = create_user(s, role="staff", display_name="ครู", school_code=SCHOOL)
            self.district_id = district.id
        self.app = create_app(Settings(database_url=str(engine.url), **settings), engine=engine, auth_clock=clock)

    def client(self, address: str = "198.51.100.10") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=(address, 40000)),
                                 base_url="http://api")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def world(engine, clock) -> World:
    return World(engine, clock, session_idle_minutes=30, session_absolute_hours=2, auth_failure_limit=20)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def cookie(value: str) -> dict:
    return {"Cookie": f"{COOKIE}={value}"}


async def log_in(web: httpx.AsyncClient, token: str) -> str:
    r = await web.post("/dashboard/login", data={"token": token, "next": f"/dashboard?round={ROUND}"})
    assert r.status_code == 303, r.text
    found = re.search(rf"{COOKIE}=([^;]+)", r.headers["set-cookie"])
    assert found, r.headers["set-cookie"]
    return found[1]


async def page(web: httpx.AsyncClient, session_id: str) -> httpx.Response:
    return await web.get(f"/dashboard?round={ROUND}", headers=cookie(session_id))


def signed_in(r: httpx.Response) -> bool:
    return r.status_code == 200 and 'id="initial-data"' in r.text and LOGIN_FORM not in r.text


async def test_the_cookie_after_login_is_a_session_not_the_token(world):
    async with world.client() as web:
        r = await web.post("/dashboard/login", data={"token": world.district_token})
        set_cookie = r.headers["set-cookie"]
        session_id = re.search(rf"{COOKIE}=([^;]+)", set_cookie)[1]
        assert world.district_token not in set_cookie and session_id != world.district_token
        attributes = {a.strip().lower() for a in set_cookie.split(";")[1:]}
        assert {"httponly", "samesite=lax", "path=/", "secure"} <= attributes
        assert signed_in(await page(web, session_id))
        # the session id is no bearer token: not as a header, and the cookie opens no API route
        assert (await web.get("/me", headers=bearer(session_id))).json()["code"] == "unauthenticated"
        assert (await web.get("/me", headers=cookie(session_id))).status_code == 401
    with world.engine.connect() as conn:
        stored = [tuple(str(v) for v in row) for row in conn.execute(text("SELECT * FROM web_sessions"))]
    assert len(stored) == 1 and not any(session_id in v for v in stored[0])  # only its hash is kept


async def test_logout_revokes_the_session(world):
    async with world.client() as web:
        session_id = await log_in(web, world.district_token)
        shown = await page(web, session_id)
        token = CSRF.search(shown.text)[1]
        r = await web.post("/dashboard/logout", data={"csrf_token": token}, headers=cookie(session_id))
        assert r.status_code == 303 and f'{COOKIE}=""' in r.headers["set-cookie"]
        # a copy of the old cookie (kept by an attacker, or another tab) no longer opens anything
        after = await page(web, session_id)
        assert LOGIN_FORM in after.text and not signed_in(after)
        assert (await web.get(f"/rounds/{ROUND}/areas/{AREA}/dashboard", headers=cookie(session_id))).status_code == 401


async def test_a_session_ends_after_the_idle_time_and_at_its_absolute_expiry(world, clock):
    async with world.client() as web:
        session_id = await log_in(web, world.district_token)
        clock.now += timedelta(minutes=29)
        assert signed_in(await page(web, session_id))  # used within the idle time: it goes on
        clock.now += timedelta(minutes=29)
        assert signed_in(await page(web, session_id))
        clock.now += timedelta(minutes=31)  # 31 minutes without a request
        assert LOGIN_FORM in (await page(web, session_id)).text

        session_id = await log_in(web, world.district_token)
        for minutes in (20, 20, 20, 20, 20, 19):  # in use every 20 minutes for almost two hours
            clock.now += timedelta(minutes=minutes)
            assert signed_in(await page(web, session_id))
        clock.now += timedelta(minutes=2)  # but no session lives longer than session_absolute_hours
        assert LOGIN_FORM in (await page(web, session_id)).text


async def test_the_cookie_is_secure_by_default_and_off_only_on_loopback_in_dmcflow_dev(engine, clock):
    from dmcflow.local_stack import api_settings  # what `dmcflow dev` serves with

    plain_public = World(engine, clock, public_url="http://dmcflow.example")  # an http public URL changes nothing
    async with plain_public.client() as web:
        r = await web.post("/dashboard/login", data={"token": plain_public.district_token})
        assert "secure" in {a.strip().lower() for a in r.headers["set-cookie"].split(";")}
    assert Settings().session_cookie_secure
    assert not api_settings(Settings(api_host="127.0.0.1")).session_cookie_secure
    assert not api_settings(Settings(api_host="localhost")).session_cookie_secure
    assert api_settings(Settings(api_host="0.0.0.0")).session_cookie_secure
    assert api_settings(Settings(api_host="10.1.2.3")).session_cookie_secure


async def test_a_form_post_without_the_sessions_csrf_token_is_refused(world):
    async with world.client() as web:
        session_id = await log_in(web, world.district_token)
        for data in ({}, {"csrf_token": "forged"}):
            r = await web.post("/dashboard/logout", data=data, headers=cookie(session_id))
            assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text, r.text
            assert signed_in(await page(web, session_id))  # the forged logout did nothing
        # another site's page cannot post a token to the login form either (login CSRF)
        for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            r = await web.post("/dashboard/login", data={"token": world.district_token}, headers=headers)
            assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text and "set-cookie" not in r.headers


async def test_an_expired_bearer_token_is_refused_with_its_code(world, clock):
    with session_scope(world.engine) as s:
        _, token = create_user(s, role="district", display_name="เขตชั่วคราว", area=AREA, lifetime_days=1)
    async with world.client() as web:
        assert (await web.get("/me", headers=bearer(token))).status_code == 200
        clock.now += timedelta(days=1, minutes=1)
        r = await web.get("/me", headers=bearer(token))
        assert r.status_code == 401 and r.json()["code"] == "token_expired" and r.json()["message_th"]
        form = await web.post("/dashboard/login", data={"token": token})
        assert form.status_code == 401 and 'data-code="token_expired"' in form.text
        assert (await web.get("/me", headers=bearer(world.staff_token))).status_code == 200  # others' tokens live on


@pytest.fixture
def console(world, monkeypatch, capsys):
    """`dmcflow ...` against the world's database; answers the printed lines."""
    monkeypatch.setenv("DMCFLOW_DATABASE_URL", world.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()

    def run(*argv: str) -> list[str]:
        cli.main(list(argv))
        return capsys.readouterr().out.splitlines()

    yield run
    get_settings.cache_clear()


async def test_users_disable_and_rotate_token_take_effect_at_once(world, console):
    assert any(world.district_id in line and "active" in line for line in console("users", "list"))
    async with world.client() as web:
        session_id = await log_in(web, world.district_token)
        new_token = console("users", "rotate-token", world.district_id)[-1]
        assert (await web.get("/me", headers=bearer(world.district_token))).status_code == 401
        assert LOGIN_FORM in (await page(web, session_id)).text  # the old token's session ended with it
        assert (await web.get("/me", headers=bearer(new_token))).json()["id"] == world.district_id

        session_id = await log_in(web, new_token)
        assert signed_in(await page(web, session_id))
        console("users", "disable", world.district_id)
        assert (await web.get("/me", headers=bearer(new_token))).status_code == 401
        assert LOGIN_FORM in (await page(web, session_id)).text
        assert (await web.post("/dashboard/login", data={"token": new_token})).status_code == 401
    assert any(world.district_id in line and "disabled" in line for line in console("users", "list"))


async def test_wrong_tokens_from_an_address_never_lock_out_a_valid_token_from_it(world):
    async with world.client("203.0.113.50") as nat:  # one school's NAT: a broken script and the officers
        codes = [(await nat.get("/me", headers=bearer(f"wrong-{n}"))).status_code for n in range(25)]
        assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}
        r = await nat.get("/me", headers=bearer(world.staff_token))
        assert r.status_code == 200 and r.json()["role"] == "staff"
        session_id = await log_in(nat, world.district_token)  # the login form too
        assert signed_in(await page(nat, session_id))
        assert (await nat.get("/me", headers=bearer("wrong-again"))).status_code == 429  # guesses stay refused


async def test_the_login_form_and_the_session_cookie_are_limited_too(engine, clock):
    world = World(engine, clock, auth_failure_limit=3)
    async with world.client("203.0.113.60") as web:
        for n in range(3):
            r = await web.post("/dashboard/login", data={"token": f"guess-{n}"})
            assert r.status_code == 401, r.text
        r = await web.post("/dashboard/login", data={"token": "guess-3"})
        assert r.status_code == 429 and 'data-code="too_many_failed_logins"' in r.text
        assert int(r.headers["Retry-After"]) > 0
    async with world.client("203.0.113.61") as web:
        for n in range(3):  # made-up session ids: the login form, and counted
            r = await page(web, f"made-up-{n}")
            assert r.status_code == 200 and LOGIN_FORM in r.text
        r = await page(web, "made-up-3")
        assert r.status_code == 429 and LOGIN_FORM in r.text and 'data-code="too_many_failed_logins"' in r.text
        assert (await web.get(f"/rounds/{ROUND}/areas/{AREA}/dashboard", headers=cookie("made-up-4"))).status_code == 429
        session_id = await log_in(web, world.district_token)  # still: a valid token signs in from there
        assert signed_in(await page(web, session_id))
    # one wrong credential tried from many addresses is limited on its own
    statuses = []
    for n in range(4):
        async with world.client(f"192.0.2.{n + 1}") as web:
            statuses.append((await web.get("/me", headers=bearer("the-same-leaked-guess"))).status_code)
    assert statuses == [401, 401, 401, 429]


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(engine, clock):
    world = World(engine, clock, auth_failure_limit=3, trusted_proxies=["10.0.0.0/8"])
    async with world.client("203.0.113.70") as direct:  # not a proxy: its header is ignored
        for n in range(3):
            r = await direct.get("/me", headers={**bearer(f"x-{n}"), "X-Forwarded-For": f"192.0.2.{n}"})
            assert r.status_code == 401
        r = await direct.get("/me", headers={**bearer("x-3"), "X-Forwarded-For": "192.0.2.99"})
        assert r.status_code == 429  # a fresh X-Forwarded-For does not reset the count
    async with world.client("10.0.0.2") as proxy:  # the district's reverse proxy: each client counts alone
        for n in range(3):
            r = await proxy.get("/me", headers={**bearer(f"p-{n}"), "X-Forwarded-For": "198.51.100.1"})
            assert r.status_code == 401
        r = await proxy.get("/me", headers={**bearer("p-3"), "X-Forwarded-For": "198.51.100.1"})
        assert r.status_code == 429
        r = await proxy.get("/me", headers={**bearer("p-4"), "X-Forwarded-For": "198.51.100.2"})
        assert r.status_code == 401  # another client behind the same proxy is not locked out
