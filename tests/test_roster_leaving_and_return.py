"""Issue 16: how a student leaves a school's roster and how one comes back, through the API and the school's workflow.

R7's transfer out works for a student who left before the final exam (the round's exam date is round data); staff
set no status the letter does not give a school (removal is the district's, with its reason); and a student comes
back onto a roster only through the admission rules, never by an import flipping the status back.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError

from api.workflow_updates import refusal_from_update_failure
from db.engine import session_scope
from db.models import DuplicateCase, Round, Student
from domain.messages import ApplyRosterBatch
from domain.school_round import Actor
from domain.thai_time import BANGKOK, thai_date
from tests.stack import AREA, HEADER, SCHOOL, SCHOOL_2, add_round, keep_history, running_stack, unique_round
from workflows.ids import school_round_id
from workflows.school_round import SchoolRoundWorkflow

PUPIL, OTHER, THIRD = "1449900000018", "1449900000034", "1449900000042"
ROWS = {PUPIL: "ปวีณา", OTHER: "สมชาย", THIRD: "มานี"}


def export(*ids: str) -> str:
    return HEADER + "".join(f"{SCHOOL},ก,{sid},ม.2,1,1,ช,เด็กชาย,{ROWS[sid]},พลอยงาม,02/02/2555,ใช่\n" for sid in ids)


async def import_rows(stack, rid: str, who: str, *ids: str) -> dict:
    r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth(who),
                              files={"file": ("r.csv", export(*ids).encode(), "text/csv")})
    assert r.status_code == 200, r.text
    return r.json()


async def open_round(stack, engine, exam_days_ago: int | None = None) -> tuple[str, date]:
    """A started round with PUPIL, OTHER and THIRD on SCHOOL's roster; answers the round and today (Bangkok)."""
    now = await stack.now()
    rid = unique_round()
    add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
    today = now.astimezone(BANGKOK).date()
    if exam_days_ago is not None:
        with session_scope(engine) as s:
            s.get(Round, rid).final_exam_on = today - timedelta(days=exam_days_ago)
    await stack.start_round(rid)
    assert (await import_rows(stack, rid, "admin", PUPIL, OTHER, THIRD))["applied"] == 3
    return rid, today


def base(rid: str, school: str = SCHOOL) -> str:
    return f"/rounds/{rid}/schools/{school}"


def student(engine, sid: str, school: str = SCHOOL) -> Student:
    with session_scope(engine) as s:
        row = s.exec(select(Student).where(Student.school_code == school, Student.student_id == sid)).one()
        s.expunge(row)
        return row


async def test_r7_the_final_exam_date_is_round_data_set_when_the_round_is_created(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        body = {"id": unique_round(), "academic_year": 2566, "opens_at": "2024-03-01T00:00:00",
                "confirm_from": "2024-04-30T08:30:00", "cutoff_at": "2024-04-30T16:30:00"}
        r = await stack.http.post("/rounds", headers=stack.auth("admin"), json={**body, "final_exam_on": "2024-03-15"})
        assert r.status_code == 201 and r.json()["final_exam_on"] == "2024-03-15", r.text
        r = await stack.http.post("/rounds", headers=stack.auth("admin"), json={**body, "id": unique_round()})
        assert r.json()["final_exam_on"] == "2024-03-01", r.text  # not given: the round's opening day
        r = await stack.http.post("/rounds", headers=stack.auth("admin"),
                                  json={**body, "id": unique_round(), "final_exam_on": "2024-05-01"})
        assert r.status_code == 422 and r.json()["code"] == "round_invalid", r.text


async def test_r7_a_student_who_left_before_the_exam_is_transferred_out_with_the_day_they_left(
        time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, today = await open_round(stack, engine)  # the round does not say: its exam date is its opening day
        staff, url = stack.auth("staff"), f"{base(rid)}/students/transfer-out"
        # no day: the roster says the student sat the exam here, and the rule's reason says what to give
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "to_school": "ที่อื่น"})
        assert r.status_code == 422 and r.json()["code"] == "r7_sat_final_exam", r.text
        assert r.json()["message_th"].startswith("ย้ายออกไม่ได้") and thai_date(today) in r.json()["message_th"]
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "left_on": str(today + timedelta(days=1))})
        assert r.status_code == 422 and r.json()["code"] == "left_on_in_future", r.text
        assert student(engine, PUPIL).status == "studying"
        left = today - timedelta(days=20)
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "left_on": str(left), "to_school": "ที่อื่น"})
        assert r.status_code == 200 and r.json()["gate"]["students"] == 2, r.text
        pupil = student(engine, PUPIL)
        assert (pupil.status, pupil.sat_final_exam, pupil.left_on) == ("transferred_out", False, left)
        audit = (await stack.http.get(f"{base(rid)}/audit", headers=staff)).json()
        out = [e for e in audit if e["action"] == "transfer_out_student"][0]
        assert out["after"]["left_on"] == str(left) and out["after"]["status"] == "transferred_out"

        # an old export does not bring them back; a transfer in (they returned and sat the exam here) does
        report = await import_rows(stack, rid, "staff", PUPIL)
        assert [i["code"] for i in report["issues"]] == ["r7_left_before_exam"], report
        assert student(engine, PUPIL).status == "transferred_out"
        r = await stack.http.post(f"{base(rid)}/students/transfer-in", headers=staff, json={
            "student": PUPIL, "first_name": "ปวีณา", "last_name": "พลอยงาม", "grade": "ม.2", "sat_final_exam_here": True})
        assert r.status_code == 200 and r.json()["gate"]["students"] == 3, r.text
        pupil = student(engine, PUPIL)
        assert (pupil.status, pupil.sat_final_exam, pupil.left_on) == ("studying", True, None)


async def test_r7_a_student_who_left_after_the_rounds_exam_date_sat_it_here_and_stays(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, today = await open_round(stack, engine, exam_days_ago=10)
        exam = today - timedelta(days=10)
        staff, url = stack.auth("staff"), f"{base(rid)}/students/transfer-out"
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "left_on": str(exam + timedelta(days=1))})
        assert r.status_code == 422 and r.json()["code"] == "r7_sat_final_exam", r.text
        assert thai_date(exam) in r.json()["message_th"] and "(ข้อ 7)" in r.json()["message_th"]
        assert student(engine, PUPIL).status == "studying"
        # left on the exam's day: did not sit it here
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "left_on": str(exam)})
        assert r.status_code == 200 and r.json()["gate"]["students"] == 2, r.text


async def test_staff_set_no_status_the_letter_does_not_give_a_school_removal_is_the_districts(
        time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await open_round(stack, engine)
        staff, url = stack.auth("staff"), f"{base(rid)}/students/status"
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "status": "removed", "note": "เลขผิด"})
        assert r.status_code == 403 and r.json()["code"] == "removal_is_district", r.text
        assert r.json()["message_th"].startswith("การลบนักเรียนออกจากทะเบียนเป็นอำนาจของเขตพื้นที่")
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "status": "deceased"})
        assert r.status_code == 422 and r.json()["code"] == "status_note_required", r.text
        assert student(engine, PUPIL).status == "studying"

        remove = f"{base(rid)}/students/remove"
        for who in ("staff", "director", "other_district"):
            r = await stack.http.post(remove, headers=stack.auth(who), json={"student": PUPIL, "reason": "ซ้ำ"})
            assert r.status_code == 403, (who, r.text)
        r = await stack.http.post(remove, headers=stack.auth("district"), json={"student": PUPIL, "reason": "   "})
        assert r.status_code == 422 and r.json()["code"] == "removal_reason_required", r.text
        assert student(engine, PUPIL).status == "studying"
        reason = "เลขประจำตัวประชาชนเดิมก่อนแก้ไข ซ้ำกับนักเรียนคนเดียวกัน"
        r = await stack.http.post(remove, headers=stack.auth("district"), json={"student": PUPIL, "reason": reason})
        assert r.status_code == 200 and r.json()["gate"]["students"] == 2, r.text
        assert student(engine, PUPIL).status == "removed"
        audit = (await stack.http.get(f"{base(rid)}/audit", headers=stack.auth("district"))).json()
        removal = [e for e in audit if e["action"] == "remove_student"][0]
        assert removal["reason"] == reason and removal["actor_name"] == "เขต" and removal["after"]["status"] == "removed"
        r = await stack.http.post(remove, headers=stack.auth("admin"), json={"student": PUPIL, "reason": "อีกครั้ง"})
        assert r.status_code == 409 and r.json()["code"] == "already_removed", r.text
        await keep_history(stack, school_round_id(rid, SCHOOL), "v6-school_round_district_removal")

        # and the school cannot undo it: not by status, not by adding the student, not by an import
        r = await stack.http.post(url, headers=staff, json={"student": PUPIL, "status": "studying"})
        assert r.status_code == 409 and r.json()["code"] == "reactivate_by_admission", r.text
        r = await stack.http.post(f"{base(rid)}/students", headers=staff, json={
            "student": PUPIL, "first_name": "ปวีณา", "last_name": "พลอยงาม", "grade": "ม.2", "sat_final_exam_here": True})
        assert r.status_code == 409 and r.json()["code"] == "removed_by_district", r.text
        report = await import_rows(stack, rid, "staff", PUPIL)
        assert [i["code"] for i in report["issues"]] == ["removed_by_district"], report
        assert student(engine, PUPIL).status == "removed"


async def test_the_school_workflow_takes_a_removal_from_the_district_and_nothing_else(time_env, engine, settings):
    """The workflow is the trust boundary: a district actor's batch of another kind, or a school's removal, is
    refused there whatever the API does."""
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await open_round(stack, engine)
        handle = stack.client.get_workflow_handle(school_round_id(rid, SCHOOL))
        district = Actor(user_id="u-district", role="district", area=AREA)
        staff = Actor(user_id="u-staff", role="staff", school_code=SCHOOL, area=AREA)
        for kind, actor in (("student", district), ("import", district), ("removal", staff)):
            with pytest.raises(WorkflowUpdateFailedError) as refused:  # the validator's refusal: nothing applied
                await handle.execute_update(SchoolRoundWorkflow.apply_roster_batch,
                                            ApplyRosterBatch(batch_id="b-none", kind=kind, actor=actor))
            assert refusal_from_update_failure(refused.value).code == "forbidden", (kind, actor.role)


async def test_a_return_to_the_roster_goes_through_the_admission_rules(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await open_round(stack, engine)
        staff = stack.auth("staff")
        # a death is recorded with its evidence, and a re-import does not bring the student back
        r = await stack.http.post(f"{base(rid)}/students/status", headers=staff,
                                  json={"student": PUPIL, "status": "deceased", "note": "ใบมรณบัตรเลขที่ 123/2567"})
        assert r.status_code == 200 and r.json()["gate"]["students"] == 2, r.text
        # R8: a dropout the district approved stays out
        with session_scope(engine) as s:
            s.exec(select(Student).where(Student.student_id == OTHER)).one().status = "dropped_out"
        # a student who lost a duplicate case: gone from here, active at SCHOOL_2
        with session_scope(engine) as s:
            lost = s.exec(select(Student).where(Student.student_id == THIRD)).one()
            lost.status = "transferred_out"
            s.add(Student(school_code=SCHOOL_2, student_id=THIRD, first_name="มานี", last_name="พลอยงาม", grade="ม.2"))

        report = await import_rows(stack, rid, "staff", PUPIL, OTHER, THIRD)
        assert report["applied"] == 0, report
        codes = {i["value"]: i["code"] for i in report["issues"]}
        assert codes == {PUPIL: "student_deceased", OTHER: "r8_dropped_out", THIRD: "active_elsewhere"}, report
        assert [student(engine, sid).status for sid in (PUPIL, OTHER, THIRD)] == [
            "deceased", "dropped_out", "transferred_out"]
        assert student(engine, THIRD, SCHOOL_2).status == "studying"  # never active at both schools
        with session_scope(engine) as s:  # R3: the return became a claim for the holder's district
            case = s.exec(select(DuplicateCase).where(DuplicateCase.student_id == THIRD)).one()
            assert (case.status, case.holder_school, case.claimant_school) == ("claimed", SCHOOL_2, SCHOOL)

        # the same rules for the admission operations
        new = {"first_name": "ก", "last_name": "ข", "grade": "ม.2", "sat_final_exam_here": True}
        for sid, code in ((PUPIL, "student_deceased"), (OTHER, "r8_dropped_out"), (THIRD, "active_elsewhere")):
            r = await stack.http.post(f"{base(rid)}/students/transfer-in", headers=staff, json={**new, "student": sid})
            assert r.json().get("code") == code, (sid, r.text)
        assert (await stack.http.get(f"{base(rid)}", headers=staff)).json()["gate"]["students"] == 0
