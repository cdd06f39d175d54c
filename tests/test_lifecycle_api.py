"""A school's whole round through the API, under Temporal's time-skipping test server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.db_backends import BOTH_BACKENDS
from tests.stack import SCHOOL, add_round, keep_history, mark_all_present, running_stack, unique_round
from tests.timing import bangkok_on_day as next_day_bangkok
from tests.timing import skip_to as sleep_until

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)


ROSTER = (
    "รหัสโรงเรียน,ชื่อโรงเรียน,เลขประจำตัวประชาชน,ชั้น,ห้อง,เลขประจำตัวนักเรียน,เพศ,คำนำหน้าชื่อ,ชื่อ,นามสกุล,วันเกิด,สอบปลายภาค\n"
    f"{SCHOOL},โรงเรียนตัวอย่างวิทยา,1449900000018,ม.1,1,10001,ช,เด็กชาย,ปวีณา,พลอยงาม,02/02/2555,ใช่\n"
    f"{SCHOOL},โรงเรียนตัวอย่างวิทยา,1449900000026,ม.3,2,10002,ญ,เด็กหญิง,ศุภชัย,แสนสุข,03/03/2554,ใช่\n"
    f"{SCHOOL},โรงเรียนตัวอย่างวิทยา,1449900000034,ม.2,3,10003,ช,เด็กชาย,ณัฐธิดา,วงศ์ใหญ่,04/04/2553,ใช่\n"
)


async def test_open_to_certified_with_gates_and_reminders(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        confirm_from = next_day_bangkok(now, 8, 30)
        cutoff = next_day_bangkok(now, 16, 30)
        add_round(engine, rid, now - timedelta(minutes=1), confirm_from, cutoff)
        await stack.start_round(rid)
        url = f"/rounds/{rid}/schools/{SCHOOL}"

        r = await stack.http.get(url, headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["stage"] == "open"
        assert body["cutoff_at"]["th"].endswith("16.30 น.")
        assert body["gate"]["students"] == 0

        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                  files={"file": ("roster.csv", ROSTER.encode("utf-8-sig"), "text/csv")})
        assert r.status_code == 200, r.text
        assert r.json()["applied"] == 3 and r.json()["refused"] == 0

        # 3.2.2.1 before 3.2.2 is complete: refused, steps go in order
        r = await stack.http.post(f"{url}/end-of-year", headers=stack.auth("staff"), json={
            "step": "3.2.2.1", "records": [{"student": "1449900000034", "reasons": ["attendance"]}]})
        assert r.status_code == 409 and r.json()["code"] == "step_order", r.text

        r = await stack.http.post(f"{url}/end-of-year", headers=stack.auth("staff"), json={
            "step": "3.2.2", "records": [
                {"student": "1-4499-00000-01-8", "result": "promoted", "years_studied": 1},
                {"student": "๑๔๔๙๙๐๐๐๐๐๐๒๖", "result": "graduated", "years_studied": 3},
                {"student": "1449900000034", "result": "repeat", "years_studied": 2}]})
        assert r.status_code == 200, r.text
        assert r.json()["applied"] == 3 and r.json()["gate"]["steps"]["3.2.2"] is True

        # inside the day but before 08:30: refused with the time it opens
        await sleep_until(stack, confirm_from - timedelta(seconds=1))
        r = await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "window_not_open", r.text
        assert "08.30 น." in r.json()["message_th"]

        await sleep_until(stack, confirm_from)
        r = await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "gate_3_2_2_1", r.text

        for step, rec in [("3.2.2.1", {"student": "1449900000034", "reasons": ["attendance"]}),
                          ("3.2.2.2", {"student": "1449900000026", "destination": "other_school"})]:
            r = await stack.http.post(f"{url}/end-of-year", headers=stack.auth("staff"),
                                      json={"step": step, "records": [rec]})
            assert r.status_code == 200 and r.json()["applied"] == 1, r.text

        r = await stack.http.post(f"{url}/certification", headers=stack.auth("director"))
        assert r.status_code == 409 and r.json()["code"] == "not_confirmed"

        r = await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "existence_incomplete", r.text  # R11: every record
        await mark_all_present(stack, rid, SCHOOL)
        r = await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        assert r.json()["stage"] == "confirmed" and r.json()["confirmed"]["by_name"] == "ครูธุรการ"

        # frozen while confirmed
        r = await stack.http.post(f"{url}/end-of-year", headers=stack.auth("staff"), json={
            "step": "3.2.2", "records": [{"student": "1449900000018", "result": "repeat"}]})
        assert r.status_code == 409 and r.json()["code"] == "roster_frozen"

        # the 12:00 reminder reaches the school (confirmed, so it asks for the director)
        await sleep_until(stack, cutoff - timedelta(hours=4, minutes=30) + timedelta(seconds=5))
        r = await stack.http.post(f"{url}/certification", headers=stack.auth("director"))
        assert r.status_code == 200, r.text
        assert r.json()["stage"] == "certified"
        reminders = [m for m in smtp.messages if "dmc@tuayang.ac.th" in m["To"]]
        assert len(reminders) == 1 and "ผู้อำนวยการยังไม่ได้รับรอง" in reminders[0].get_body(("plain",)).get_content()

        r = await stack.http.get(f"{url}/audit", headers=stack.auth("district"))
        actions = [e["action"] for e in r.json()]
        assert actions.count("confirm") == 1 and actions.count("certify") == 1
        await keep_history(stack, f"school-round/{rid}/{SCHOOL}", "school_round_certified")
