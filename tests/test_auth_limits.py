"""Bearer tokens: stored only as hashes, and guessing them is rate-limited per client address."""

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
    for _ in range(LIMIT):
        limiter.check("a")
        limiter.failed("a")
        clock.now += 10  # failures at 1000, 1010, 1020
    with pytest.raises(Refusal) as exc:
        limiter.check("a")
    assert exc.value.status == 429 and exc.value.code == "too_many_failed_logins"
    assert exc.value.headers == {"Retry-After": "30"}  # the first failure leaves the window at 1060
    limiter.check("b")  # another address is not affected
    clock.now = 1060
    limiter.check("a")  # one failure has left the window: one more attempt
    limiter.failed("a")
    with pytest.raises(Refusal):
        limiter.check("a")
    clock.now = 1200
    limiter.check("a")


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


async def test_wrong_tokens_are_refused_with_429_after_the_limit(api):
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
        # blocked means blocked: a right guess now would not be told apart from a wrong one
        assert (await guesser.get("/me", headers=bearer(token))).status_code == 429
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
