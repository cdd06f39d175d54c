"""The window's edges, the cutoff, escalation and deadline extensions, under time skipping.

Each boundary is checked with the process in two time zones: the server's own zone must never matter.
"""

from __future__ import annotations

from datetime import datetime, timedelta


from tests.stack import (
    tomorrows_round,
    AREA, OTHER_SCHOOL, SCHOOL, SCHOOL_2, keep_history, make_ready, running_stack,
)
from workflows.ids import area_cutoff_id, fanout_id
from tests.timing import bangkok_on_day, eventually, skip_to


def url(rid: str, school: str) -> str:
    return f"/rounds/{rid}/schools/{school}"


async def test_window_edges_to_the_second(time_env, engine, settings, process_tz):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await make_ready(stack, rid, SCHOOL_2)

        await skip_to(stack, confirm_from - timedelta(seconds=1))  # 08:29:59
        r = await stack.http.post(f"{url(rid, SCHOOL)}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "window_not_open"

        await skip_to(stack, confirm_from)  # 08:30:00
        r = await stack.http.post(f"{url(rid, SCHOOL)}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200 and r.json()["stage"] == "confirmed", r.text
        r = await stack.http.post(f"{url(rid, SCHOOL_2)}/confirmation", headers=stack.auth("staff2"))
        assert r.status_code == 200

        await skip_to(stack, cutoff - timedelta(seconds=1))  # 16:29:59
        r = await stack.http.post(f"{url(rid, SCHOOL)}/certification", headers=stack.auth("director"))
        assert r.status_code == 200 and r.json()["stage"] == "certified", r.text
        assert r.json()["certified"]["at"]["th"].endswith("16.29 น.")

        await skip_to(stack, cutoff)  # 16:30:00
        r = await stack.http.post(f"{url(rid, SCHOOL_2)}/certification", headers=stack.auth("director2"))
        assert r.status_code == 409 and r.json()["code"] in ("round_closed", "round_finished"), r.text
        assert r.json()["message_th"] and r.json()["message_en"]
        r = await stack.http.get(url(rid, SCHOOL_2), headers=stack.auth("staff2"))
        assert r.json()["stage"] == "late"
        r = await stack.http.get(url(rid, SCHOOL), headers=stack.auth("staff"))
        assert r.json()["stage"] == "certified"


async def test_cutoff_escalates_late_schools_to_their_own_district(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        assert (await stack.http.post(f"{url(rid, SCHOOL)}/confirmation", headers=stack.auth("staff"))).status_code == 200
        assert (await stack.http.post(f"{url(rid, SCHOOL)}/certification",
                                      headers=stack.auth("director"))).status_code == 200

        await skip_to(stack, cutoff + timedelta(minutes=2))
        mine = await eventually(lambda: [m for m in smtp.messages if "officer@sesao26.example" in m["To"]])
        theirs = await eventually(lambda: [m for m in smtp.messages if "officer@other.example" in m["To"]])
        body = mine[0].get_body(("plain",)).get_content()
        assert len(mine) == 1 and SCHOOL_2 in body and SCHOOL not in body.replace(SCHOOL_2, "")
        assert "16.30 น." in mine[0]["Subject"] and AREA in mine[0]["Subject"]
        assert OTHER_SCHOOL in theirs[0].get_body(("plain",)).get_content()
        # reminders went to the uncertified schools only: two each (12.00 and 15.30), none to the certified one
        to_school_2 = [m for m in smtp.messages if "register@banthodlong.ac.th" in m["To"]]
        assert len(to_school_2) == 2
        assert not [m for m in smtp.messages if "dmc@tuayang.ac.th" in m["To"]]
        r = await stack.http.get(url(rid, SCHOOL_2), headers=stack.auth("district"))
        assert r.json()["stage"] == "late"
        await keep_history(stack, area_cutoff_id(rid, AREA), "area_cutoff_escalated")
        await keep_history(stack, fanout_id(rid, "start"), "round_fanout_start")
        await keep_history(stack, f"school-round/{rid}/{SCHOOL_2}", "school_round_late")


async def test_school_extension_rearms_timers_and_is_audited(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        new_cutoff = bangkok_on_day(now, 16, 30, days=2)
        await skip_to(stack, confirm_from + timedelta(minutes=30))

        body = {"school_code": SCHOOL, "cutoff_at": new_cutoff.replace(tzinfo=None).isoformat(),
                "reason": "หนังสือ สพฐ. ขยายเวลา"}
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("other_district"),
                                  json=body)
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("district"), json=body)
        assert r.status_code == 200, r.text
        assert r.json()["cutoff_at"]["th"].endswith("16.30 น.")

        await skip_to(stack, cutoff + timedelta(minutes=2))
        r = await stack.http.get(url(rid, SCHOOL), headers=stack.auth("staff"))
        assert r.json()["stage"] == "confirmation_window"
        assert datetime.fromisoformat(r.json()["cutoff_at"]["iso"]) == new_cutoff
        to_school = lambda: [m for m in smtp.messages if "dmc@tuayang.ac.th" in m["To"]]  # noqa: E731
        assert to_school() == []  # the old 12.00 and 15.30 reminders were re-armed, not sent

        await skip_to(stack, new_cutoff - timedelta(hours=4, minutes=29))
        await eventually(lambda: len(to_school()) == 1)
        await skip_to(stack, new_cutoff + timedelta(minutes=2))
        r = await stack.http.get(url(rid, SCHOOL), headers=stack.auth("staff"))
        assert r.json()["stage"] == "late"
        await eventually(lambda: any(SCHOOL in m.get_body(("plain",)).get_content() for m in smtp.messages
                                     if "officer@sesao26.example" in m["To"]))

        r = await stack.http.get(f"{url(rid, SCHOOL)}/audit", headers=stack.auth("admin"))
        moves = [e for e in r.json() if e["action"] == "extend_deadline"]
        assert len(moves) == 1 and moves[0]["reason"] == "หนังสือ สพฐ. ขยายเวลา" and moves[0]["actor"]

        # after the cutoff an extension reopens a late school, and confirmation works again
        await make_ready_late_refused(stack, rid)
        later = bangkok_on_day(await stack.now(), 16, 30)
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("admin"),
                                  json={"school_code": SCHOOL, "cutoff_at": later.isoformat(), "reason": "ผ่อนผัน"})
        assert r.status_code == 200, r.text
        r = await stack.http.get(url(rid, SCHOOL), headers=stack.auth("staff"))
        assert r.json()["stage"] == "confirmation_window"
        await keep_history(stack, f"school-round/{rid}/{SCHOOL}", "v5-school_round_extended_late_reopened")


async def test_a_reminder_that_falls_due_while_another_is_retried_is_still_sent(time_env, engine, settings, smtp):
    """SMTP is down from before 12.00 until 15.35: the 12.00 reminder is retried until then, and the 15.30
    one, due meanwhile, goes out right after it (it used to be dropped: the loop slept until the cutoff)."""
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        to_school_2 = lambda: [m for m in smtp.messages if "register@banthodlong.ac.th" in m["To"]]  # noqa: E731
        await skip_to(stack, cutoff - timedelta(hours=4, minutes=40))
        smtp.down()
        await skip_to(stack, cutoff - timedelta(minutes=55))  # 15.35: the mail retries every 5 minutes at most
        smtp.up()
        await skip_to(stack, cutoff - timedelta(minutes=40))
        sent = await eventually(lambda: len(to_school_2()) == 2 and to_school_2())
        assert len({m["Message-ID"] for m in sent}) == 2
        await skip_to(stack, cutoff + timedelta(minutes=2))
        assert len(to_school_2()) == 2
        r = await stack.http.get(url(rid, SCHOOL_2), headers=stack.auth("staff2"))
        assert r.json()["stage"] == "late"


async def make_ready_late_refused(stack, rid: str) -> None:
    r = await stack.http.post(f"{url(rid, SCHOOL)}/confirmation", headers=stack.auth("staff"))
    assert r.status_code == 409 and r.json()["code"] == "round_closed"


async def test_area_extension_moves_every_school_of_the_area_only(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        new_cutoff = bangkok_on_day(now, 12, 0, days=3)

        body = {"area": AREA, "cutoff_at": new_cutoff.isoformat(), "reason": "น้ำท่วม"}
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("other_district"),
                                  json=body)
        assert r.status_code == 403
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("district"), json=body)
        assert r.status_code == 200 and r.json()["operation_id"], r.text
        await stack.client.get_workflow_handle(r.json()["operation_id"]).result()
        await keep_history(stack, r.json()["operation_id"], "v5-round_fanout_area_extension")

        for school, who in [(SCHOOL, "staff"), (SCHOOL_2, "staff2")]:
            r = await stack.http.get(url(rid, school), headers=stack.auth(who))
            assert r.json()["cutoff_at"]["th"].endswith("12.00 น."), r.text
        r = await stack.http.get(url(rid, OTHER_SCHOOL), headers=stack.auth("other_staff"))
        assert r.json()["cutoff_at"]["th"].endswith("16.30 น.")

        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("district"),
                                  json={"cutoff_at": new_cutoff.isoformat(), "reason": "ทั้งรอบ"})
        assert r.status_code == 403  # a whole round is the administrator's
