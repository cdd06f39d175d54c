"""Bad input through the API that once answered 500: each is now a refusal with its code (found by
tests/test_api_fuzz.py and the properties; kept here as plain examples, on both database backends)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.db_backends import BOTH_BACKENDS
from tests.stack import HEADER, READY_IDS, SCHOOL, add_round, running_stack, unique_round

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)


def assert_refusal(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert body["message_th"] and body["message_en"] and body["message_th"] != body["message_en"]


async def test_roster_changes_on_a_round_that_does_not_exist(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        staff = stack.auth("staff")
        for rid in ("no-such-round", "x" * 60):
            base = f"/rounds/{rid}/schools/{SCHOOL}"
            r = await stack.http.post(f"{base}/end-of-year", headers=staff, json={
                "step": "3.2.2", "records": [{"student": READY_IDS[SCHOOL], "result": "promoted"}]})
            assert_refusal(r, 404, "not_found")
            r = await stack.http.post(f"{base}/students/update", headers=staff,
                                      json={"student": READY_IDS[SCHOOL], "changes": {"classroom": "2"}})
            assert_refusal(r, 404, "not_found")
            r = await stack.http.post(f"/rounds/{rid}/students/import", headers=staff, files={
                "file": ("r.csv", (HEADER + f"{SCHOOL},ก,{READY_IDS[SCHOOL]},ม.1,1,1,ช,ด.ช.,ก,ข,01/01/2555,ใช่\n")
                         .encode(), "text/csv")})
            assert_refusal(r, 404, "not_found")


async def test_a_started_round_refuses_with_reasons(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students/update", headers=stack.auth("staff"),
                                  json={"student": READY_IDS[SCHOOL], "changes": {"classroom": "2"}})
        assert_refusal(r, 409, "round_not_started")  # the round exists, its schools' workflows do not yet


async def test_a_nul_character_is_refused_wherever_it_is_sent(time_env, engine, settings):
    """PostgreSQL cannot store U+0000 in text: it was a 500 there (and a stuck activity for an email)."""
    async with running_stack(time_env, engine, settings) as stack:
        admin, staff = stack.auth("admin"), stack.auth("staff")
        r = await stack.http.put(f"/schools/{SCHOOL}", headers=admin, json={"name": "โรงเรียน\u0000", "area": "ก"})
        assert_refusal(r, 422, "nul_character")
        r = await stack.http.get("/rounds/%00", headers=admin)
        assert_refusal(r, 422, "nul_character")
        r = await stack.http.get("/id-corrections?area=%00", headers=admin)
        assert_refusal(r, 422, "nul_character")
        r = await stack.http.post("/rounds/r/duplicates/d/resolution", headers=staff,
                                  data={"action": "absent", "note": "x\x00"})  # urlencoded
        assert_refusal(r, 422, "nul_character")
        r = await stack.http.post("/rounds/r/duplicates/d/resolution", headers=staff,
                                  data={"action": "absent", "note": "x\x00"},
                                  files={"evidence": ("e.pdf", b"%PDF-1.4\x00", "application/pdf")})  # multipart
        assert_refusal(r, 422, "invalid_request")
        r = await stack.http.put(f"/schools/{SCHOOL}", headers=admin, json={"name": "100%00 ok", "area": "ก"})
        assert r.status_code == 200, r.text  # "%00" in JSON is just text
