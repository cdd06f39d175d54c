"""`dmcflow codec-server`: the Temporal UI's / CLI's remote codec answers admins only, and round-trips payloads."""

from __future__ import annotations

import base64

import httpx
import pytest

from db.directory import create_user, upsert_school
from db.engine import session_scope
from dmcflow.codec_server import create_codec_app
from dmcflow.payload_codec import KeyRing, new_key
from dmcflow.settings import Settings
from tests.payload_keys import TEST_RING

UI = "http://temporal-ui.example:8080"
b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
BODY = {"payloads": [{"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'{"user_id":"u-1"}')}]}


@pytest.fixture
async def codec(engine):
    tokens = {}
    with session_scope(engine) as s:
        upsert_school(s, "1044449001", "โรงเรียนตัวอย่างวิทยา", "สพม.มหาสารคาม", [])
        s.flush()
        for role, kw in {"admin": {}, "district": {"area": "สพม.มหาสารคาม"},
                         "staff": {"school_code": "1044449001"}}.items():
            _, tokens[role] = create_user(s, role=role, display_name=role, **kw)
    app = create_codec_app(Settings(database_url=str(engine.url), temporal_ui_origin=UI), TEST_RING, engine=engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec") as http:
        yield http, {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


async def test_an_admin_encodes_and_decodes(codec):
    http, auth = codec
    r = await http.post("/encode", json=BODY, headers=auth["admin"])
    assert r.status_code == 200, r.text
    [sealed] = r.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
    assert base64.b64decode(sealed["metadata"]["encryption-key-id"]) == b"test-1"
    assert b"u-1" not in base64.b64decode(sealed["data"])
    r = await http.post("/default/decode", json=r.json(), headers={**auth["admin"], "X-Namespace": "default"})
    assert r.status_code == 200 and r.json() == BODY


async def test_plaintext_shows_as_sent_and_a_foreign_payload_as_refused(codec):
    http, auth = codec
    assert (await http.post("/decode", json=BODY, headers=auth["admin"])).json() == BODY
    foreign = {"payloads": [{"metadata": {"encoding": b64(b"binary/encrypted"), "encryption-key-id": b64(b"k-x")},
                             "data": b64(b"\0" * 40)}]}
    [shown] = (await http.post("/decode", json=foreign, headers=auth["admin"])).json()["payloads"]
    assert base64.b64decode(shown["metadata"]["dmcflow-refused-reason"]) == b"unknown_key"


@pytest.mark.parametrize("who,status,code", [
    (None, 401, "unauthenticated"), ("bogus", 401, "unauthenticated"),
    ("staff", 403, "forbidden"), ("district", 403, "forbidden"),
])
async def test_only_admins_are_answered(codec, who, status, code):
    http, auth = codec
    headers = auth.get(who, {"Authorization": "Bearer not-a-token"} if who else {})
    for path in ("/decode", "/encode"):
        r = await http.post(path, json=BODY, headers=headers)
        assert r.status_code == status and r.json()["code"] == code, r.text
        assert r.json()["message_th"] and "u-1" not in r.text


async def test_cors_admits_the_temporal_ui_origin_only(codec):
    http, _ = codec
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    r = await http.options("/decode", headers={"Origin": UI, **ask})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == UI
    r = await http.options("/decode", headers={"Origin": "http://evil.example", **ask})
    assert "access-control-allow-origin" not in r.headers


async def test_bad_bodies_are_refusals_not_errors(codec):
    http, auth = codec
    for body in (b"not json", b'{"payloads": 5}', b'{"payloads": [{"data": 5}]}', b"[]"):
        r = await http.post("/decode", content=body, headers={**auth["admin"], "Content-Type": "application/json"})
        assert r.status_code == 422 and r.json()["code"] == "invalid_payloads", (body, r.text)


def test_a_key_ring_of_other_keys_is_another_ring():
    assert KeyRing.parse({"x": new_key()}, None).keys != TEST_RING.keys
