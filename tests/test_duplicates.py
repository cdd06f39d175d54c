"""R3 duplicate cases through the API, to resolution by each path, and the confirmation gate."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.db_backends import BOTH_BACKENDS
from tests.stack import (
    HEADER,
    OTHER_SCHOOL,
    SCHOOL,
    SCHOOL_2,
    add_round,
    keep_history,
    make_ready,
    running_stack,
    unique_round,
)
from tests.timing import eventually, skip_to

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SHARED_ID = "1449910000096"  # on SCHOOL_2's roster; SCHOOL tries to add the same child
CLAIM = {"student": SHARED_ID, "prefix": "เด็กชาย", "first_name": "ชนิดา", "last_name": "พลอยงาม", "grade": "ม.1",
         "sat_final_exam_here": True}


async def setup(stack, engine):
    now = await stack.now()
    rid = unique_round()
    add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
    await stack.start_round(rid)
    await make_ready(stack, rid, SCHOOL)
    await make_ready(stack, rid, SCHOOL_2)  # SCHOOL_2's ready student is SHARED_ID
    return rid, now


async def claim(stack, rid, *, open_it: bool = True) -> str:
    """SCHOOL claims SCHOOL_2's student; the district of SCHOOL_2's area opens the case (unless told not to)."""
    r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students", headers=stack.auth("staff"), json=CLAIM)
    assert r.status_code == 409 and r.json()["code"] == "active_elsewhere", r.text
    case_id = r.json()["message_en"].split("duplicate case ")[1].split(" ")[0]
    assert case_id.startswith("dup-") and case_id in r.json()["message_th"]
    if open_it:
        r = await review(stack, rid, case_id, "open")
        assert r.status_code == 200 and r.json()["status"] == "open", r.text
    return case_id


async def review(stack, rid, case_id, action, who="district", **form):
    return await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth(who),
                                 data={"action": action, **form})


async def declare(stack, rid, case_id, who, action, **form):
    files = {"evidence": ("หลักฐาน.pdf", PDF, "application/pdf")} if action == "present" else None
    return await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth(who),
                                 data={"action": action, **form}, files=files)


async def school_view(stack, rid, school, who):
    return (await stack.http.get(f"/rounds/{rid}/schools/{school}", headers=stack.auth(who))).json()


async def test_holder_says_absent_so_the_student_moves_to_the_claimant(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now = await setup(stack, engine)
        case_id = await claim(stack, rid)
        # both schools are blocked, and told by email
        await eventually(lambda: all(
            [c for c in school_view_sync(engine, rid, s) if c["ref"] == case_id] for s in (SCHOOL, SCHOOL_2)))
        await skip_to(stack, now + timedelta(hours=2, minutes=1))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/confirmation", headers=stack.auth("staff2"))
        assert r.status_code == 409 and r.json()["code"] == "blocking_cases" and case_id in r.json()["message_th"]
        view = await school_view(stack, rid, SCHOOL_2, "staff2")
        [blocking] = view["blocking_cases"]
        assert (blocking["kind"], blocking["ref"], blocking["status"]) == ("duplicate", case_id, "open")
        assert "นักเรียนซ้ำซ้อน" in blocking["title_th"] and "ทดสอบ ระบบ" in blocking["title_th"]
        # the district asked, then both schools told
        await eventually(lambda: len([m for m in smtp.messages if case_id in m["Subject"]]) == 3)

        r = await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("other_district"))
        assert r.json() == []
        r = await stack.http.get(f"/rounds/{rid}/duplicates?status=open", headers=stack.auth("staff2"))
        [case] = r.json()
        assert case["holder_school"] == SCHOOL_2 and case["claimant_school"] == SCHOOL and case["student_name"]
        [case] = (await stack.http.get(f"/rounds/{rid}/duplicates?status=open", headers=stack.auth("staff"))).json()
        assert (case["holder_school"], case["claimant_school"], case["student_name"]) == (None, SCHOOL, "")

        r = await declare(stack, rid, case_id, "other_staff", "absent")
        assert r.status_code == 404
        r = await declare(stack, rid, case_id, "staff", "present")
        assert r.status_code == 200 and r.json()["status"] == "open", r.text
        r = await declare(stack, rid, case_id, "staff", "absent")
        assert r.status_code == 409 and r.json()["code"] == "already_declared"
        r = await declare(stack, rid, case_id, "staff2", "absent", note="ย้ายไปแล้ว")
        assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["outcome"] == SCHOOL, r.text
        # the claimant is told the student is now theirs, and still nothing of the school that had them
        [case] = (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("staff"))).json()
        assert case["outcome"] == SCHOOL and case["holder_school"] is None and list(case["declarations"]) == [SCHOOL]

        await eventually(lambda: not school_view_sync(engine, rid, SCHOOL_2))
        await eventually(lambda: gate_students(engine, rid, SCHOOL) == 2 and gate_students(engine, rid, SCHOOL_2) == 0)
        await eventually(lambda: len([m for m in smtp.messages if case_id in m["Subject"]]) == 5)
        await keep_history(stack, f"duplicate/{case_id}", "v5-duplicate_case_claim_opened_resolved")
        # issue 19: the resolving declaration answered once the outcome was applied
        await keep_history(stack, f"duplicate/{case_id}", "v8-duplicate_case_answered_when_applied")


async def test_both_claim_so_the_district_decides(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await setup(stack, engine)
        case_id = await claim(stack, rid)
        r = await declare(stack, rid, case_id, "staff", "absent_typo")
        assert r.status_code == 422
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("staff"),
                                  data={"action": "present"})
        assert r.status_code == 422 and r.json()["code"] == "evidence_required"
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("staff"),
                                  data={"action": "present"},
                                  files={"evidence": ("x.pdf", b"MZ\x90\x00", "application/pdf")})
        assert r.status_code == 422 and r.json()["code"] == "evidence_type"
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("district"),
                                  data={"action": "decide", "keep_school": SCHOOL, "note": "เร็วไป"})
        assert r.status_code == 409 and r.json()["code"] == "not_for_district"
        assert (await declare(stack, rid, case_id, "staff", "present")).status_code == 200
        assert (await declare(stack, rid, case_id, "director2", "present")).status_code == 200
        await eventually(lambda: [m for m in smtp.messages if "officer@sesao26.example" in m["X-Envelope-To"]
                                  and case_id in m["Subject"]])
        # the district reads each school's evidence before deciding; others cannot
        [case] = (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("district"))).json()
        sha = case["declarations"][SCHOOL]["evidence"]
        evidence_url = f"/rounds/{rid}/duplicates/{case_id}/evidence/{sha}"
        pdf = await stack.http.get(evidence_url, headers=stack.auth("district"))
        assert pdf.status_code == 200 and pdf.content == PDF and pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["x-content-type-options"] == "nosniff"
        assert (await stack.http.get(evidence_url, headers=stack.auth("other_district"))).status_code == 404
        assert (await stack.http.get(f"/rounds/{rid}/duplicates/{case_id}/evidence/{'0' * 64}",
                                     headers=stack.auth("district"))).status_code == 404
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("district"),
                                  data={"action": "decide", "keep_school": SCHOOL_2, "note": "มีหลักฐานการสอบ"})
        assert r.status_code == 200 and r.json()["outcome"] == SCHOOL_2, r.text
        assert r.json()["decision"]["reason"] == "มีหลักฐานการสอบ"
        await eventually(lambda: gate_students(engine, rid, SCHOOL) == 1 and gate_students(engine, rid, SCHOOL_2) == 1)
        # re-importing the same claim changes nothing: the case is the same, and settled
        csv = HEADER + f"{SCHOOL},ก,{SHARED_ID},ม.1,1,1,ช,เด็กชาย,ชนิดา,พลอยงาม,10/10/2555,ใช่\n"
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                  files={"file": ("r.csv", csv.encode(), "text/csv")})
        assert [i["code"] for i in r.json()["issues"]] == ["active_elsewhere"]
        assert len((await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("admin"))).json()) == 1


async def test_affiliation_list_opens_cases_the_school_settles(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await setup(stack, engine)
        csv = ("เลขประจำตัวประชาชน,ชื่อ,นามสกุล,โรงเรียน\n"
               f"{SHARED_ID},ชนิดา,พลอยงาม,โรงเรียนเอกชน\n"
               "1-4499-00000-01-8,ทดสอบ,ระบบ,โรงเรียนเอกชน\n"
               "1449900000019,ผิด,เลข,โรงเรียนเอกชน\n"
               "3100100000006,ไม่อยู่,ในระบบ,โรงเรียนเอกชน\n")
        r = await stack.http.post(f"/rounds/{rid}/affiliation-lists", headers=stack.auth("staff"),
                                  data={"agency": "opec"}, files={"file": ("list.csv", csv.encode(), "text/csv")})
        assert r.status_code == 403
        r = await stack.http.post(f"/rounds/{rid}/affiliation-lists", headers=stack.auth("district"),
                                  data={"agency": "opec"}, files={"file": ("list.csv", csv.encode("cp874"), "text/csv")})
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["agency"] == "สช." and report["rows"] == 4 and report["matches"] == 2
        assert [i["code"] for i in report["issues"]] == ["national_id_check_digit"]
        cases = {c["holder_school"]: c["id"] for c in
                 (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("admin"))).json()}
        assert set(cases) == {SCHOOL, SCHOOL_2}

        r = await declare(stack, rid, cases[SCHOOL], "staff", "present")
        assert r.status_code == 200 and r.json()["outcome"] == SCHOOL and r.json()["status"] == "resolved"
        r = await declare(stack, rid, cases[SCHOOL_2], "staff2", "absent")
        assert r.status_code == 200 and r.json()["outcome"] == "none"
        await eventually(lambda: not school_view_sync(engine, rid, SCHOOL) and not school_view_sync(engine, rid, SCHOOL_2))
        await eventually(lambda: gate_students(engine, rid, SCHOOL) == 1 and gate_students(engine, rid, SCHOOL_2) == 0)
        again = await stack.http.post(f"/rounds/{rid}/affiliation-lists", headers=stack.auth("admin"),
                                      data={"agency": "opec"}, files={"file": ("list.csv", csv.encode(), "text/csv")})
        assert again.json()["matches"] == 1  # the student who left is no longer active; the other case is the same
        assert len((await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("admin"))).json()) == 2
        assert OTHER_SCHOOL not in {c["holder_school"] for c in
                                    (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("admin"))).json()}


def school_view_sync(engine, rid, school) -> list:
    from db.engine import session_scope
    from db.models import SchoolRound

    with session_scope(engine) as s:
        return s.get(SchoolRound, (rid, school)).blocking


def gate_students(engine, rid, school) -> int:
    """The school's gate as get_school_round shows it (the projection, refreshed when a case closes)."""
    from db.engine import session_scope
    from db.models import SchoolRound

    with session_scope(engine) as s:
        return s.get(SchoolRound, (rid, school)).gate["students"]


async def test_the_holders_district_dismisses_a_claim_and_the_holder_never_knew(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _ = await setup(stack, engine)
        case_id = await claim(stack, rid, open_it=False)
        await eventually(lambda: [c for c in school_view_sync(engine, rid, SCHOOL) if c["ref"] == case_id])
        # waiting for the district: the holder sees nothing and is not blocked; nothing can settle it yet
        assert (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("staff2"))).json() == []
        assert not school_view_sync(engine, rid, SCHOOL_2)
        r = await declare(stack, rid, case_id, "staff", "absent")
        assert r.status_code == 409 and r.json()["code"] == "case_awaiting_district", r.text
        [waiting] = (await stack.http.get(f"/rounds/{rid}/duplicates?status=claimed",
                                          headers=stack.auth("district"))).json()
        assert waiting["id"] == case_id and waiting["holder_school"] == SCHOOL_2 and waiting["student_name"]
        assert (await review(stack, rid, case_id, "dismiss", who="other_district", note="x")).status_code == 404
        assert (await review(stack, rid, case_id, "open", who="staff")).status_code == 403
        r = await review(stack, rid, case_id, "dismiss")
        assert r.status_code == 422 and r.json()["code"] == "reason_required"
        r = await review(stack, rid, case_id, "dismiss", note="เลขประจำตัวพิมพ์ผิด")
        assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["outcome"] == SCHOOL_2, r.text
        assert r.json()["decision"]["claim_dismissed"] is True
        await eventually(lambda: not school_view_sync(engine, rid, SCHOOL))
        assert gate_students(engine, rid, SCHOOL_2) == 1 and gate_students(engine, rid, SCHOOL) == 1
        assert (await review(stack, rid, case_id, "open")).json()["code"] in ("claim_not_waiting", "case_closed")
        # the claimant is told it was not opened; the holder school is told nothing, ever
        await eventually(lambda: [m for m in smtp.messages if case_id in m["Subject"] and "ไม่เปิดเรื่อง" in m["Subject"]])
        holder_mail = [m for m in smtp.messages
                       if case_id in m["Subject"] and "register@banthodlong.ac.th" in m["X-Envelope-To"]]
        assert not holder_mail
        assert (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("staff2"))).json() == []
        await keep_history(stack, f"duplicate/{case_id}", "v5-duplicate_case_claim_dismissed")


# --- issue 16: a school is never made late by someone else ---------------------------------------------

def district_mails(smtp, case_id: str) -> list:
    return [m for m in smtp.messages if "officer@sesao26.example" in m["X-Envelope-To"] and case_id in m["Subject"]]


async def test_a_present_declaration_with_evidence_unblocks_the_declaring_school_only(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now = await setup(stack, engine)
        case_id = await claim(stack, rid, open_it=False)
        await eventually(lambda: [c for c in school_view_sync(engine, rid, SCHOOL) if c["ref"] == case_id])
        # a slow district keeps no one blocked: the claimant declares its part while the claim waits
        r = await declare(stack, rid, case_id, "staff", "present", note="เรียนอยู่ ม.1/1")
        assert r.status_code == 200 and r.json()["status"] == "claimed", r.text
        await eventually(lambda: not school_view_sync(engine, rid, SCHOOL))
        assert (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("staff2"))).json() == []
        r = await review(stack, rid, case_id, "open")
        assert r.status_code == 200 and r.json()["status"] == "open", r.text
        # the holder is blocked now, and the claimant, whose part is done, is not blocked again
        await eventually(lambda: [c for c in school_view_sync(engine, rid, SCHOOL_2) if c["ref"] == case_id])
        assert not school_view_sync(engine, rid, SCHOOL)
        await skip_to(stack, now + timedelta(hours=2, minutes=1))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/confirmation", headers=stack.auth("staff2"))
        assert r.status_code == 409 and r.json()["code"] == "blocking_cases"
        # a present declaration needs its evidence to count as the school's part
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("staff2"),
                                  data={"action": "present"})
        assert r.status_code == 422 and r.json()["code"] == "evidence_required"
        assert (await declare(stack, rid, case_id, "director2", "present")).status_code == 200
        await eventually(lambda: not school_view_sync(engine, rid, SCHOOL_2))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/confirmation", headers=stack.auth("staff2"))
        assert r.status_code == 200, r.text
        # both claim the student: the case is the district's, still open, and the rosters are as they were
        [case] = (await stack.http.get(f"/rounds/{rid}/duplicates?status=at_district",
                                       headers=stack.auth("district"))).json()
        assert case["id"] == case_id and case["outcome"] is None
        assert gate_students(engine, rid, SCHOOL) == 1 and gate_students(engine, rid, SCHOOL_2) == 1
        await keep_history(stack, f"duplicate/{case_id}", "v6-duplicate_case_present_unblocks")


async def test_a_case_open_at_the_cutoff_goes_to_the_district_and_neither_school_is_late(
        time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now = await setup(stack, engine)
        cutoff = now + timedelta(hours=8)
        case_id = await claim(stack, rid)
        await eventually(lambda: all([c for c in school_view_sync(engine, rid, s) if c["ref"] == case_id]
                                     for s in (SCHOOL, SCHOOL_2)))
        # the claimant declares; the holder does not: only the holder stays blocked
        assert (await declare(stack, rid, case_id, "staff", "present", note="มีใบสมัครเรียน")).status_code == 200
        await eventually(lambda: not school_view_sync(engine, rid, SCHOOL))
        await skip_to(stack, now + timedelta(hours=2, minutes=1))
        for staff, director, school in (("staff", "director", SCHOOL),):
            r = await stack.http.post(f"/rounds/{rid}/schools/{school}/confirmation", headers=stack.auth(staff))
            assert r.status_code == 200, r.text
            r = await stack.http.post(f"/rounds/{rid}/schools/{school}/certification", headers=stack.auth(director))
            assert r.status_code == 200, r.text
        # before the cutoff the district cannot decide on one school's claim, and is not told yet
        r = await review(stack, rid, case_id, "decide", keep_school=SCHOOL, note="เร็วไป")
        assert r.status_code == 409 and r.json()["code"] == "not_for_district"
        assert not [m for m in district_mails(smtp, case_id) if "พ้นกำหนดส่ง" in m["Subject"]]

        await skip_to(stack, cutoff + timedelta(minutes=1))
        await eventually(lambda: [m for m in district_mails(smtp, case_id) if "พ้นกำหนดส่ง" in m["Subject"]])
        [mail] = [m for m in district_mails(smtp, case_id) if "พ้นกำหนดส่ง" in m["Subject"]]
        body = mail.get_content()
        assert f"({SCHOOL}): ยืนยันว่านักเรียนเรียนอยู่ที่โรงเรียน (แนบหลักฐาน) หมายเหตุ: มีใบสมัครเรียน" in body
        assert f"({SCHOOL_2}): ไม่ได้แจ้ง" in body
        [case] = (await stack.http.get(f"/rounds/{rid}/duplicates?status=at_district",
                                       headers=stack.auth("district"))).json()
        assert case["id"] == case_id and list(case["declarations"]) == [SCHOOL]
        audit = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/audit", headers=stack.auth("district"))).json()
        assert "duplicate_to_district" in [a["action"] for a in audit]
        # the claimant certified in time: the case did not make it late
        assert (await school_view(stack, rid, SCHOOL, "staff"))["stage"] == "certified"
        # the district decides on what was declared
        r = await review(stack, rid, case_id, "decide", keep_school=SCHOOL_2, note="โรงเรียนเดิมมีผลสอบปลายภาค")
        assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["outcome"] == SCHOOL_2, r.text
        await keep_history(stack, f"duplicate/{case_id}", "v6-duplicate_case_cutoff_to_district")
