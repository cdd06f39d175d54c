"""Withdrawing a confirmation, the frozen roster after the cutoff, and a whole-round extension."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.stack import tomorrows_round, OTHER_SCHOOL, SCHOOL, SCHOOL_2, make_ready, running_stack
from tests.timing import bangkok_on_day, skip_to


async def test_staff_withdraw_edit_and_confirm_again(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        await make_ready(stack, rid, SCHOOL)
        url = f"/rounds/{rid}/schools/{SCHOOL}"
        await skip_to(stack, confirm_from + timedelta(hours=1))

        r = await stack.http.delete(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "not_confirmed"
        assert (await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))).status_code == 200
        r = await stack.http.delete(f"{url}/confirmation", headers=stack.auth("director"))
        assert r.status_code == 403
        r = await stack.http.delete(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200 and r.json()["stage"] == "confirmation_window" and r.json()["confirmed"] is None

        # unfrozen: a correction goes in, and it reopens menu 3.2.2.1 for the new repeater
        r = await stack.http.post(f"{url}/end-of-year", headers=stack.auth("staff"), json={
            "step": "3.2.2", "records": [{"student": "1449900000018", "result": "repeat"}]})
        assert r.status_code == 200 and r.json()["applied"] == 1
        r = await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "gate_3_2_2_1"
        r = await stack.http.post(f"{url}/end-of-year", headers=stack.auth("staff"), json={
            "step": "3.2.2.1", "records": [{"student": "1449900000018", "reasons": ["health"]}]})
        assert r.status_code == 200
        assert (await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))).status_code == 200
        assert (await stack.http.post(f"{url}/certification", headers=stack.auth("director"))).status_code == 200
        r = await stack.http.delete(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "already_certified"

        r = await stack.http.get(f"{url}/audit", headers=stack.auth("staff"))
        assert [e["action"] for e in r.json() if e["action"] in ("confirm", "withdraw_confirmation", "certify")] == [
            "confirm", "withdraw_confirmation", "confirm", "certify"]

        # after the cutoff the other school's roster is closed to edits
        await skip_to(stack, cutoff)
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/end-of-year", headers=stack.auth("staff2"),
                                  json={"step": "3.2.2", "records": [{"student": "1449910000096", "result": "promoted"}]})
        assert r.status_code == 409 and r.json()["code"] == "round_closed", r.text


async def test_admin_extends_the_whole_round(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack, start=False)
        new_cutoff = bangkok_on_day(now, 16, 30, days=8)
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("admin"),
                                  json={"cutoff_at": new_cutoff.isoformat(), "reason": "ก่อนเริ่ม"})
        assert r.status_code == 409 and r.json()["code"] == "round_not_started"
        await stack.start_round(rid)
        r = await stack.http.get(f"/rounds/{rid}", headers=stack.auth("district"))
        assert r.json()["schools_started"] == 3 and r.json()["started_at"]

        await skip_to(stack, confirm_from + timedelta(hours=1))
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("admin"),
                                  json={"cutoff_at": (confirm_from + timedelta(minutes=30)).isoformat(), "reason": "x"})
        assert r.status_code == 422 and r.json()["code"] == "extension_in_past"
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("admin"),
                                  json={"cutoff_at": (confirm_from - timedelta(minutes=30)).isoformat(), "reason": "x"})
        assert r.status_code == 422 and r.json()["code"] == "extension_before_window"
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("admin"),
                                  json={"cutoff_at": new_cutoff.isoformat(), "reason": "สพฐ. ขยายเวลาทั้งประเทศ"})
        assert r.status_code == 200 and r.json()["scope"] == "round", r.text
        await stack.client.get_workflow_handle(r.json()["operation_id"]).result()
        r2 = await stack.http.get(f"/rounds/{rid}/operations/{r.json()['operation_id']}", headers=stack.auth("admin"))
        assert r2.json()["done"] == 3 and r2.json()["finished"] is True

        r = await stack.http.get(f"/rounds/{rid}", headers=stack.auth("admin"))
        assert datetime.fromisoformat(r.json()["cutoff_at"]["iso"]) == new_cutoff
        await skip_to(stack, cutoff + timedelta(minutes=5))
        for school, who in [(SCHOOL, "staff"), (SCHOOL_2, "staff2"), (OTHER_SCHOOL, "other_staff")]:
            r = await stack.http.get(f"/rounds/{rid}/schools/{school}", headers=stack.auth(who))
            assert r.json()["stage"] == "confirmation_window", (school, r.json()["stage"])
            assert datetime.fromisoformat(r.json()["cutoff_at"]["iso"]) == new_cutoff
