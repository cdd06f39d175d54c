"""A confirmation that open cases still block names each case in Thai for the school's staff (issue 16):
the kind, the reference, the student as the school's own records hold it, and who must act; never raw codes
(`dropout:drop-1`), and never the name from another school's record in a claim (finding 3 of issue 15)."""

from __future__ import annotations

from datetime import timedelta

from tests.stack import SCHOOL, SCHOOL_2, running_stack
from tests.test_dropouts import open_round, request
from tests.test_duplicates import claim, school_view_sync, setup
from tests.timing import eventually, skip_to

OWN_PUPIL = "เด็กชายทดสอบ ระบบ"  # every ready school's student (tests/stack.py make_ready)
CLAIMED_AS = "เด็กชายชนิดา พลอยงาม"  # the names SCHOOL typed when it claimed SCHOOL_2's student


async def confirm(stack, rid, school, who) -> dict:
    r = await stack.http.post(f"/rounds/{rid}/schools/{school}/confirmation", headers=stack.auth(who))
    assert r.status_code == 409 and r.json()["code"] == "blocking_cases", r.text
    return r.json()


async def test_a_blocked_confirmation_names_the_dropout_request_its_student_and_the_district(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(hours=10), confirm_from=now + timedelta(hours=1))
        ref = (await request(stack, rid)).json()["id"]
        await skip_to(stack, now + timedelta(hours=1, minutes=1))
        body = await confirm(stack, rid, SCHOOL, "staff")
        assert f"คำขอออกกลางคัน {ref} ของ {OWN_PUPIL} (รอเขตพื้นที่พิจารณา)" in body["message_th"]
        assert body["message_th"].startswith("ยังยืนยันข้อมูลไม่ได้ มีเรื่องค้าง 1 เรื่อง")
        assert f"dropout:{ref}" not in body["message_th"] + body["message_en"]
        assert OWN_PUPIL not in body["message_en"]  # the English line is what logs show: no names
        assert body["cases"] == [{"kind": "dropout", "ref": ref}]


async def test_each_party_of_a_duplicate_case_reads_its_own_names_and_what_it_must_do(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now = await setup(stack, engine)
        case_id = await claim(stack, rid)
        await eventually(lambda: all(
            [c for c in school_view_sync(engine, rid, s) if c["ref"] == case_id] for s in (SCHOOL, SCHOOL_2)))
        await skip_to(stack, now + timedelta(hours=2, minutes=1))

        holder = await confirm(stack, rid, SCHOOL_2, "staff2")
        assert f"เรื่องนักเรียนซ้ำซ้อน {case_id} ของ {OWN_PUPIL} (รอโรงเรียนแจ้งว่านักเรียนยังเรียนอยู่" \
            in holder["message_th"]
        assert CLAIMED_AS not in holder["message_th"]

        claimant = await confirm(stack, rid, SCHOOL, "staff")
        assert f"เรื่องนักเรียนซ้ำซ้อน {case_id} ของ {CLAIMED_AS} (" in claimant["message_th"]
        assert OWN_PUPIL not in claimant["message_th"]  # nothing from the holder's record
        assert f"duplicate:{case_id}" not in claimant["message_th"] + claimant["message_en"]
