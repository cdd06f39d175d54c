"""Who may do what, and how every refusal reads: a 4xx with {code, message_th, message_en}."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from openpyxl import Workbook

from tests.db_backends import BOTH_BACKENDS
from tests.stack import HEADER, OTHER_SCHOOL, SCHOOL, SCHOOL_2, add_round, running_stack, unique_round

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)


def assert_refusal(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code, body
    assert body["message_th"] and body["message_en"] and body["message_th"] != body["message_en"]


async def started_round(stack, engine, **kw):
    now = await stack.now()
    rid = unique_round()
    add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
    await stack.start_round(rid)
    return rid


async def test_tokens_and_roles(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await started_round(stack, engine)
        url = f"/rounds/{rid}/schools/{SCHOOL}"
        assert_refusal(await stack.http.get(url), 401, "unauthenticated")
        assert_refusal(await stack.http.get(url, headers={"Authorization": "Bearer nope"}), 401, "unauthenticated")
        assert_refusal(await stack.http.get(url, headers=stack.auth("staff2")), 403, "forbidden")
        assert_refusal(await stack.http.get(url, headers=stack.auth("other_district")), 403, "forbidden")
        for who in ("staff", "director", "district", "admin"):
            assert (await stack.http.get(url, headers=stack.auth(who))).status_code == 200
        assert_refusal(await stack.http.post(f"{url}/confirmation", headers=stack.auth("director")), 403, "forbidden")
        assert_refusal(await stack.http.post(f"{url}/certification", headers=stack.auth("staff")), 403, "forbidden")
        assert_refusal(await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/confirmation",
                                             headers=stack.auth("staff")), 403, "forbidden")
        assert_refusal(await stack.http.post(f"/rounds/{rid}/start", headers=stack.auth("district")), 403,
                       "forbidden")
        assert_refusal(await stack.http.put(f"/schools/{SCHOOL}", headers=stack.auth("staff"),
                                            json={"name": "x", "area": "y"}), 403, "forbidden")
        assert_refusal(await stack.http.get(f"/rounds/nope/schools/{SCHOOL}", headers=stack.auth("staff")), 404,
                       "round_not_started")
        assert_refusal(await stack.http.get(f"/rounds/{rid}/schools/9999999999", headers=stack.auth("admin")), 404,
                       "not_found")
        r = await stack.http.get("/me", headers=stack.auth("district"))
        assert r.json()["role"] == "district" and r.json()["area"]


async def test_admin_sets_up_schools_and_rounds(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        admin = stack.auth("admin")
        r = await stack.http.put("/schools/๑๐๔๔๔๔๙๐๐๙", headers=admin, json={
            "name": " โรงเรียนใหม่  วิทยา ", "area": "สพม.มหาสารคาม",
            "emails": ["DMC@New.ac.th", "dmc@new.ac.th", "office@new.ac.th"]})
        assert r.status_code == 200, r.text
        assert r.json() == {"code": "1044449009", "name": "โรงเรียนใหม่ วิทยา", "area": "สพม.มหาสารคาม",
                            "emails": ["dmc@new.ac.th", "office@new.ac.th"]}
        assert_refusal(await stack.http.put("/schools/12345", headers=admin, json={"name": "x", "area": "y"}),
                       422, "school_code_format")
        assert_refusal(await stack.http.put(f"/schools/{SCHOOL}", headers=admin,
                                            json={"name": "x", "area": "y", "emails": ["not-an-email"]}),
                       422, "invalid_request")

        body = {"id": "2567-1", "academic_year": 2567, "opens_at": "2024-05-16T00:00:00",
                "confirm_from": "2024-06-10T08:30:00", "cutoff_at": "2024-06-10T16:30:00"}
        r = await stack.http.post("/rounds", headers=admin, json=body)
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["cutoff_at"] == {"iso": "2024-06-10T16:30:00+07:00", "th": "10 มิ.ย. 2567 16.30 น."}
        assert [x["th"] for x in got["reminders"]] == ["10 มิ.ย. 2567 12.00 น.", "10 มิ.ย. 2567 15.30 น."]
        assert_refusal(await stack.http.post("/rounds", headers=admin, json=body), 409, "round_exists")
        assert_refusal(await stack.http.post("/rounds", headers=admin, json={**body, "id": "x", "cutoff_at":
                                                                             "2024-06-10T08:00:00"}),
                       422, "round_invalid")
        assert_refusal(await stack.http.post("/rounds", headers=admin, json={**body, "id": "y", "opens_at": "soon"}),
                       422, "invalid_request")


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


async def test_import_answers_row_by_row_in_every_encoding(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await started_round(stack, engine)
        rows = [
            f"{SCHOOL},ก,1449900000018,ม.1,1,1,ช,เด็กชาย,ปวีณา,พลอยงาม,02/02/2555,ใช่",
            f"{SCHOOL},ก,1449900000077,ม.1,1,2,ช,เด็กชาย,พิมพ์ชนก,ทองดี,08/08/2555,ไม่ใช่",
            f"{SCHOOL},ก,1449900000019,ม.1,1,3,ช,เด็กชาย,ผิด,หลัก,08/08/2555,ใช่",
            f"{OTHER_SCHOOL},ก,1449900000026,ม.2,1,4,ญ,เด็กหญิง,คนอื่น,โรงเรียนอื่น,03/03/2554,ใช่",
            "9999999999,ก,1449900000034,ม.2,1,5,ญ,เด็กหญิง,ไม่มี,โรงเรียน,03/03/2554,ใช่",
        ]
        text = HEADER + "\n".join(rows) + "\n"
        for name, data in [("utf8.csv", text.encode("utf-8")), ("bom.csv", text.encode("utf-8-sig")),
                           ("tis.csv", text.encode("tis-620")), ("win.csv", text.encode("cp874")),
                           ("roster.xlsx", xlsx([line.split(",") for line in text.strip().split("\n")]))]:
            r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                      files={"file": (name, data, "application/octet-stream")})
            assert r.status_code == 200, r.text
            report = r.json()
            codes = {(i["row"], i["code"]) for i in report["issues"]}
            assert codes == {(3, "r2_no_final_exam"), (4, "national_id_check_digit"), (5, "other_school"),
                             (6, "unknown_school")}, (name, codes)
            assert report["total_rows"] == 5
            assert report["applied"] + report["unchanged"] == 1
            assert all(i["message_th"] and i["message_en"] and i["column"] for i in report["issues"])
        # the first import applied the student; the four re-imports changed nothing
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=stack.auth("staff"))
        assert r.json()["gate"]["students"] == 1

        for bad in [b"\x00\x01\x02garbage", b"PK\x03\x04broken zip", b"", "ไม่มีหัวคอลัมน์\n1,2\n".encode()]:
            r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                      files={"file": ("x.csv", bad, "text/csv")})
            assert 400 <= r.status_code < 500, r.text
            assert r.json()["code"] and r.json()["message_th"]
        assert_refusal(await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("director"),
                                             files={"file": ("x.csv", text.encode(), "text/csv")}), 403, "forbidden")


async def test_end_of_year_refusals_name_the_student_and_reason(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await started_round(stack, engine)
        csv = HEADER + f"{SCHOOL},ก,1449900000018,ม.2,1,1,ช,เด็กชาย,ปวีณา,พลอยงาม,02/02/2555,ใช่\n"
        await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                              files={"file": ("r.csv", csv.encode(), "text/csv")})
        url = f"/rounds/{rid}/schools/{SCHOOL}/end-of-year"
        r = await stack.http.post(url, headers=stack.auth("staff"), json={"step": "3.2.2", "records": [
            {"student": "1449900000018", "result": "graduated"},
            {"student": "1449900000026", "result": "promoted"},
            {"student": "12345", "result": "promoted"}]})
        assert r.status_code == 200, r.text
        assert [(i["row"], i["code"]) for i in r.json()["issues"]] == [
            (1, "not_graduating_grade"), (2, "student_not_on_roster"), (3, "national_id_format")]
        assert r.json()["applied"] == 0 and r.json()["gate"]["results"] == 0
        assert_refusal(await stack.http.post(url, headers=stack.auth("staff"), json={"step": "3.2.3", "records": []}),
                       422, "invalid_request")
        assert_refusal(await stack.http.post(url, headers=stack.auth("admin"), json={
            "step": "3.2.2", "records": [{"student": "1449900000018", "result": "promoted"}]}), 403, "forbidden")
