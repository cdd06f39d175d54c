"""Bearer tokens: stored only as hashes, and failed sign-ins are limited per client address and per
credential, without ever refusing a valid one (the whole of finding 8: tests/trust/test_finding_8_*)."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app
from api.auth_limits import FailedAuthLimiter
from db.directory import create_user, upsert_school
from db.engine import session_scope
from domain.refusals import Refusal
from dmcflow.settings import Settings

LIMIT = 3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_slides_with_the_window():
    clock = Clock()
    limiter = FailedAuthLimiter(LIMIT, 60, clock)
    for n in range(LIMIT):
        limiter.failed("a", f"guess-{n}")
        clock.now += 10  # failures at 1000, 1010, 1020
    with pytest.raises(Refusal) as exc:
        limiter.failed("a", "guess-x")
    assert exc.value.status == 429 and exc.value.code == "too_many_failed_logins"
    assert exc.value.headers == {"Retry-After": "30"}  # the first failure leaves the window at 1060
    limiter.failed("b", "guess-y")  # another address is not affected
    clock.now = 1060
    limiter.failed("a", "guess-z")  # one failure has left the window: one more attempt
    with pytest.raises(Refusal):
        limiter.failed("a", "guess-w")
    clock.now = 1200
    limiter.failed("a", "guess-v")


def test_one_credential_is_limited_across_addresses():
    clock = Clock()
    limiter = FailedAuthLimiter(LIMIT, 60, clock)
    for n in range(LIMIT):
        limiter.failed(f"10.0.0.{n}", "the same guess")
    with pytest.raises(Refusal) as exc:
        limiter.failed("10.0.0.99", "the same guess")
    assert exc.value.code == "too_many_failed_logins"
    limiter.failed("10.0.0.99", "another guess")  # that address itself is not locked


def test_a_locked_client_cannot_extend_its_own_lock():
    clock = Clock()
    limiter = FailedAuthLimiter(LIMIT, 60, clock)
    for n in range(LIMIT):
        limiter.failed("a", f"guess-{n}")
    for n in range(50):  # refused failures are not recorded
        clock.now += 1
        with pytest.raises(Refusal):
            limiter.failed("a", f"more-{n}")
    clock.now = 1060
    limiter.failed("a", "after the window")


@pytest.fixture
def api(engine):
    with session_scope(engine) as s:
        upsert_school(s, "1044449001", "โรงเรียน", "สพม.มหาสารคาม", [])
        s.flush()
        _, token = create_user(s, role="staff", display_name="ครู", school_code="1044449001")
    app = create_app(Settings(database_url=str(engine.url), auth_failure_limit=LIMIT), engine=engine)

    def client(address: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://api")

    return client, token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_wrong_tokens_are_refused_with_429_after_the_limit_but_a_valid_one_is_not(api):
    client, token = api
    async with client("203.0.113.7") as guesser, client("198.51.100.1") as school:
        assert (await guesser.get("/me", headers=bearer(token))).status_code == 200  # successes do not count
        for n in range(LIMIT):
            r = await guesser.get("/me", headers=bearer(f"guess-{n}"))
            assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        for _ in range(5):  # a request without a token is not an attempt: still 401, never counted
            assert (await guesser.get("/me")).status_code == 401
        r = await guesser.get("/me", headers=bearer("guess-again"))
        assert r.status_code == 429, r.text
        body = r.json()
        assert body["code"] == "too_many_failed_logins" and "นาที" in body["message_th"] and body["message_en"]
        assert 0 < int(r.headers["Retry-After"]) <= 300
        # a valid token is never refused, not even from a locked address (a NAT's officers behind a bad script)
        assert (await guesser.get("/me", headers=bearer(token))).status_code == 200
        # an officer at another address signs in as usual
        r = await school.get("/me", headers=bearer(token))
        assert r.status_code == 200 and r.json()["role"] == "staff"


def test_tokens_are_stored_only_as_their_sha256(engine):
    with session_scope(engine) as s:
        upsert_school(s, "1044449001", "โรงเรียน", "สพม.มหาสารคาม", [])
        s.flush()
        _, token = create_user(s, role="staff", display_name="ครู", school_code="1044449001")
    with engine.connect() as conn:
        rows = [tuple(str(v) for v in row) for row in conn.execute(text("SELECT * FROM users"))]
    assert not [row for row in rows if any(token in v for v in row)]
    assert [row for row in rows if hashlib.sha256(token.encode()).hexdigest() in row]
