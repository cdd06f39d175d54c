"""The letter's rules table through the API: every operation accepted, and refused with its rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.db_backends import BOTH_BACKENDS
from tests.stack import HEADER, SCHOOL, SCHOOL_2, add_round, mark_all_present, running_stack, unique_round
from tests.timing import skip_to

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)

NEW = {"student": "1-4499-00000-07-7", "prefix": "เด็กชาย", "first_name": "ใหม่", "last_name": "มาเรียน", "grade": "ม.1",
       "classroom": "2", "sat_final_exam_here": True}


async def open_round(stack, engine):
    now = await stack.now()
    rid = unique_round()
    add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
    await stack.start_round(rid)
    csv = HEADER + (f"{SCHOOL},ก,1449900000018,ม.2,1,1,ช,เด็กชาย,ปวีณา,พลอยงาม,02/02/2555,ใช่\n"
                    f"{SCHOOL_2},ข,1449910000096,ม.1,1,1,ช,เด็กชาย,ชนิดา,พลอยงาม,10/10/2555,ใช่\n")
    r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("admin"),
                              files={"file": ("r.csv", csv.encode(), "text/csv")})
    assert r.json()["applied"] == 2, r.text
    return rid, now


def base(rid: str, school: str = SCHOOL) -> str:
    return f"/rounds/{rid}/schools/{school}"


async def test_admissions_r2_r5_r6(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await open_round(stack, engine)
        staff = stack.auth("staff")
        r = await stack.http.post(f"{base(rid)}/students", headers=staff, json={**NEW, "sat_final_exam_here": False})
        assert r.status_code == 422 and r.json()["code"] == "r6_no_final_exam" and "ข้อ 2, 6" in r.json()["message_th"]
        # R5 wherever a student enters: years are BE (a CE 2024 is refused as such), 2567's applicants never
        r = await stack.http.post(f"{base(rid)}/students", headers=staff, json={**NEW, "entry_academic_year": 2024})
        assert r.status_code == 422 and r.json()["code"] == "entry_year_not_be", r.text
        assert r.json()["message_th"].startswith("ปีการศึกษาที่เข้าเรียนต้องเป็นปีพุทธศักราช")
        for path, student in [("/students", NEW["student"]), ("/students/transfer-in", "1449900000026"),
                              ("/students/by-gcode", "G664400000008")]:
            r = await stack.http.post(f"{base(rid)}{path}", headers=staff,
                                      json={**NEW, "student": student, "entry_academic_year": 2567})
            assert r.status_code == 422 and r.json()["code"] == "r5_applicant", (path, r.text)
            assert "2567" in r.json()["message_th"] and "(ข้อ 5)" in r.json()["message_th"]
        csv = (HEADER.rstrip("\n") + ",ปีการศึกษาที่เข้าเรียน\n"
               f"{SCHOOL},ก,1449900000034,ม.1,1,1,ช,เด็กชาย,สมัคร,ใหม่,02/02/2556,ใช่,2567\n"
               f"{SCHOOL},ก,1449900000018,ม.2,1,1,ช,เด็กชาย,ปวีณา,พลอยงาม,02/02/2555,ใช่,2024\n")
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=staff,
                                  files={"file": ("r.csv", csv.encode(), "text/csv")})
        assert (r.json()["applied"], r.json()["refused"]) == (0, 2), r.text
        assert [(i["row"], i["code"]) for i in r.json()["issues"]] == [(2, "r5_applicant"), (3, "entry_year_not_be")]
        r = await stack.http.post(f"{base(rid)}/students", headers=staff, json={**NEW, "student": "1449900000076"})
        assert r.status_code == 422 and r.json()["code"] == "national_id_check_digit"
        r = await stack.http.post(f"{base(rid)}/students", headers=staff, json=NEW)
        assert r.status_code == 200 and r.json()["gate"]["students"] == 2, r.text
        r = await stack.http.post(f"{base(rid)}/students", headers=staff, json=NEW)
        assert r.status_code == 409 and r.json()["code"] == "already_on_roster"

        r = await stack.http.post(f"{base(rid)}/students/by-gcode", headers=staff, json={**NEW, "student": "1449900000026"})
        assert r.status_code == 422 and r.json()["code"] == "gcode_required"
        r = await stack.http.post(f"{base(rid)}/students/by-gcode", headers=staff,
                                  json={**NEW, "student": "g 6644 0000 0008"})
        assert r.status_code == 200, r.text
        r = await stack.http.post(f"{base(rid)}/students/transfer-in", headers=staff,
                                  json={**NEW, "student": "1449900000026", "from_school": "โรงเรียนเดิม"})
        assert r.status_code == 200 and r.json()["gate"]["students"] == 4

        audit = (await stack.http.get(f"{base(rid)}/audit", headers=stack.auth("district"))).json()
        transfer = [e for e in audit if e["action"] == "transfer_in_student"][0]
        assert transfer["before"] is None and transfer["after"]["from_school"] == "โรงเรียนเดิม"
        assert transfer["after"]["student_id"] == "1449900000026" and transfer["actor_name"] == "ครูธุรการ"


async def test_edits_transfer_out_status_and_profile_r1_r7_r8_r9(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await open_round(stack, engine)
        staff = stack.auth("staff")
        # R9: moving a class up without a reason is refused, saying promotion comes from 3.2.2
        r = await stack.http.post(f"{base(rid)}/students/update", headers=staff,
                                  json={"student": "1449900000018", "changes": {"grade": "ม.3"}})
        assert r.status_code == 422 and r.json()["code"] == "grade_up_needs_reason", r.text
        assert "3.2.2" in r.json()["message_th"] and "ข้อ 9" not in r.json()["message_th"]
        # an import is no way round it: it carries no reason
        csv = HEADER + f"{SCHOOL},ก,1449900000018,ม.3,1,1,ช,เด็กชาย,ปวีณา,พลอยงาม,02/02/2555,ใช่\n"
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=staff,
                                  files={"file": ("r.csv", csv.encode(), "text/csv")})
        assert [i["code"] for i in r.json()["issues"]] == ["grade_up_needs_reason"], r.text
        # a correction with its reason (recorded ม.2, is in ม.3) is allowed, and audited with the reason
        r = await stack.http.post(f"{base(rid)}/students/update", headers=staff, json={
            "student": "1449900000018", "changes": {"grade": "ม.3"}, "reason": "บันทึกชั้นผิดตอนย้ายเข้า"})
        assert r.status_code == 200, r.text
        audit = (await stack.http.get(f"{base(rid)}/audit", headers=staff)).json()
        correction = [e for e in audit if e["action"] == "update_student"][0]
        assert (correction["before"]["grade"], correction["after"]["grade"]) == ("ม.2", "ม.3")
        assert correction["reason"] == "บันทึกชั้นผิดตอนย้ายเข้า"
        r = await stack.http.post(f"{base(rid)}/students/update", headers=staff, json={
            "student": "1449900000018", "changes": {"grade": "ม.1", "classroom": "5", "first_name": " ปวีณา  ใหม่ "}})
        assert r.status_code == 200, r.text
        audit = (await stack.http.get(f"{base(rid)}/audit", headers=staff)).json()
        edit = [e for e in audit if e["action"] == "update_student"][1]
        assert (edit["before"]["grade"], edit["after"]["grade"]) == ("ม.3", "ม.1")
        assert edit["after"]["first_name"] == "ปวีณา ใหม่" and edit["after"]["classroom"] == "5"

        r = await stack.http.post(f"{base(rid)}/students/transfer-out", headers=staff,
                                  json={"student": "1449900000018", "to_school": "ที่อื่น"})
        assert r.status_code == 422 and r.json()["code"] == "r7_sat_final_exam"
        r = await stack.http.post(f"{base(rid)}/students/status", headers=staff,
                                  json={"student": "1449900000018", "status": "dropped_out"})
        assert r.status_code == 409 and r.json()["code"] == "r8_dropout_needs_consultation"
        r = await stack.http.post(f"{base(rid)}/students/status", headers=staff,
                                  json={"student": "1449900000018", "status": "deceased", "note": "ใบมรณบัตร"})
        assert r.status_code == 200 and r.json()["gate"]["students"] == 0

        # R7 accepts a student who left before the exam: the day they left, on or before the round's exam date
        from db.engine import session_scope
        from db.models import Student
        with session_scope(engine) as s:
            s.add(Student(school_code=SCHOOL, student_id="1449900000042", first_name="ออก", last_name="ก่อนสอบ",
                          grade="ม.4"))
        r = await stack.http.post(f"{base(rid)}/students/transfer-out", headers=staff,
                                  json={"student": "1449900000042", "left_on": "2024-02-01", "to_school": "ที่อื่น"})
        assert r.status_code == 200, r.text
        r = await stack.http.post(f"{base(rid)}/students/transfer-out", headers=staff, json={"student": "1449900000034"})
        assert r.status_code == 404 and r.json()["code"] == "student_not_on_roster"

        r = await stack.http.put(f"{base(rid)}/profile", headers=staff, json={
            "phone": "043-777-000", "director_name": "นายสมชาย ใจดี", "emails": ["dmc@tuayang.ac.th", "new@tuayang.ac.th"]})
        assert r.status_code == 200, r.text
        audit = (await stack.http.get(f"{base(rid)}/audit", headers=staff)).json()
        profile = [e for e in audit if e["action"] == "update_school_profile"][0]
        assert profile["before"]["phone"] is None and profile["after"]["phone"] == "043-777-000"
        r = await stack.http.put(f"{base(rid, SCHOOL_2)}/profile", headers=staff, json={"phone": "1"})
        assert r.status_code == 403


async def test_every_operation_refused_when_confirmed_and_after_the_cutoff(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now = await open_round(stack, engine)
        staff = stack.auth("staff")
        url = base(rid)
        ops = [("put", "/profile", {"phone": "1"}), ("post", "/students", NEW),
               ("post", "/students/transfer-in", NEW), ("post", "/students/by-gcode", {**NEW, "student": "G664400000008"}),
               ("post", "/students/update", {"student": "1449900000018", "changes": {"classroom": "9"}}),
               ("post", "/students/transfer-out", {"student": "1449900000018"}),
               ("post", "/students/status", {"student": "1449900000018", "status": "deceased"})]
        r = await stack.http.post(f"{url}/end-of-year", headers=staff, json={
            "step": "3.2.2", "records": [{"student": "1449900000018", "result": "promoted"}]})
        assert r.json()["gate"]["complete"]
        await skip_to(stack, now + timedelta(hours=2, minutes=1))
        await mark_all_present(stack, rid, SCHOOL)
        assert (await stack.http.post(f"{url}/confirmation", headers=staff)).status_code == 200
        for method, path, body in ops:
            r = await getattr(stack.http, method)(f"{url}{path}", headers=staff, json=body)
            assert r.status_code == 409 and r.json()["code"] == "roster_frozen", (path, r.text)
        removal = {"student": "1449900000018", "reason": "ซ้ำ"}  # the district's removal waits for the school too
        r = await stack.http.post(f"{url}/students/remove", headers=stack.auth("district"), json=removal)
        assert r.status_code == 409 and r.json()["code"] == "roster_frozen", r.text
        await skip_to(stack, now + timedelta(hours=8))
        for method, path, body in ops:
            r = await getattr(stack.http, method)(f"{url}{path}", headers=staff, json=body)
            assert r.status_code == 409 and r.json()["code"] == "round_closed", (path, r.text)
        r = await stack.http.post(f"{url}/students/remove", headers=stack.auth("district"), json=removal)
        assert r.status_code == 409 and r.json()["code"] == "round_closed", r.text
