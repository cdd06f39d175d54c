"""Issue 16's rules of ID corrections as a school clerk and a district officer live them: the reply shows the
refused number and why, the officer sees flags, an extension of the school keeps its requests open, and an
approval after certification waits for the next round's roster."""

from __future__ import annotations

from datetime import datetime, timedelta

from db.engine import session_scope
from db.models import AuditEvent, DeferredRosterChange, IdCorrection, Student
from intake.pipeline import Intake
from tests.intake.env import body, replies
from tests.intake.messages import block, build, dkim_dns, letter
from tests.stack import SCHOOL, add_round, keep_history, make_ready, running_stack, tomorrows_round, unique_round
from tests.timing import eventually, skip_to


def officer_mail(smtp, ref: str) -> list:
    return [m for m in smtp.messages if ref in m["Subject"] and m["Subject"].startswith("[DMC] คำขอแก้ไข")]


async def test_the_reply_shows_the_refused_new_id_as_digits_and_why(intake_env, smtp):
    raw = build(letter(block(old="1449900000018", new="๑-4499-09000-01-2"),
                       block(old="1449900000026", new="1449909000029 (ตามบัตร)")), message_id="<digits@mail.example>")
    await intake_env.send(raw)
    [reply] = await eventually(lambda: replies(smtp, "<digits@mail.example>"))
    thai, english = body(reply).split("--\n")
    assert "เลขเดิม 1449900000018 เป็น 1449909000012" in thai and "เป็น -" not in thai
    assert "หลักตรวจสอบไม่ตรง" in thai and "ต้องมี 13 หลัก" in thai  # why, in Thai first
    assert "เลขเดิม 1449900000026 เป็น 1449909000029\n" in thai  # digits only: nothing else the sender typed
    assert "ตามบัตร" not in body(reply)
    assert "new ID as sent: 1449909000012" in english and "New ID: The national ID's check digit is wrong" in english
    assert " id" not in english.replace("ID-correction", "")


async def test_the_officer_sees_a_name_not_on_the_roster_and_a_new_id_asked_twice_and_may_still_approve(
        intake_env, engine, smtp):
    stack = intake_env.stack
    await intake_env.send(build(letter(block(old="1449900000018", name="ด.ช. ปวีณา พลอยงาม", new="1449909000011")),
                                message_id="<first@mail.example>"))
    await intake_env.send(build(letter(block(old="1449900000026", name="สมศรี มีสุข", new="1449909000011")),
                                message_id="<second@mail.example>"))
    items = await eventually(lambda: len(pending(engine)) == 2 and pending(engine))
    listed = {i["old_id"]: i for i in (await stack.http.get("/id-corrections?status=pending",
                                                              headers=stack.auth("district"))).json()}
    first, second = listed["1449900000018"], listed["1449900000026"]
    assert [f["code"] for f in first["flags"]] == ["new_id_pending_elsewhere"]  # the roster's name, titled: no flag
    assert second["ref"] in first["flags"][0]["message_th"]
    assert [f["code"] for f in second["flags"]] == ["name_mismatch", "new_id_pending_elsewhere"]
    detail = (await stack.http.get(f"/id-corrections/{second['ref']}", headers=stack.auth("district"))).json()
    assert detail["flags"] == second["flags"] and detail["flags"][0]["message_th"].startswith("ชื่อ-สกุลในอีเมลไม่ตรง")
    staff_view = (await stack.http.get("/id-corrections", headers=stack.auth("staff"))).json()
    assert all(i["flags"] == [] for i in staff_view)  # the deciding officer's, not the school's
    assert len(items) == 2

    r = await stack.http.post(f"/id-corrections/{second['ref']}/decision", headers=stack.auth("district"),
                              json={"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    with session_scope(engine) as s:
        audit = s.exec(AuditEvent.__table__.select().where(AuditEvent.key == f"idc/{second['ref']}")).first()
    assert audit.after["flags"] == ["name_mismatch", "new_id_pending_elsewhere"]  # approved with the flags shown
    r = await stack.http.get(f"/id-corrections/{first['ref']}", headers=stack.auth("district"))
    assert r.json()["flags"] == []  # the other request is settled: nothing pending asks for that ID any more


def pending(engine) -> list[str]:
    with session_scope(engine) as s:
        return [r.id for r in s.exec(IdCorrection.__table__.select().where(IdCorrection.status == "pending"))]


async def test_an_extension_of_the_school_keeps_its_pending_corrections_open_until_the_new_cutoff(intake_env, smtp):
    stack = intake_env.stack
    await intake_env.send(build(letter(block(old="1449900000018", new="1449909000011"),
                                       block(old="1449900000026", new="1449909000029")),
                                message_id="<extended@mail.example>"))
    await eventually(lambda: replies(smtp, "<extended@mail.example>"))
    new_cutoff = intake_env.cutoff + timedelta(days=1)
    r = await stack.http.post(f"/rounds/{intake_env.rid}/deadline-extensions", headers=stack.auth("district"),
                              json={"cutoff_at": new_cutoff.isoformat(), "reason": "น้ำท่วม", "school_code": SCHOOL})
    assert r.status_code == 200, r.text

    await skip_to(stack, intake_env.cutoff + timedelta(minutes=1))  # the old cutoff has passed
    items = {i["old_id"]: i for i in (await stack.http.get("/id-corrections", headers=stack.auth("district"))).json()}
    assert {i["status"] for i in items.values()} == {"pending"}
    assert all(datetime.fromisoformat(i["cutoff_at"]["iso"]) == new_cutoff for i in items.values())
    ref, other = items["1449900000018"]["ref"], items["1449900000026"]["ref"]
    r = await stack.http.post(f"/id-corrections/{ref}/decision", headers=stack.auth("district"), json={"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text

    await skip_to(stack, new_cutoff + timedelta(minutes=1))
    [told] = await eventually(lambda: officer_mail(smtp, other))
    assert "หมดเวลา" in told["Subject"]
    r = await stack.http.post(f"/id-corrections/{other}/decision", headers=stack.auth("district"), json={"approve": True})
    assert r.status_code == 409 and r.json()["code"] == "already_decided"
    await keep_history(stack, f"id-correction/{other}", "v6-id_correction_follows_extension")


async def test_an_approval_after_certification_waits_for_the_next_rounds_roster(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _, confirm_from, _ = await tomorrows_round(stack)
        await make_ready(stack, rid, SCHOOL)  # student 1449900000018 on the roster
        await skip_to(stack, confirm_from + timedelta(hours=1))
        url = f"/rounds/{rid}/schools/{SCHOOL}"
        assert (await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))).status_code == 200
        assert (await stack.http.post(f"{url}/certification", headers=stack.auth("director"))).status_code == 200

        intake = Intake(engine, stack.client, settings, dnsfunc=dkim_dns)
        sha, _ = intake.admit(build(letter(block(old="1449900000018", new="1449909000011")),
                                    message_id="<certified@mail.example>"), "smtp", await stack.now())
        await intake.hand_over(sha)
        [item] = await eventually(lambda: pending_items(engine))
        r = await stack.http.post(f"/id-corrections/{item}/decision", headers=stack.auth("district"),
                                  json={"approve": True})
        assert r.status_code == 200 and r.json()["status"] == "deferred", r.text
        assert roster_ids(engine) == {"1449900000018"}  # the certified roster stays as certified

        [told] = await eventually(lambda: officer_mail(smtp, item))
        assert "มีผลรอบถัดไป" in told["Subject"] and "next round" in body(told)
        notices = await eventually(lambda: len(deferral_mail(smtp)) == 2 and deferral_mail(smtp))
        assert {m["To"] for m in notices} == {"dmc@tuayang.ac.th", "officer@sesao26.example"}
        assert all("รอบถัดไป" in body(m) for m in notices)
        assert "1449909000011" not in body(next(m for m in notices if m["To"] == "officer@sesao26.example"))
        await keep_history(stack, f"id-correction/{item}", "v6-id_correction_deferred_after_certification")

        nxt = unique_round()
        now = await stack.now()
        add_round(engine, nxt, now, now + timedelta(days=1), now + timedelta(days=2))
        await stack.start_round(nxt)
        assert roster_ids(engine) == {"1449909000011"}  # the next round begins with the change
        with session_scope(engine) as s:
            assert s.get(IdCorrection, item).status == "approved"
            change = s.get(DeferredRosterChange, f"idc/{item}")
            assert (change.status, change.applied_round_id) == ("applied", nxt)
            audit = s.exec(AuditEvent.__table__.select().where(AuditEvent.action == "id_correction_applied")).first()
            assert audit.round_id == nxt and "certified" in audit.reason


def pending_items(engine) -> list[str]:
    return pending(engine)


def roster_ids(engine) -> set[str]:
    with session_scope(engine) as s:
        return {r.student_id for r in s.exec(Student.__table__.select().where(Student.school_code == SCHOOL))}


def deferral_mail(smtp) -> list:
    return [m for m in smtp.messages if "มีผลเมื่อเริ่มรอบถัดไป" in m["Subject"]]
