"""R11 "ทุกรายการ" through the API and the school's workflow, under time skipping: staff confirm each student's
existence (by class, one by one) and record the exceptions; the school confirms only when every record is marked,
the confirmation records the counts, the director reads them (R12), the marks are frozen with the roster, and a
dropout request stops blocking once its student is marked as an exception."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile

from tests.stack import HEADER, SCHOOL, keep_history, running_stack, tomorrows_round
from tests.timing import skip_to
from workflows.ids import school_round_id

A, B, C, D, E = "1449900000018", "1449900000026", "1449900000034", "1449900000042", "1449900000051"


def row(sid: str, grade: str, room: str, no: int, first: str) -> str:
    return f"{SCHOOL},โรงเรียน,{sid},{grade},{room},{no},ช,เด็กชาย,{first},ทดสอบ,01/01/2555,ใช่\n"


async def test_r11_every_record_before_confirming_counts_recorded_marks_frozen_and_a_dropout_excused(
        time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _, confirm_from, _ = await tomorrows_round(stack)
        staff, director, district = stack.auth("staff"), stack.auth("director"), stack.auth("district")
        url = f"/rounds/{rid}/schools/{SCHOOL}"
        marks = f"{url}/existence"
        roster = HEADER + row(A, "ม.1", "1", 1, "หนึ่ง") + row(B, "ม.1", "1", 2, "สอง") + row(C, "ม.1", "2", 3, "สาม") \
            + row(D, "ม.2", "1", 4, "สี่")
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=staff,
                                  files={"file": ("r.csv", roster.encode(), "text/csv")})
        assert r.json()["applied"] == 4, r.text
        r = await stack.http.post(f"{url}/end-of-year", headers=staff, json={"step": "3.2.2", "records": [
            {"student": s, "result": "promoted"} for s in (A, B, C, D)]})
        assert r.json()["gate"]["complete"], r.text

        # by class: ม.1 room 1 only
        r = await stack.http.post(f"{marks}/present", headers=staff, json={"grade": "ม.1", "classroom": "1"})
        assert r.status_code == 200 and r.json()["applied"] == 2, r.text
        assert r.json()["gate"]["existence"]["unmarked"] == 2
        r = await stack.http.post(f"{marks}/present", headers=staff, json={"all": True, "grade": "ม.1"})
        assert r.status_code == 422 and r.json()["code"] == "existence_selection", r.text
        # exceptions stand on something: a note for a student who left, an open case for the others
        r = await stack.http.post(f"{marks}/exceptions", headers=staff, json={"student": C, "kind": "transferred_out"})
        assert r.status_code == 422 and r.json()["code"] == "exception_note_required", r.text
        r = await stack.http.post(f"{marks}/exceptions", headers=staff, json={"student": D, "kind": "dropout_request"})
        assert r.status_code == 409 and r.json()["code"] == "exception_without_case", r.text
        assert r.json()["message_th"].startswith("นักเรียนคนนี้ไม่มีคำขอจำหน่ายออกกลางคัน")
        # only the school's staff mark: not its director, not an admin
        for who in ("director", "admin"):
            r = await stack.http.post(f"{marks}/present", headers=stack.auth(who), json={"all": True})
            assert r.status_code == 403, (who, r.text)

        # D's dropout request blocks the school until D is marked as an exception
        r = await stack.http.post(f"{url}/dropouts", headers=staff, data={
            "student": D, "reason": "low_income", "details": "ครอบครัวย้ายไปทำงานต่างจังหวัด"})
        assert r.status_code == 201, r.text
        request_id = r.json()["id"]
        await eventually_blocked(stack, url, request_id)

        await skip_to(stack, confirm_from)
        r = await stack.http.post(f"{url}/confirmation", headers=staff)
        assert r.status_code == 409 and r.json()["code"] == "existence_incomplete", r.text
        assert "ขาดอีก 2 คน" in r.json()["message_th"] and "2 student(s)" in r.json()["message_en"]

        r = await stack.http.post(f"{marks}/present", headers=staff, json={"students": [C]})  # one by one
        assert r.json()["applied"] == 1, r.text
        r = await stack.http.post(f"{url}/confirmation", headers=staff)
        assert r.json()["code"] == "existence_incomplete" and "ขาดอีก 1 คน" in r.json()["message_th"], r.text

        # a roster change after the marks: the new student is one more record to confirm
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=staff,
                                  files={"file": ("r.csv", (HEADER + row(E, "ม.1", "2", 5, "ห้า")).encode(), "text/csv")})
        assert r.json()["applied"] == 1 and r.json()["gate"]["existence"]["unmarked"] == 2, r.text
        await stack.http.post(f"{url}/end-of-year", headers=staff,
                              json={"step": "3.2.2", "records": [{"student": E, "result": "promoted"}]})
        r = await stack.http.post(f"{marks}/present", headers=staff, json={"all": True})
        assert r.json()["applied"] == 2 and r.json()["unchanged"] == 3, r.text  # D too: all = every unmarked one

        # D is not simply present: the school records the exception, which takes D's request off its way
        r = await stack.http.post(f"{marks}/exceptions", headers=staff, json={
            "student": D, "kind": "dropout_request", "note": "=HYPERLINK(\"http://x\") ไม่มาเรียนตั้งแต่ ก.พ."})
        assert r.status_code == 200 and r.json()["gate"]["excused_cases"] == [request_id], r.text
        view = (await stack.http.get(url, headers=staff)).json()
        [case] = view["blocking_cases"]
        assert case["ref"] == request_id and case["blocks_confirmation"] is False
        assert "ไม่ขวางการยืนยัน" in case["title_th"]
        assert view["existence"]["complete"] and view["existence"]["unmarked"] == 0

        r = await stack.http.post(f"{url}/confirmation", headers=staff)
        assert r.status_code == 200, r.text
        counts = {"students": 5, "present": 4, "exceptions": 1, "unmarked": 0,
                  "exception_kinds": {"dropout_request": 1}, "complete": True}
        assert {k: r.json()["confirmed"]["existence"][k] for k in counts} == counts

        # R12: the director reads who confirmed, when, and the counts before certifying
        view = (await stack.http.get(url, headers=director)).json()
        confirmed = view["confirmed"]
        assert confirmed["by_name"] == "ครูธุรการ" and confirmed["at"]["th"]
        assert confirmed["existence"]["summary_th"] == ("นักเรียน 5 คน มีตัวตนอยู่จริง 4 คน ข้อยกเว้น 1 คน "
                                                        "(อยู่ระหว่างขอจำหน่ายออกกลางคัน 1) ยังไม่ได้ยืนยัน 0 คน")
        audit = (await stack.http.get(f"{url}/audit", headers=director)).json()
        assert [e["after"]["existence"]["present"] for e in audit if e["action"] == "confirm"] == [4]

        # frozen with the roster while confirmed
        for path, body in (("present", {"students": [D]}), ("cleared", {"students": [A]}),
                           ("exceptions", {"student": A, "kind": "transferred_out", "note": "ย้าย"})):
            r = await stack.http.post(f"{marks}/{path}", headers=staff, json=body)
            assert r.status_code == 409 and r.json()["code"] == "roster_frozen", (path, r.text)

        # editable again after a withdrawal; the school confirms again once every record is marked again
        assert (await stack.http.delete(f"{url}/confirmation", headers=staff)).status_code == 200
        r = await stack.http.post(f"{marks}/cleared", headers=staff, json={"students": [A]})
        assert r.status_code == 200 and r.json()["applied"] == 1, r.text
        r = await stack.http.post(f"{url}/confirmation", headers=staff)
        assert r.json()["code"] == "existence_incomplete", r.text
        await stack.http.post(f"{marks}/present", headers=staff, json={"students": [A]})
        assert (await stack.http.post(f"{url}/confirmation", headers=staff)).status_code == 200

        # the district reads the marks, filtered
        r = await stack.http.get(f"{marks}?mark=exception", headers=district)
        assert r.status_code == 200, r.text
        [mark] = r.json()["marks"]
        assert (mark["student"], mark["exception_kind_th"], mark["case_ref"]) == \
            (D, "อยู่ระหว่างขอจำหน่ายออกกลางคัน", request_id)
        assert mark["marked"]["by_name"] == "ครูธุรการ"
        assert len((await stack.http.get(f"{marks}?grade=ม.1&classroom=2", headers=district)).json()["marks"]) == 2
        assert (await stack.http.get(f"{marks}?mark=unmarked", headers=district)).json()["marks"] == []

        r = await stack.http.post(f"{url}/certification", headers=director)
        assert r.status_code == 200, r.text

        # the evidence pack holds every mark, inert in a spreadsheet
        r = await stack.http.get(f"{url}/evidence-pack", headers=director)
        assert r.status_code == 200, r.text
        with zipfile.ZipFile(io.BytesIO(r.content)) as z:
            name = next(n for n in z.namelist() if n.endswith("/existence-marks.csv"))
            rows = list(csv.reader(io.StringIO(z.read(name).decode("utf-8-sig"))))
        assert rows[0][:2] == ["เลขประจำตัวประชาชน/รหัส G", "เลขประจำตัวนักเรียน"] and len(rows) == 6
        by_id = {line[0]: line for line in rows[1:]}
        assert by_id[A][5] == "มีตัวตนอยู่จริง" and by_id[D][5] == "ข้อยกเว้น"
        assert by_id[D][6] == "อยู่ระหว่างขอจำหน่ายออกกลางคัน" and by_id[D][8].startswith("'=HYPERLINK")
        await keep_history(stack, school_round_id(rid, SCHOOL), "v6-r11-existence-marks")


async def eventually_blocked(stack, url: str, ref: str) -> None:
    """The dropout workflow tells the school's workflow in its own time (a signal): wait for the projection."""
    for _ in range(300):
        view = (await stack.http.get(url, headers=stack.auth("staff"))).json()
        if any(c["ref"] == ref for c in view["blocking_cases"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the dropout request never reached the school's workflow")
