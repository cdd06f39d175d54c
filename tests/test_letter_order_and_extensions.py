"""Issue 16 through the API: R10's menu order as the letter writes it, and extensions that only extend."""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.stack import HEADER, SCHOOL, SCHOOL_2, mark_all_present, running_stack, tomorrows_round
from tests.timing import skip_to

ROSTER = HEADER + (f"{SCHOOL},ก,1449900000018,ม.1,1,1,ช,เด็กชาย,เลื่อน,ชั้น,01/01/2555,ใช่\n"
                   f"{SCHOOL},ก,1449900000026,ม.3,1,2,ช,เด็กชาย,จบ,การศึกษา,01/01/2552,ใช่\n"
                   f"{SCHOOL},ก,1449900000034,ม.2,1,3,ช,เด็กหญิง,ซ้ำ,ชั้น,01/01/2554,ใช่\n")


async def test_r10_menu_3222_may_come_before_3221_and_all_three_gate_confirmation(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _, confirm_from, _ = await tomorrows_round(stack)
        url, staff = f"/rounds/{rid}/schools/{SCHOOL}", stack.auth("staff")
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=staff,
                                  files={"file": ("r.csv", ROSTER.encode(), "text/csv")})
        assert r.json()["applied"] == 3, r.text
        destination = {"step": "3.2.2.2", "records": [{"student": "1449900000026", "destination": "other_school"}]}
        r = await stack.http.post(f"{url}/end-of-year", headers=staff, json=destination)
        assert r.status_code == 409 and r.json()["code"] == "step_order", r.text  # 3.2.2 comes first
        assert r.json()["message_th"].startswith("ต้องบันทึกเมนู 3.2.2 ให้ครบทุกคนก่อนเมนู 3.2.2.2")
        r = await stack.http.post(f"{url}/end-of-year", headers=staff, json={"step": "3.2.2", "records": [
            {"student": "1449900000018", "result": "promoted"}, {"student": "1449900000026", "result": "graduated"},
            {"student": "1449900000034", "result": "repeat"}]})
        assert r.status_code == 200 and r.json()["applied"] == 3, r.text

        # 3.2.2.2 before 3.2.2.1: the letter does not order those two (this used to be refused)
        r = await stack.http.post(f"{url}/end-of-year", headers=staff, json=destination)
        assert r.status_code == 200 and r.json()["applied"] == 1, r.text
        assert r.json()["gate"]["steps"] == {"3.2.2": True, "3.2.2.1": False, "3.2.2.2": True}

        await skip_to(stack, confirm_from)
        r = await stack.http.post(f"{url}/confirmation", headers=staff)
        assert r.status_code == 409 and r.json()["code"] == "gate_3_2_2_1", r.text
        r = await stack.http.post(f"{url}/end-of-year", headers=staff, json={
            "step": "3.2.2.1", "records": [{"student": "1449900000034", "reasons": ["attendance"]}]})
        assert r.status_code == 200, r.text
        await mark_all_present(stack, rid, SCHOOL)
        assert (await stack.http.post(f"{url}/confirmation", headers=staff)).status_code == 200


async def test_an_extension_never_brings_a_cutoff_earlier(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _, confirm_from, cutoff = await tomorrows_round(stack)
        await skip_to(stack, confirm_from + timedelta(hours=1))  # 09.30 on the day
        extensions = f"/rounds/{rid}/deadline-extensions"

        # a district "extending" one school to 09.45: the school would lose its afternoon
        r = await stack.http.post(extensions, headers=stack.auth("district"), json={
            "school_code": SCHOOL, "cutoff_at": (confirm_from + timedelta(hours=1, minutes=15)).isoformat(),
            "reason": "ปิดก่อน"})
        assert r.status_code == 422 and r.json()["code"] == "extension_not_later", r.text
        assert r.json()["message_th"].startswith("การขยายเวลาต้องเลื่อนกำหนดส่งให้ช้ากว่าเดิม")
        # the whole round: refused by the API before any school is touched
        r = await stack.http.post(extensions, headers=stack.auth("admin"), json={
            "cutoff_at": (cutoff - timedelta(hours=2)).isoformat(), "reason": "ปิดก่อน"})
        assert r.status_code == 422 and r.json()["code"] == "extension_not_later", r.text
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=stack.auth("staff"))
        assert r.json()["cutoff_at"]["th"].endswith("16.30 น.")

        # an area extension moves a school later; a later round-wide one that is earlier than that school's
        # own cutoff leaves it alone (it keeps its later cutoff), and moves the others
        later = cutoff + timedelta(days=2)
        r = await stack.http.post(extensions, headers=stack.auth("district"), json={
            "school_code": SCHOOL, "cutoff_at": later.isoformat(), "reason": "ขยายเวลาตามหนังสือเขต"})
        assert r.status_code == 200, r.text
        r = await stack.http.post(extensions, headers=stack.auth("admin"), json={
            "cutoff_at": (cutoff + timedelta(days=1)).isoformat(), "reason": "สพฐ. ขยายเวลา"})
        assert r.status_code == 200, r.text
        await stack.client.get_workflow_handle(r.json()["operation_id"]).result()
        mine = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=stack.auth("staff"))).json()
        other = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL_2}", headers=stack.auth("staff2"))).json()
        assert datetime.fromisoformat(mine["cutoff_at"]["iso"]) == later
        assert datetime.fromisoformat(other["cutoff_at"]["iso"]) == cutoff + timedelta(days=1)
