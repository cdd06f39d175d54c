"""A whole dmcflow (API + worker + database + SMTP catcher) on one Temporal server, for tests."""

from __future__ import annotations

import os
import uuid
from contextlib import asynccontextmanager
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app, wall_clock
from db.directory import create_round, create_user, upsert_school
from db.engine import session_scope
from domain.rounds import RoundPolicy, RoundSpec
from dmcflow.settings import Settings
from worker import build_worker
from workflows.ids import fanout_id

AREA = "สพม.มหาสารคาม"
OTHER_AREA = "สพป.ขอนแก่น เขต 1"
SCHOOL = "1044449001"
SCHOOL_2 = "1044449002"
OTHER_SCHOOL = "1040000009"


def clock_of(env: WorkflowEnvironment | None) -> Callable[[], Awaitable[datetime]]:
    """The API's clock: the time-skipping server's, or the wall clock."""
    return env.get_current_time if env else wall_clock


@dataclass
class Stack:
    http: httpx.AsyncClient
    client: Client
    engine: object
    settings: Settings
    env: WorkflowEnvironment | None  # None: a server of the test's own
    tokens: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], Awaitable[datetime]] = wall_clock  # the API's: the time-skipping server's, or the wall clock

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def now(self) -> datetime:
        return await self.clock()

    async def start_round(self, round_id: str) -> None:
        r = await self.http.post(f"/rounds/{round_id}/start", headers=self.auth("admin"))
        assert r.status_code == 202, r.text
        await self.client.get_workflow_handle(fanout_id(round_id, "start")).result()


def seed(engine, stack_tokens: dict[str, str]) -> None:
    with session_scope(engine) as s:
        upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", AREA, ["dmc@tuayang.ac.th"])
        upsert_school(s, SCHOOL_2, "โรงเรียนบ้านทดลองศึกษา", AREA, ["register@banthodlong.ac.th"])
        upsert_school(s, OTHER_SCHOOL, "โรงเรียนอื่น", OTHER_AREA, ["other@school.example"])
        s.flush()
        for who, kw in {
            "admin": dict(role="admin", display_name="ผู้ดูแลระบบ"),
            "staff": dict(role="staff", display_name="ครูธุรการ", school_code=SCHOOL),
            "director": dict(role="director", display_name="ผอ.โรงเรียน", school_code=SCHOOL),
            "staff2": dict(role="staff", display_name="ครู 2", school_code=SCHOOL_2),
            "director2": dict(role="director", display_name="ผอ. 2", school_code=SCHOOL_2),
            "district": dict(role="district", display_name="เขต", area=AREA, email="officer@sesao26.example"),
            "other_district": dict(role="district", display_name="เขตอื่น", area=OTHER_AREA,
                                   email="officer@other.example"),
            "other_staff": dict(role="staff", display_name="ครูอื่น", school_code=OTHER_SCHOOL),
        }.items():
            _, stack_tokens[who] = create_user(s, **kw)


def add_round(engine, round_id: str, opens_at: datetime, confirm_from: datetime, cutoff_at: datetime,
              policy: RoundPolicy | None = None) -> RoundSpec:
    spec = RoundSpec(id=round_id, academic_year=2566, opens_at=opens_at, confirm_from=confirm_from,
                     cutoff_at=cutoff_at, policy=policy or RoundPolicy())
    with session_scope(engine) as s:
        create_round(s, spec)
    return spec


@asynccontextmanager
async def api_only(client: Client, engine, settings: Settings, env: WorkflowEnvironment | None = None,
                   timeout: float = 5, clock: Callable[[], Awaitable[datetime]] | None = None):
    """The API on `client`'s Temporal, with the seeded schools and users, and no worker: the test runs its own.
    Its clock is `clock`, else `env`'s."""
    tokens: dict[str, str] = {}
    seed(engine, tokens)
    clock = clock or clock_of(env)
    app = create_app(settings, engine=engine, temporal=client, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                 timeout=timeout) as http:
        yield Stack(http=http, client=client, engine=engine, settings=settings, env=env, tokens=tokens, clock=clock)


@asynccontextmanager
async def serving(client: Client, engine, settings: Settings, env: WorkflowEnvironment | None = None,
                  timeout: float = 5, clock: Callable[[], Awaitable[datetime]] | None = None):
    """The API and, in this process, the worker on `client`'s Temporal, with the seeded schools and users."""
    async with build_worker(client, settings, engine=engine), \
            api_only(client, engine, settings, env, timeout, clock) as stack:
        yield stack


def running_stack(temporal: WorkflowEnvironment | Client, engine, settings: Settings, *,
                  clock: Callable[[], Awaitable[datetime]] | None = None, timeout: float = 5):
    """The whole stack on `temporal`: a test environment (the time-skipping server, the API on its clock), or the
    client of a Temporal server of the test's own (the API on `clock`, the wall clock unless given)."""
    if isinstance(temporal, WorkflowEnvironment):
        return serving(temporal.client, engine, settings, env=temporal, timeout=timeout, clock=clock)
    return serving(temporal, engine, settings, timeout=timeout, clock=clock)


def unique_round() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


HEADER = "รหัสโรงเรียน,ชื่อโรงเรียน,เลขประจำตัวประชาชน,ชั้น,ห้อง,เลขประจำตัวนักเรียน,เพศ,คำนำหน้าชื่อ,ชื่อ,นามสกุล,วันเกิด,สอบปลายภาค\n"
READY_IDS = {SCHOOL: "1449900000018", SCHOOL_2: "1449910000096", OTHER_SCHOOL: "1449900000026"}
STAFF_OF = {SCHOOL: "staff", SCHOOL_2: "staff2", OTHER_SCHOOL: "other_staff"}


async def mark_all_present(stack: Stack, round_id: str, school: str, who: str | None = None) -> dict:
    """R11: the school's staff confirm every student not yet marked present (exceptions stay). Answers the gate."""
    r = await stack.http.post(f"/rounds/{round_id}/schools/{school}/existence/present",
                              headers=stack.auth(who or STAFF_OF[school]), json={"all": True})
    assert r.status_code == 200, r.text
    return r.json()["gate"]


async def make_ready(stack: Stack, round_id: str, school: str) -> None:
    """One promoted ม.1 student with 3.2.2 recorded and confirmed present: the school meets R10's and R11's gates."""
    sid = READY_IDS[school]
    csv = HEADER + f"{school},โรงเรียน,{sid},ม.1,1,1,ช,เด็กชาย,ทดสอบ,ระบบ,01/01/2555,ใช่\n"
    who = STAFF_OF[school]
    r = await stack.http.post(f"/rounds/{round_id}/students/import", headers=stack.auth(who),
                              files={"file": ("r.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200 and r.json()["applied"] == 1, r.text
    r = await stack.http.post(f"/rounds/{round_id}/schools/{school}/end-of-year", headers=stack.auth(who),
                              json={"step": "3.2.2", "records": [{"student": sid, "result": "promoted"}]})
    assert r.status_code == 200 and r.json()["gate"]["complete"], r.text
    assert (await mark_all_present(stack, round_id, school))["existence"]["complete"]


HISTORIES = Path(__file__).parent / "histories"


async def keep_history(stack: Stack, workflow_id: str, name: str) -> None:
    """With DMCFLOW_RECORD_HISTORIES=1, store this workflow's history for the replay tests."""
    if os.environ.get("DMCFLOW_RECORD_HISTORIES") != "1":
        return
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json(), encoding="utf-8")


async def tomorrows_round(stack: Stack, *, start: bool = True) -> tuple[str, datetime, datetime, datetime]:
    """A round like the letter's, on Temporal's tomorrow: confirmation 08.30, cutoff 16.30 (Bangkok).
    Answers (round id, now, confirm_from, cutoff)."""
    from tests.timing import bangkok_on_day

    now = await stack.now()
    rid = unique_round()
    confirm_from, cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
    add_round(stack.engine, rid, now, confirm_from, cutoff)
    if start:
        await stack.start_round(rid)
    return rid, now, confirm_from, cutoff
