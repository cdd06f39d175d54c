"""Issue 15, finding 3: any school's staff could look up any student in the country.

Posting another school's national ID (add_student, transfer_in_student, an import) opened a duplicate case
whose listing showed the caller the student's name and the school that has them, and blocked that school.
Now a claim answers only that the district has been asked; the claimant sees nothing of the student's record
or of the holder in any read (the answer, the case list and view, evidence, its school view, its evidence
pack, its mail); the holder school is neither blocked nor told until its district opens the case; claims are
rationed per user, per school and per imported file.
"""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

from db.engine import session_scope
from db.models import SchoolRound
from tests.intake.messages import PDF, nid
from tests.stack import HEADER, SCHOOL, SCHOOL_2, add_round, make_ready, running_stack, unique_round
from tests.timing import eventually

HOLDER_ID = "1449910000096"  # SCHOOL_2's ready student (make_ready)
HELD = nid("344990000011")  # SCHOOL_2's student สมปอง ลับเฉพาะ, whom SCHOOL claims
# what the claimant must never learn: the holder school's code and name, and the holder's record of the student
SECRETS = (SCHOOL_2, "โรงเรียนบ้านทดลองศึกษา", "สมปอง", "ลับเฉพาะ", "banthodlong")
TYPED = {"prefix": "เด็กชาย", "first_name": "ชนิดา", "last_name": "พลอยงาม", "grade": "ม.1",
         "sat_final_exam_here": True}  # what the claimant typed: theirs to see


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def blocking(engine, rid: str, school: str) -> list[str]:
    with session_scope(engine) as s:
        return [c["ref"] for c in s.get(SchoolRound, (rid, school)).blocking]


def roster_csv(school: str, ids: list[str], name: str = "ทดลอง") -> bytes:
    return (HEADER + "".join(f"{school},ก,{sid},ม.1,1,{n},ช,เด็กชาย,{name}{n},นามสกุล,01/01/2555,ใช่\n"
                             for n, sid in enumerate(ids, start=1))).encode()


async def start(stack, engine) -> str:
    now = await stack.now()
    rid = unique_round()
    add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
    await stack.start_round(rid)
    await make_ready(stack, rid, SCHOOL)
    await make_ready(stack, rid, SCHOOL_2)
    return rid


def case_of(answer) -> str:
    return answer.json()["message_en"].split("duplicate case ")[1].split(" ")[0]


async def test_a_claim_shows_the_claimant_nothing_of_the_student_or_the_holder(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await start(stack, engine)
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff2"), files={
            "file": ("r.csv", (HEADER + f"{SCHOOL_2},ก,{HELD},ม.1,1,7,ช,เด็กชาย,สมปอง,ลับเฉพาะ,01/01/2555,ใช่\n").encode(),
                     "text/csv")})
        assert r.status_code == 200 and r.json()["applied"] == 1, r.text
        staff = stack.auth("staff")
        answers = [
            await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students", headers=staff,
                                  json={"student": HELD, **TYPED}),
            await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students/transfer-in", headers=staff,
                                  json={"student": HELD, "from_school": "", **TYPED}),
        ]
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=staff,
                                  files={"file": ("r.csv", roster_csv(SCHOOL, [HELD]), "text/csv")})
        assert r.status_code == 200, r.text
        [issue] = r.json()["issues"]
        answers.append(r)
        for answer in answers:  # each says the district has been asked, and names neither the student nor the holder
            assert answer.status_code in (200, 409), answer.text
            assert "the district has been asked" in answer.text and "ได้แจ้งเขตพื้นที่" in answer.text, answer.text
            assert not leaks(answer.text), answer.text
        assert issue["code"] == "active_elsewhere"
        case_id = case_of(answers[0])

        # the claimant's reads: the list, its school view, the case after opening and a holder's declaration
        await eventually(lambda: case_id in blocking(engine, rid, SCHOOL))
        assert not blocking(engine, rid, SCHOOL_2)  # a bare claim does not block the holder
        assert (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("staff2"))).json() == []
        listed = await stack.http.get(f"/rounds/{rid}/duplicates", headers=staff)
        assert [c["id"] for c in listed.json()] == [case_id] and not leaks(listed.text), listed.text
        assert (await stack.http.get(f"/rounds/{rid}/duplicates?school={SCHOOL_2}", headers=staff)).json() == []
        view = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=staff)
        assert case_id in view.text and not leaks(view.text), view.text

        # the district of the holder's area sees who claims whom, and opens the case: now the holder is blocked
        [seen] = (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("district"))).json()
        assert seen["holder_school"] == SCHOOL_2 and seen["student_name"] and seen["status"] == "claimed"
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("district"),
                                  data={"action": "open"})
        assert r.status_code == 200 and r.json()["status"] == "open", r.text
        await eventually(lambda: case_id in blocking(engine, rid, SCHOOL_2))
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("staff2"),
                                  data={"action": "present"}, files={"evidence": ("e.pdf", PDF, "application/pdf")})
        assert r.status_code == 200, r.text
        holder_sha = r.json()["declarations"][SCHOOL_2]["evidence"]
        listed = await stack.http.get(f"/rounds/{rid}/duplicates", headers=staff)
        assert not leaks(listed.text) and holder_sha not in listed.text, listed.text
        r = await stack.http.get(f"/rounds/{rid}/duplicates/{case_id}/evidence/{holder_sha}", headers=staff)
        assert r.status_code == 404, r.text

        # settled for the holder: the claimant's answer, list and evidence pack still name neither
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=staff,
                                  data={"action": "absent"})
        assert r.status_code == 200 and r.json()["status"] == "resolved" and not leaks(r.text), r.text
        assert r.json()["outcome"] == "other_school"
        pack = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/evidence-pack", headers=staff)
        assert pack.status_code == 200, pack.text
        with zipfile.ZipFile(io.BytesIO(pack.content)) as z:
            text = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if n.endswith(".csv"))
        assert case_id in text and not leaks(text)
        # and its mail: nothing of the holder in what SCHOOL's address received about the case
        await eventually(lambda: [m for m in smtp.messages if case_id in m["Subject"]
                                  and "dmc@tuayang.ac.th" in m["X-Envelope-To"]])
        mine = [m for m in smtp.messages if "dmc@tuayang.ac.th" in m["X-Envelope-To"] and case_id in m["Subject"]]
        assert mine and not any(leaks(m.get_body().get_content() + m["Subject"]) for m in mine)


async def test_claims_are_rationed_per_user_and_school_and_a_file_is_no_oracle(time_env, engine, settings):
    settings = settings.model_copy(update={"duplicate_claims_per_user": 3, "duplicate_claims_per_school": 10,
                                           "duplicate_claims_per_file": 2})
    async with running_stack(time_env, engine, settings) as stack:
        rid = await start(stack, engine)
        held = [nid(f"34499{n:07d}") for n in range(1, 5)]  # four more students of SCHOOL_2
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff2"),
                                  files={"file": ("r.csv", roster_csv(SCHOOL_2, held), "text/csv")})
        assert r.status_code == 200 and r.json()["applied"] == 4, r.text

        # one file: two claims, then every later new student is refused, held elsewhere or not
        fresh = nid("344998888881")
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                  files={"file": ("r.csv", roster_csv(SCHOOL, [*held[:3], fresh]), "text/csv")})
        assert r.status_code == 200 and r.json()["applied"] == 0, r.text
        assert [i["code"] for i in r.json()["issues"]] == ["active_elsewhere", "active_elsewhere",
                                                           "too_many_claims_in_file", "too_many_claims_in_file"]
        assert not leaks(r.text)
        listed = (await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("district"))).json()
        assert len(listed) == 2

        # the same claims again are the same cases (no new claim); the user's third claim is the last one
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students", headers=stack.auth("staff"),
                                  json={"student": held[3], **TYPED})
        assert r.status_code == 409 and r.json()["code"] == "active_elsewhere", r.text
        for sid in (HOLDER_ID, fresh):  # a claim or not: over the limit, no new student is added (no oracle)
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students", headers=stack.auth("staff"),
                                      json={"student": sid, **TYPED})
            assert r.status_code == 429 and r.json()["code"] == "too_many_claims", r.text
            assert 0 < int(r.headers["Retry-After"]) <= 86400
            assert r.json()["message_th"] and r.json()["message_en"] and not leaks(r.text)
        assert len((await stack.http.get(f"/rounds/{rid}/duplicates", headers=stack.auth("district"))).json()) == 3
