"""An area-timed round (issue 18): the area's workflow keeps every school's reminders and cutoff, in batches.

Under time skipping, with the process in two time zones (the server's own zone must never matter): the
reminders go out once per school and instant, an uncertified school is `late` in the projection at its
cutoff with its audit event and its district's escalation, an extension moves only its own school, and an
extension after the cutoff reopens a late school, which becomes late again at its new cutoff.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncio

import pytest
from sqlmodel import select


from temporalio.api.enums.v1 import EventType

from activities import school_round as school_activities
from activities.area_round import AreaRoundActivities
from db.engine import session_scope
from tests.db_backends import BOTH_BACKENDS
from db.models import AuditEvent, OutboxMail, SchoolRound
from domain.messages import AreaInstant
from tests.stack import AREA, OTHER_AREA, OTHER_SCHOOL, SCHOOL, SCHOOL_2, add_round, keep_history, make_ready, \
    running_stack, unique_round
from tests.timing import bangkok_on_day, eventually, skip_to
from workflows.area_round import SETTLE, AreaRoundWorkflow
from workflows import search_attributes as sa
from workflows.ids import area_round_id, school_round_id


async def tomorrows_area_round(stack) -> tuple[str, datetime, datetime, datetime]:
    now = await stack.now()
    rid = unique_round()
    confirm_from, cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
    add_round(stack.engine, rid, now, confirm_from, cutoff)
    await stack.start_round(rid)  # the projection's rows and one workflow per area: no school's workflow yet
    return rid, now, confirm_from, cutoff


def rows(engine, rid: str) -> dict[str, SchoolRound]:
    with session_scope(engine) as s:
        return {r.school_code: r for r in s.exec(select(SchoolRound).where(SchoolRound.round_id == rid))}


def stage_of(engine, rid: str, school: str) -> str:
    return rows(engine, rid)[school].stage


def outbox(engine, prefix: str) -> list[OutboxMail]:
    with session_scope(engine) as s:
        return list(s.exec(select(OutboxMail).where(OutboxMail.key.startswith(prefix))))


def late_events(engine, rid: str) -> list[AuditEvent]:
    with session_scope(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.round_id == rid, AuditEvent.action == "late")))


def to(smtp, address: str) -> list:
    return [m for m in smtp.messages if address in m["To"]]


async def post(stack, rid: str, school: str, action: str, who: str) -> None:
    r = await stack.http.post(f"/rounds/{rid}/schools/{school}/{action}", headers=stack.auth(who))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)
async def test_reminders_go_once_per_school_and_instant_to_the_uncertified_only(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_area_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        await post(stack, rid, SCHOOL, "confirmation", "staff")
        await post(stack, rid, SCHOOL, "certification", "director")

        await skip_to(stack, cutoff - timedelta(hours=4, minutes=30) + timedelta(seconds=1))  # 12.00
        await eventually(lambda: len(to(smtp, "register@banthodlong.ac.th")) == 1
                         and len(to(smtp, "other@school.example")) == 1)
        await skip_to(stack, cutoff - timedelta(minutes=59))  # 15.31: the 15.30 reminders are out
        await eventually(lambda: len(to(smtp, "register@banthodlong.ac.th")) == 2
                         and len(to(smtp, "other@school.example")) == 2)
        await skip_to(stack, cutoff - timedelta(minutes=1))
        assert to(smtp, "dmc@tuayang.ac.th") == []  # certified before 12.00: never reminded
        mails = to(smtp, "register@banthodlong.ac.th")
        assert len({m["Message-ID"] for m in mails}) == 2
        keys = sorted(r.key for r in outbox(engine, f"reminder/{rid}/"))
        assert len(keys) == 4 and len({k.rsplit("/", 1)[0] for k in keys}) == 2  # two schools, two instants each
        area = stack.client.get_workflow_handle(area_round_id(rid, AREA))
        assert (await area.query(AreaRoundWorkflow.status))["reminded"] == 2  # SCHOOL_2 at 12.00 and 15.30


async def test_late_at_the_cutoff_in_bangkok_whatever_the_servers_zone(time_env, engine, settings, smtp, process_tz):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_area_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, cutoff - timedelta(minutes=10))
        await post(stack, rid, SCHOOL, "confirmation", "staff")
        await skip_to(stack, cutoff - timedelta(seconds=1))  # 16:29:59
        await post(stack, rid, SCHOOL, "certification", "director")
        # (the stage column moves with writes and the area's `late`; readers compute the others from the clock)
        assert {c: r.stage for c, r in rows(engine, rid).items()} == {
            SCHOOL: "certified", SCHOOL_2: "open", OTHER_SCHOOL: "open"}
        assert late_events(engine, rid) == []

        await skip_to(stack, cutoff + SETTLE + timedelta(seconds=1))
        await eventually(lambda: len(late_events(engine, rid)) == 2)
        projected = rows(engine, rid)
        assert {c: r.stage for c, r in projected.items()} == {
            SCHOOL: "certified", SCHOOL_2: "late", OTHER_SCHOOL: "late"}
        assert projected[SCHOOL_2].version == projected[OTHER_SCHOOL].version == 0  # the batch leaves versions alone
        events = late_events(engine, rid)
        assert {e.school_code for e in events} == {SCHOOL_2, OTHER_SCHOOL}
        assert all(e.at == cutoff for e in events)  # late at 16.30.00 Bangkok exactly, in any server zone
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL_2}/audit", headers=stack.auth("admin"))
        assert [e for e in r.json() if e["action"] == "late"], r.text

        mine = await eventually(lambda: to(smtp, "officer@sesao26.example"))
        theirs = await eventually(lambda: to(smtp, "officer@other.example"))
        body = mine[0].get_body(("plain",)).get_content()
        assert len(mine) == 1 and SCHOOL_2 in body and SCHOOL not in body.replace(SCHOOL_2, "")
        assert "16.30 น." in mine[0]["Subject"] and AREA in mine[0]["Subject"]
        assert OTHER_SCHOOL in theirs[0].get_body(("plain",)).get_content() and OTHER_AREA in theirs[0]["Subject"]

        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/confirmation", headers=stack.auth("staff2"))
        assert r.status_code == 409 and r.json()["code"] == "round_closed"
        await keep_history(stack, school_round_id(rid, SCHOOL), "v8-school_round_area_timed_local_records_certified")


async def test_a_school_extension_moves_that_school_only(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_area_round(stack)
        new_cutoff = cutoff + timedelta(hours=1)  # 17.30
        await skip_to(stack, confirm_from + timedelta(minutes=30))
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("district"),
                                  json={"school_code": SCHOOL, "cutoff_at": new_cutoff.isoformat(),
                                        "reason": "ไฟฟ้าดับทั้งตำบล"})
        assert r.status_code == 200, r.text

        await skip_to(stack, cutoff - timedelta(hours=4, minutes=29))  # 12.01: SCHOOL's first reminder is at 13.00
        await eventually(lambda: len(to(smtp, "register@banthodlong.ac.th")) == 1)
        assert to(smtp, "dmc@tuayang.ac.th") == []
        await skip_to(stack, new_cutoff - timedelta(hours=4, minutes=29))  # 13.01
        await eventually(lambda: len(to(smtp, "dmc@tuayang.ac.th")) == 1)

        await skip_to(stack, cutoff + SETTLE + timedelta(seconds=1))
        await eventually(lambda: stage_of(engine, rid, SCHOOL_2) == "late")
        assert stage_of(engine, rid, SCHOOL) == "confirmation_window"
        mine = await eventually(lambda: to(smtp, "officer@sesao26.example"))
        assert SCHOOL not in mine[0].get_body(("plain",)).get_content().replace(SCHOOL_2, "")
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.json()["code"] != "round_closed", r.text  # still open (its roster is empty: refused for that)

        await skip_to(stack, new_cutoff - timedelta(minutes=59))  # 16.31: its second reminder, an hour before
        await eventually(lambda: len(to(smtp, "dmc@tuayang.ac.th")) == 2)
        await skip_to(stack, new_cutoff + SETTLE + timedelta(seconds=1))
        await eventually(lambda: stage_of(engine, rid, SCHOOL) == "late")
        escalations = await eventually(lambda: len(to(smtp, "officer@sesao26.example")) == 2
                                       and to(smtp, "officer@sesao26.example"))
        assert "17.30 น." in escalations[1]["Subject"] and SCHOOL in escalations[1].get_body(("plain",)).get_content()
        assert len(to(smtp, "register@banthodlong.ac.th")) == 2  # the other school was reminded twice, no more
        assert {e.school_code: e.at for e in late_events(engine, rid) if e.area == AREA} == {
            SCHOOL_2: cutoff, SCHOOL: new_cutoff}


@pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)
async def test_an_extension_after_the_cutoff_reopens_a_late_school(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_area_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, cutoff + timedelta(minutes=5))
        await eventually(lambda: stage_of(engine, rid, SCHOOL) == "late")
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "round_closed"

        reopened = bangkok_on_day(await stack.now(), 16, 30)  # tomorrow 16.30, within the late grace
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("admin"),
                                  json={"school_code": SCHOOL, "cutoff_at": reopened.isoformat(), "reason": "ผ่อนผัน"})
        assert r.status_code == 200, r.text
        assert stage_of(engine, rid, SCHOOL) == "confirmation_window"  # the projection reopened with the extension
        assert rows(engine, rid)[SCHOOL].escalated_at is None
        await post(stack, rid, SCHOOL, "confirmation", "staff")
        assert stage_of(engine, rid, SCHOOL) == "confirmed"

        await skip_to(stack, reopened - timedelta(minutes=59))
        await eventually(lambda: len([m for m in to(smtp, "dmc@tuayang.ac.th")]) == 4)  # 12.00, 15.30 twice
        await skip_to(stack, reopened + SETTLE + timedelta(seconds=1))
        await eventually(lambda: stage_of(engine, rid, SCHOOL) == "late")
        escalations = await eventually(lambda: len(to(smtp, "officer@sesao26.example")) == 2
                                       and to(smtp, "officer@sesao26.example"))
        body = escalations[1].get_body(("plain",)).get_content()
        assert SCHOOL in body and SCHOOL_2 not in body  # the second cutoff concerned that school alone
        assert sorted(e.at for e in late_events(engine, rid) if e.school_code == SCHOOL) == [cutoff, reopened]
        await keep_history(stack, area_round_id(rid, AREA), "v7-area_round_reopened")
        await keep_history(stack, school_round_id(rid, SCHOOL), "v8-school_round_area_timed_local_records_reopened")


async def event_counts(stack, rid: str, school: str) -> tuple[int, int]:
    """(activity tasks scheduled, workflow tasks completed) in the school's history so far."""
    history = await stack.client.get_workflow_handle(school_round_id(rid, school)).fetch_history()
    kinds = [e.event_type for e in history.events]
    return (kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
            kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED))


async def certified_by_attributes(stack, rid: str) -> set[str]:
    described = await stack.client.get_workflow_handle(school_round_id(rid, SCHOOL)).describe()
    return {SCHOOL} if described.typed_search_attributes.get(sa.STAGE) == "certified" else set()


@pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)
async def test_a_certification_accepted_before_the_cutoff_is_never_late_whenever_its_write_lands(
        time_env, engine, settings, smtp, monkeypatch):
    """Issue 18: staff decisions are written inside their update (a local activity: no activity task, one workflow
    task). A certification is not: its acceptance is made durable first, with the DmcStage search attribute, and the
    row is written by an activity after it. The race: certified at 16:29:59, its write lands only after the area's
    16:30:02 late step. The late step asks visibility, leaves the school alone, and the school is certified, never
    late."""
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_area_round(stack)
        await make_ready(stack, rid, SCHOOL)  # its roster batches start its workflow
        await skip_to(stack, cutoff - timedelta(minutes=10))
        activities, tasks = await event_counts(stack, rid, SCHOOL)
        await post(stack, rid, SCHOOL, "confirmation", "staff")
        assert rows(engine, rid)[SCHOOL].confirmed_at is not None  # in the projection when the answer comes
        assert await event_counts(stack, rid, SCHOOL) == (activities, tasks + 1)

        area = AreaRoundActivities(engine, settings, stack.client)
        loop = asyncio.get_running_loop()

        def late_step_first(session, change):  # the area's 16:30:02 step runs while this write is on its way
            if "certified" in change.fields:  # what visibility answers the late step (the time-skipping server
                # has no list API: the school's own search attributes, upserted when the certification was accepted)
                certified = asyncio.run_coroutine_threadsafe(certified_by_attributes(stack, rid), loop).result(30)
                area._late(AreaInstant(round_id=rid, area=AREA, at=cutoff + SETTLE), certified)
            return write_change(session, change)

        write_change = school_activities.write_change
        monkeypatch.setattr(school_activities, "write_change", late_step_first)
        await skip_to(stack, cutoff - timedelta(seconds=1))  # 16:29:59
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/certification", headers=stack.auth("director"))
        assert r.status_code == 200 and r.json()["stage"] == "certified", r.text
        row = rows(engine, rid)[SCHOOL]
        assert row.stage == "certified" and row.certified_at is not None
        with session_scope(engine) as s:
            actions = list(s.exec(select(AuditEvent.action).where(
                AuditEvent.round_id == rid, AuditEvent.school_code == SCHOOL)))
        assert "certify" in actions and "late" not in actions
