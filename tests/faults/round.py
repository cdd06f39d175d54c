"""The round every fault scenario runs, and the checks that follow it.

A whole round of many schools on a real Temporal server (the wall clock: no time skipping), the worker in
a subprocess that the scenario may kill, the API and the ID-correction intake (SMTP) in the test process,
and many users acting at once: staff confirm, directors certify, schools ask for dropouts, district
officers decide them and decide the ID corrections that schools emailed. Some schools never confirm, some
never certify, some requests stay undecided until the cutoff. `RoundRun.verify()` then checks that every
school ends in the stage its accepted decisions call for, that each accepted decision is in the
projection and the audit trail once, that the roster reflects each decided request, and that every mail
went out exactly once; it answers the figures a scenario prints and writes to tests/artifacts/.

Short form (CI) and long form (`DMCFLOW_FAULTS=long`): see `profile()`. `DMCFLOW_FAULTS_SEED` replays a
run's random choices (the seed is printed).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formataddr, formatdate
from pathlib import Path

import aiosmtplib
import httpx
from sqlalchemy import insert
from sqlmodel import select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.app import create_app
from db.directory import create_user
from db.engine import session_scope
from db.models import (
    Area, AuditEvent, DeferredRosterChange, DropoutMessage, DropoutRequest, EndOfYearRecord, ExistenceMark, IdCorrection,
    InboundMessage, OutboxMail, School, SchoolEmail, SchoolRound, Student,
)
from dmcflow.settings import Settings
from domain.dropouts import OPEN_STATUSES
from domain.messages import SchoolRoundResult
from domain.rounds import RoundPolicy
from domain.school_round import SchoolRoundState
from intake.pipeline import Intake
from intake.smtp_listener import start_listener
from tests.conftest import Catcher, free_port
from tests.intake.messages import block, build, dkim_dns, letter, nid
from tests.faults.processes import WorkerProcess
from tests.stack import add_round, unique_round
from workflows.area_round import SETTLE
from workflows.ids import area_key, area_round_id, dropout_id, fanout_id, id_correction_id, school_round_id
from workflows.school_round import SchoolRoundWorkflow

ARTIFACTS = Path(os.environ.get("DMCFLOW_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "artifacts")
INTAKE_ADDRESS = "idfix@district.example"
TRY_AGAIN = ("dropout_starting", "id_correction_starting")  # refusals that ask the user to retry in a moment


# --- the size and pace of the round -------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    form: str
    schools: int
    areas: int
    open_s: float  # round start → confirmation opens: the fan-out and the first requests
    window_s: float  # confirmation opens → cutoff
    reminder_before_s: float  # the round's one reminder, this long before the cutoff
    dropouts: int
    id_corrections: int


def long_form() -> bool:
    return os.environ.get("DMCFLOW_FAULTS", "short").strip().lower() == "long"


def profile() -> Profile:
    """Short (CI): a round of about 1.5 minutes. Long: about 5 minutes, more requests (and more faults, as
    each scenario says). DMCFLOW_FAULTS_SCHOOLS overrides the number of schools of either form."""
    if long_form():
        p = Profile("long", schools=200, areas=4, open_s=25, window_s=240, reminder_before_s=90, dropouts=30,
                    id_corrections=30)
    else:
        p = Profile("short", schools=200, areas=4, open_s=12, window_s=45, reminder_before_s=20, dropouts=16,
                    id_corrections=16)
    if os.environ.get("DMCFLOW_FAULTS_SCHOOLS"):
        n = int(os.environ["DMCFLOW_FAULTS_SCHOOLS"])
        p = Profile(p.form, n, p.areas, p.open_s, p.window_s, p.reminder_before_s, min(p.dropouts, n // 4),
                    min(p.id_corrections, n // 4))
    return p


def seeded_rng(name: str) -> tuple[random.Random, int]:
    seed = int(os.environ.get("DMCFLOW_FAULTS_SEED") or random.SystemRandom().randrange(1 << 31))
    return random.Random(f"{name}/{seed}"), seed


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


async def until(instant: datetime) -> None:
    delay = (instant - utcnow()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)  # the server runs on the wall clock: waiting is the scenario


# --- the population: schools, students with end-of-year results, users ------------------------

@dataclass
class Population:
    codes: list[str]
    area_of: dict[str, str]
    students: dict[str, list[str]]  # school → its students' IDs (synthetic, valid check digits)
    staff: dict[str, str]  # school → staff user id
    director: dict[str, str]
    district: dict[str, str]  # area → officer user id
    tokens: dict[str, str]  # "s-{code}", "d-{code}", "district:{area}", "admin" → bearer token

    def school_email(self, code: str) -> str:
        return f"dmc-{code}@school.example"


def seed_population(engine, schools: int, areas: int) -> Population:
    """Bulk inserts (as bench/harness.py): schools in areas, two students each, a staff member and a
    director a school, a district officer an area."""
    now = utcnow()
    area_names = [f"สพม.ทดสอบความทนทาน {a + 1}" for a in range(areas)]
    codes = [f"{1049000000 + i}" for i in range(schools)]
    area_of = {c: area_names[i % areas] for i, c in enumerate(codes)}
    students = {c: [nid(f"1{i:05d}{k:06d}") for k in range(2)] for i, c in enumerate(codes)}
    with session_scope(engine) as s:
        s.execute(insert(Area), [{"name": a} for a in area_names])
        s.execute(insert(School), [{"code": c, "name": f"โรงเรียนทดสอบ {c[-4:]}", "area": area_of[c], "updated_at": now}
                                   for c in codes])
        s.execute(insert(SchoolEmail), [{"school_code": c, "email": f"dmc-{c}@school.example"} for c in codes])
        s.execute(insert(Student), [
            {"school_code": c, "student_id": sid, "student_no": str(k + 1), "prefix": "เด็กชาย", "first_name": "ทดสอบ",
             "last_name": f"ระบบ{k + 1}", "gender": "ช", "grade": "ม.1", "classroom": "1", "sat_final_exam": True,
             "status": "studying", "updated_at": now}
            for c in codes for k, sid in enumerate(students[c])])
    tokens, staff, director, district = {}, {}, {}, {}
    with session_scope(engine) as s:
        for c in codes:
            user, tokens[f"s-{c}"] = create_user(s, role="staff", display_name=f"ครู {c[-4:]}", school_code=c)
            staff[c] = user.id
            user, tokens[f"d-{c}"] = create_user(s, role="director", display_name=f"ผอ. {c[-4:]}", school_code=c)
            director[c] = user.id
        for a, name in enumerate(area_names):
            user, tokens[f"district:{name}"] = create_user(s, role="district", display_name=f"เขต {a + 1}", area=name,
                                                           email=f"district-{a + 1}@area.example")
            district[name] = user.id
        _, tokens["admin"] = create_user(s, role="admin", display_name="ผู้ดูแลระบบ")
    return Population(codes, area_of, students, staff, director, district, tokens)


def seed_end_of_year(engine, round_id: str) -> None:
    """Every student promoted, menu 3.2.2 done: every school meets the R10 gate."""
    with session_scope(engine) as s:
        pks = [pk for (pk,) in s.execute(Student.__table__.select().with_only_columns(Student.id))]
        s.execute(insert(EndOfYearRecord), [{"round_id": round_id, "student_pk": pk, "result": "promoted",
                                             "years_studied": 1, "updated_by": "seed", "updated_at": utcnow()}
                                            for pk in pks])
        # R11: and every student confirmed present (before the round starts: its gate is counted then)
        s.execute(insert(ExistenceMark), [{"round_id": round_id, "student_pk": pk, "mark": "present",
                                           "marked_by": "seed", "marked_at": utcnow()} for pk in pks])


# --- what each user will do, and what they were answered ------------------------------------------

@dataclass
class Answer:
    status: int
    code: str | None = None
    retries: int = 0
    at_s: float = 0.0  # seconds after confirmation opened
    body: dict = field(default_factory=dict, repr=False)
    ambiguous: bool = False  # refused as done already after retries: an earlier try may have been taken
    tries: list = field(default_factory=list, repr=False)  # (at_s, status, code) of each try, for the problems
    asked_at_s: float = 0.0  # when the user first asked

    @property
    def accepted(self) -> bool:
        return self.status in (200, 201, 202)


@dataclass
class SchoolPlan:
    code: str
    kind: str  # certify | confirm_only | idle | blocked (its dropout request stays open)
    confirm_at: datetime
    certify_after_s: float
    confirm: Answer | None = None
    certify: Answer | None = None
    blocked: Answer | None = None  # a confirmation refused while a dropout request was open


@dataclass
class RequestPlan:
    """A dropout request (made through the API) or an ID correction (emailed to the intake)."""
    kind: str  # dropout | id_correction
    code: str
    decision: str  # approve | reject | none (left to expire at the cutoff)
    decide_at: datetime
    ref: str | None = None
    made: Answer | None = None
    decided: Answer | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expected_if_taken(self) -> str:
        return {"approve": "approved", "reject": "rejected"}.get(self.decision, "expired")

    @property
    def expected_status(self) -> str:
        """As decided if the decision was taken; otherwise the request expired at the cutoff."""
        return self.expected_if_taken if self.decided is not None and self.decided.accepted else "expired"


class RoundRun:
    """One round, driven through the API as its users would, while the scenario injects its fault."""

    def __init__(self, name: str, *, engine, settings: Settings, client: Client, smtp: Catcher,
                 prof: Profile | None = None) -> None:
        self.name, self.engine, self.settings, self.client, self.smtp = name, engine, settings, client, smtp
        self.prof = prof or profile()
        self.rng, self.seed = seeded_rng(name)
        self.round_id = unique_round()
        self.faults: list[dict] = []
        self.fault_times: list[datetime] = []
        # True where a fault can land between the SMTP server's 250 and the outbox's commit (a killed worker):
        # the one way a mail is delivered twice, with the same Message-ID
        self.gap_faults = False
        self.notes: list[str] = []
        self.timings: dict[str, float] = {}
        self.latencies: list[float] = []  # seconds from a user's first try to their answer
        self.worker: WorkerProcess | None = None  # set by start_with_worker

    # --- set up ---------------------------------------------------------------------------------

    def populate(self) -> None:
        began = time.monotonic()
        self.pop = seed_population(self.engine, self.prof.schools, self.prof.areas)
        self.timings["seed_s"] = round(time.monotonic() - began, 1)

    def schedule(self, opens_in_s: float = 0.0) -> None:
        """The round's instants, from now: every fault's moment is chosen against them."""
        self.t0 = utcnow() + timedelta(seconds=opens_in_s)
        self.confirm_from = self.t0 + timedelta(seconds=self.prof.open_s)
        self.cutoff = self.confirm_from + timedelta(seconds=self.prof.window_s)
        self.reminder_at = self.cutoff - timedelta(seconds=self.prof.reminder_before_s)
        self.escalation_at = self.cutoff + SETTLE
        add_round(self.engine, self.round_id, self.t0 - timedelta(seconds=1), self.confirm_from, self.cutoff,
                  RoundPolicy(reminders_before_cutoff=[timedelta(seconds=self.prof.reminder_before_s)]))
        seed_end_of_year(self.engine, self.round_id)
        self._plan()

    @classmethod
    @asynccontextmanager
    async def start_with_worker(cls, name: str, *, engine, settings: Settings, client: Client, smtp: Catcher,
                                worker_log: Path) -> AsyncIterator[RoundRun]:
        """Every scenario's setup and teardown: the population, the worker in its own process on `client`'s
        server (`run.worker`, the one a fault may kill), and a round that opens three seconds later; the worker
        is stopped however the scenario ends."""
        run = cls(name, engine=engine, settings=settings, client=client, smtp=smtp)
        run.populate()
        run.worker = WorkerProcess(settings, client.service_client.config.target_host, worker_log)
        run.worker.start()
        try:
            run.schedule(opens_in_s=3)
            yield run
        finally:
            run.worker.stop()

    def offset(self, at: datetime | None = None) -> float:
        """Seconds after confirmation opened (negative: before)."""
        return round(((at or utcnow()) - self.confirm_from).total_seconds(), 1)

    def phase(self, at: datetime | None = None) -> str:
        at = at or utcnow()
        for name, end in (("starting", self.confirm_from), ("confirmation window", self.reminder_at),
                          ("reminders due", self.cutoff), ("cutoff settling", self.escalation_at)):
            if at < end:
                return name
        return "after the escalation"

    def moments(self, count: int, start: datetime, end: datetime, spacing_s: float = 8.0) -> list[datetime]:
        """`count` random instants in [start, end], at least `spacing_s` apart (what a fault broke gets to
        start again before the next one)."""
        span = max(0.0, (end - start).total_seconds() - spacing_s * (count - 1))
        picks = sorted(self.rng.uniform(0, span) for _ in range(count))
        return [start + timedelta(seconds=p + i * spacing_s) for i, p in enumerate(picks)]

    def record_fault(self, what: str, **details) -> dict:
        """Print and keep a fault as it happens (its instant also explains a resent mail, see gap_faults)."""
        entry = {"what": what, "at_s": self.offset(), "phase": self.phase(), **details}
        self.faults.append(entry)
        self.fault_times.append(utcnow())
        print(f"[{self.name}] {what} at {entry['at_s']:+.1f}s ({entry['phase']})"
              + "".join(f" {k}={v}" for k, v in details.items()), flush=True)
        return entry

    def _plan(self) -> None:
        rng, p = self.rng, self.prof
        window_end = self.cutoff - timedelta(seconds=12)
        span = (window_end - self.confirm_from).total_seconds()
        self.schools: dict[str, SchoolPlan] = {}
        for code in self.pop.codes:
            kind = rng.choices(["certify", "confirm_only", "idle"], weights=[75, 10, 15])[0]
            self.schools[code] = SchoolPlan(code, kind, self.confirm_from + timedelta(seconds=rng.uniform(1, span)),
                                            rng.uniform(0.5, 4))
        chosen = rng.sample(self.pop.codes, p.dropouts + p.id_corrections)
        self.requests: list[RequestPlan] = []
        late_decision = self.confirm_from + timedelta(seconds=span * 0.6)
        for i, code in enumerate(chosen):
            kind = "dropout" if i < p.dropouts else "id_correction"
            decision = rng.choices(["approve", "reject", "none"], weights=[45, 35, 20])[0]
            decide_at = self.t0 + timedelta(seconds=rng.uniform(p.open_s * 0.6, (late_decision - self.t0).total_seconds()))
            self.requests.append(RequestPlan(kind, code, decision, decide_at))
            if kind == "dropout" and decision == "none":
                self.schools[code].kind = "blocked"  # it will try to confirm and be refused: the request is open

    # --- run ------------------------------------------------------------------------------------

    async def play(self, faults) -> dict:
        """The round with `faults` (a coroutine) striking, then every check: answers the summary to `report`
        (the scenario asserts its `problems` is empty)."""
        await self.run(faults)
        return await self.verify()

    async def run(self, faults) -> None:
        """Start the round, play every user's part while `faults` (a coroutine) runs, then wait until the
        round has settled: mails drained, requests closed, escalations sent."""
        app = create_app(self.settings, engine=self.engine, temporal=self.client)
        self.intake = Intake(self.engine, self.client, self.settings, dnsfunc=dkim_dns)  # the schools sign (DKIM)
        self.intake_port = free_port()
        listener = start_listener(self.intake, "127.0.0.1", self.intake_port, self.settings.intake_max_bytes)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500 is an answer, as for a user
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=None) as self.http:
                async with asyncio.TaskGroup() as users:  # one failing user stops the others and the faults
                    users.create_task(faults)
                    began = time.monotonic()
                    await self._start_round()
                    self.timings["fanout_s"] = round(time.monotonic() - began, 1)
                    for plan in self.schools.values():
                        users.create_task(self._school(plan))
                    for req in self.requests:
                        users.create_task(self._request(req))
                began = time.monotonic()
                await self._settle()
                self.timings["settle_after_escalation_s"] = round(time.monotonic() - began, 1)
        finally:
            listener.stop()

    async def call(self, method: str, url: str, who: str, *, settle_codes: tuple[str, ...] = (),
                   **kw) -> Answer:
        """One user's request; on a server error, a lost connection or a refusal that says "try again" the
        user tries again, as people do. A retry answered with one of `settle_codes` (e.g. already_confirmed)
        may mean that an earlier try was taken, and so may a refusal after a try whose answer was lost (a
        5xx): the answer is then marked `ambiguous`, and the caller looks, as the user would."""
        retries, began, tries, asked_at = 0, time.monotonic(), [], self.offset()
        deadline = began + 180
        while True:
            try:
                r = await self.http.request(method, url, headers={"Authorization": f"Bearer {self.pop.tokens[who]}"},
                                            **kw)
                status = r.status_code
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            except Exception as exc:  # noqa: BLE001  the API itself failed: the user sees an error page
                status, body = 599, {"code": type(exc).__name__}
            code = body.get("code") if isinstance(body, dict) else None
            tries.append((self.offset(), status, code))
            if (status < 500 and code not in TRY_AGAIN) or time.monotonic() > deadline:
                self.latencies.append(time.monotonic() - began)
                return Answer(status, code, retries, self.offset(), body if isinstance(body, dict) else {"items": body},
                              ambiguous=bool(retries) and (code in settle_codes or not 200 <= status < 300 and any(
                                  t[1] >= 500 for t in tries[:-1])), tries=tries, asked_at_s=asked_at)
            retries += 1
            await asyncio.sleep(1 + random.random())  # jitter: not from the seeded plan

    async def _start_round(self) -> None:
        await until(self.t0)
        a = await self.call("POST", f"/rounds/{self.round_id}/start", "admin")
        assert a.status == 202, a.body
        await self.client.get_workflow_handle(fanout_id(self.round_id, "start")).result()

    async def _school(self, plan: SchoolPlan) -> None:
        code, base = plan.code, f"/rounds/{self.round_id}/schools/{plan.code}"
        if plan.kind == "idle":
            return
        request = next((r for r in self.requests if r.kind == "dropout" and r.code == code), None)
        if plan.kind == "blocked":
            await request.settled.wait()
            if request.ref is not None:  # the request is open until the cutoff: the school cannot confirm
                await until(self.cutoff - timedelta(seconds=10))
                plan.blocked = await self.call("POST", f"{base}/confirmation", f"s-{code}")
                return
            plan.kind = "certify"  # the request never got made: the school goes on as any other
        if request is not None:  # the school waits for the district's decision on its dropout request
            await request.settled.wait()
        await until(plan.confirm_at)
        for _ in range(10):
            plan.confirm = await self.call("POST", f"{base}/confirmation", f"s-{code}", settle_codes=("already_confirmed",))
            await self._look(plan.confirm, base, f"s-{code}", "confirmed", self.pop.staff[code])
            if plan.confirm.code != "blocking_cases":
                break
            await asyncio.sleep(1)  # the decided request is closing: the school tries again a moment later
        if not plan.confirm.accepted or plan.kind != "certify":
            return
        await asyncio.sleep(plan.certify_after_s)
        plan.certify = await self.call("POST", f"{base}/certification", f"d-{code}",
                                       settle_codes=("already_certified",))
        await self._look(plan.certify, base, f"d-{code}", "certified", self.pop.director[code])

    async def _look(self, answer: Answer, base: str, who: str, field_name: str, user_id: str) -> None:
        """After an ambiguous answer the user opens the school's page: was it their decision that holds?"""
        if not answer.ambiguous:
            return
        page = await self.call("GET", base, who)
        decision = page.body.get(field_name) or {}
        if decision.get("by") == user_id:
            answer.status = 200  # verify() looks again once the round has settled (the page may lag)

    async def _request(self, req: RequestPlan) -> None:
        district = f"district:{self.pop.area_of[req.code]}"
        try:
            await until(self.t0 + timedelta(seconds=self.rng.uniform(1, self.prof.open_s * 0.6)))
            await self.client.get_workflow_handle(fanout_id(self.round_id, "start")).result()
            if req.kind == "dropout":
                await self._make_dropout(req)
            else:
                await self._email_id_correction(req, district)
            if req.ref is None or req.decision == "none":
                return
            await until(req.decide_at)
            if req.kind == "dropout":
                reason = "ตรวจสอบกับผู้ปกครองแล้ว" if req.decision == "approve" else "ยังติดตามนักเรียนกลับมาเรียนได้"
                url = f"/rounds/{self.round_id}/dropouts/{req.ref}"
                req.decided = await self.call("POST", f"{url}/decision", district, settle_codes=("dropout_closed",),
                                              json={"approve": req.decision == "approve", "reason": reason})
            else:
                url = f"/id-corrections/{req.ref}"
                body = {"approve": True} if req.decision == "approve" else {"approve": False, "reason": "เอกสารไม่ครบ"}
                req.decided = await self.call("POST", f"{url}/decision", district, json=body,
                                              settle_codes=("already_decided",))
            if req.decided.ambiguous:  # the officer looks: was it their decision that settled it?
                seen = await self.call("GET", url, district)
                mine = seen.body.get("decided_by") == self.pop.district[self.pop.area_of[req.code]]
                req.decided.status = 200 if mine and seen.body.get("status") == req.expected_if_taken else 409
        finally:
            req.settled.set()

    async def _make_dropout(self, req: RequestPlan) -> None:
        req.made = await self.call(
            "POST", f"/rounds/{self.round_id}/schools/{req.code}/dropouts", f"s-{req.code}",
            data={"student": self.pop.students[req.code][0], "reason": "low_income",
                  "details": "ไม่มาเรียนตั้งแต่ ก.พ. ครอบครัวย้ายไปทำงานต่างจังหวัด"},
            settle_codes=("dropout_already_requested",))
        for _ in range(60 if req.made.ambiguous else 0):  # an earlier try was taken: it shows once it is open
            seen = await self.call("GET", f"/rounds/{self.round_id}/dropouts?school={req.code}", f"s-{req.code}")
            if seen.body.get("items"):
                req.made.status, req.made.body = 201, seen.body["items"][0]
                break
            await asyncio.sleep(1)
        if req.made.status == 201:
            req.ref = req.made.body["id"]

    async def _email_id_correction(self, req: RequestPlan, district: str) -> None:
        """The school emails the district's intake (SMTP); a 4xx answer is retried, as a relay does."""
        old = self.pop.students[req.code][1]
        new = nid("2" + old[1:12])
        raw = build(letter(block(school=req.code, name="เด็กชายทดสอบ ระบบ2", grade="ม.1/1", old=old, new=new)),
                    sender=formataddr(("โรงเรียนทดสอบ", self.pop.school_email(req.code))),
                    message_id=f"<{self.round_id}-{req.code}@school.example>", date=formatdate(localtime=False))
        retries = 0
        while True:
            try:
                await aiosmtplib.send(raw, sender=self.pop.school_email(req.code), recipients=[INTAKE_ADDRESS],
                                      hostname="127.0.0.1", port=self.intake_port, timeout=60)
                break
            except (aiosmtplib.SMTPException, OSError):
                retries += 1
                await asyncio.sleep(2)
        req.made = Answer(250, None, retries, self.offset())
        for _ in range(600):  # the officer finds the request in the list once the intake has read the mail
            a = await self.call("GET", f"/id-corrections?school={req.code}", district)
            if a.accepted and a.body.get("items"):
                [item] = a.body["items"]
                req.ref = item["ref"]
                if item["status"] != "pending":  # read only after the cutoff (the worker was down): it expired
                    req.decision = "none"
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"the ID correction of school {req.code} never reached the district's list")

    # --- settle ---------------------------------------------------------------------------------

    def _pending_work(self) -> dict[str, int]:
        with session_scope(self.engine) as s:
            outbox = s.exec(select(OutboxMail.status)).all()
            rows = s.exec(select(SchoolRound).where(SchoolRound.round_id == self.round_id)).all()
            dropouts = s.exec(select(DropoutRequest.status).where(DropoutRequest.round_id == self.round_id)).all()
            corrections = s.exec(select(IdCorrection.status).where(IdCorrection.round_id == self.round_id)).all()
            inbound = s.exec(select(InboundMessage.status)).all()
        late_areas = {r.area for r in rows if r.certified_at is None}
        escalated = {r.area for r in rows if r.escalated_at is not None}
        return {"mails pending": sum(st == "pending" for st in outbox),
                "schools not settled": sum(r.stage not in ("certified", "late") for r in rows),
                "areas not escalated": len(late_areas - escalated),
                "dropouts open": sum(st in OPEN_STATUSES for st in dropouts),
                "id corrections pending": sum(st == "pending" for st in corrections),
                "messages not processed": sum(st == "stored" for st in inbound),
                "mails not delivered": max(0, sum(st == "sent" for st in outbox) - len(self.smtp.messages))}

    async def _settle(self, timeout_s: float = 180) -> None:
        """Wait until nothing is left to do; a fault may have delayed work by an activity timeout or a retry."""
        await until(self.escalation_at + timedelta(seconds=2))
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                pending = await asyncio.to_thread(self._pending_work)
            except Exception as exc:  # noqa: BLE001  the database may be restarting in this scenario
                pending = {"database unreachable": 1, type(exc).__name__: 1}
            if not any(pending.values()):
                return
            if time.monotonic() > deadline:
                self.notes.append(f"not settled {timeout_s:.0f}s after the escalation: {pending}")
                return
            if int(time.monotonic() - deadline) % 15 == 0:
                print(f"[{self.name}] {self.offset():+.0f}s waiting for: "
                      + ", ".join(f"{k} {v}" for k, v in pending.items() if v), flush=True)
            await asyncio.sleep(1)

    # --- verify ---------------------------------------------------------------------------------

    async def verify(self) -> dict:
        """Every check of the scenario; answers the summary (the test asserts its `problems` is empty)."""
        problems: list[str] = list(self.notes)
        stages = await self._verify_schools(problems)
        requests = await self._verify_requests(problems)
        mails = self._verify_mails(problems)
        reminded_at = {area: await self._area_reminded_at(area) for area in {self.pop.area_of[c] for c in self.unreminded}}
        for code in self.unreminded:
            ran_at = reminded_at[self.pop.area_of[code]]
            if ran_at is not None and ran_at < self.cutoff - timedelta(seconds=1):
                problems.append(f"school {code}: late and never reminded, though its area's reminder step ran at "
                                f"{self.offset(ran_at):+.1f}s, before the cutoff")
        if problems:
            await self._keep_histories(problems)
        return {
            "scenario": self.name, "form": self.prof.form, "seed": self.seed, "profile": asdict(self.prof),
            "round": {"confirm_from": self.confirm_from.isoformat(), "cutoff": self.cutoff.isoformat(),
                      "reminder_at_s": self.offset(self.reminder_at), "cutoff_at_s": self.offset(self.cutoff),
                      "escalation_at_s": self.offset(self.escalation_at)},
            "tried": self.faults, "timings": {**self.timings, **self._latency()},
            "found": {"schools_checked": len(self.schools), **stages, **requests, "emails": mails},
            "problems": problems,
        }

    async def _keep_histories(self, problems: list[str], limit: int = 12) -> None:
        """The histories of the workflows named in the problems, for a post-mortem (they hold no personal
        data): tests/artifacts/faults-<scenario>-histories/."""
        ids = []
        for p in problems:
            ids += [school_round_id(self.round_id, c) for c in re.findall(r"school (\d{10})", p)]
            ids += [dropout_id(r) for r in re.findall(r"\b(DO-[0-9A-F]+)", p)]
            ids += [id_correction_id(r) for r in re.findall(r"\b(IDC-[0-9A-F]+)", p)]
        folder = ARTIFACTS / f"faults-{self.name}-histories"
        folder.mkdir(parents=True, exist_ok=True)
        for wid in list(dict.fromkeys(ids))[:limit]:
            try:
                history = await self.client.get_workflow_handle(wid).fetch_history()
            except Exception:  # noqa: BLE001  best effort: the problems are the finding
                continue
            (folder / f"{wid.replace('/', '_')}.json").write_text(history.to_json(), encoding="utf-8")

    def _latency(self) -> dict:
        if not self.latencies:
            return {}
        ordered = sorted(self.latencies)
        return {"answers": len(ordered), "answer_median_s": round(ordered[len(ordered) // 2], 2),
                "answer_p95_s": round(ordered[int(len(ordered) * 0.95)], 2), "answer_max_s": round(ordered[-1], 2)}

    async def _verify_schools(self, problems: list[str]) -> dict:
        with session_scope(self.engine) as s:
            rows = {r.school_code: r for r in s.exec(select(SchoolRound).where(SchoolRound.round_id == self.round_id))}
            audit = s.exec(select(AuditEvent).where(AuditEvent.round_id == self.round_id)).all()
        by_school: dict[str, list[AuditEvent]] = {}
        for e in audit:
            by_school.setdefault(e.school_code, []).append(e)
        decisions = Counter()
        stage_counts = Counter()
        for code, plan in self.schools.items():
            row = rows.get(code)
            if row is None:
                problems.append(f"school {code}: no projection row")
                continue
            for answer, by in ((plan.confirm, row.confirmed_by), (plan.certify, row.certified_by)):
                if answer is not None and answer.ambiguous:  # the user's last look, once all has settled
                    answer.status = 200 if by in (self.pop.staff[code], self.pop.director[code]) else 409
                    decisions["taken_though_the_answer_was_lost"] += answer.accepted and answer.code not in (
                        "already_confirmed", "already_certified")
            confirmed = plan.confirm is not None and plan.confirm.accepted
            certified = confirmed and plan.certify is not None and plan.certify.accepted
            expected = "certified" if certified else "late"
            stage_counts[row.stage] += 1
            if row.stage != expected:
                problems.append(f"school {code}: stage {row.stage}, expected {expected} (plan {plan.kind}, "
                                f"confirm {plan.confirm}, certify {plan.certify})")
            actions = Counter(e.action for e in by_school.get(code, []))
            for action, accepted, who, by, at in (
                    ("confirm", confirmed, self.pop.staff[code], row.confirmed_by, row.confirmed_at),
                    ("certify", certified, self.pop.director[code], row.certified_by, row.certified_at)):
                decisions[f"{action}_accepted"] += accepted
                if actions[action] != int(accepted):
                    problems.append(f"school {code}: {actions[action]} '{action}' audit events for "
                                    f"{'an accepted' if accepted else 'no accepted'} decision")
                if accepted and (by != who or at is None):
                    problems.append(f"school {code}: the projection lost the accepted {action} (by={by})")
                if not accepted and by is not None:
                    answer = plan.confirm if action == "confirm" else plan.certify
                    problems.append(f"school {code}: the projection shows a {action} nobody was told was accepted "
                                    f"(tries: {answer.tries if answer else None})")
            # the projection is the workflow's last word: its version is the highest audited one
            versions = [int(e.key.rsplit("/", 1)[1]) for e in by_school.get(code, [])
                        if e.key.startswith(school_round_id(self.round_id, code) + "/")]
            if versions and max(versions) > row.version:
                problems.append(f"school {code}: audit version {max(versions)} beyond the projection's {row.version}")
            for a in (plan.confirm, plan.certify, plan.blocked):
                if a is not None:
                    decisions[f"answers_{a.status}{'_' + a.code if a.code else ''}"] += 1
                    decisions["retried_requests"] += a.retries > 0
                    # in time by the user's clock, late by the workflow's: the fault delayed the decision
                    decisions["asked_before_the_cutoff_refused_as_closed"] += (
                        a.code == "round_closed" and not a.accepted and a.asked_at_s < self.offset(self.cutoff))
            if plan.blocked is not None and plan.blocked.accepted:  # refused: blocking_cases, or round_closed late
                problems.append(f"school {code}: confirmation with an open dropout request answered {plan.blocked.status}"
                                f" {plan.blocked.code}")
        workflows = await self._verify_workflows(rows, problems)
        return {"stages": dict(stage_counts), "decisions": dict(decisions), "workflows": workflows}

    async def _verify_workflows(self, rows: dict[str, SchoolRound], problems: list[str]) -> dict:
        """The workflows agree with the projection: certified ones completed, late ones wait for an extension.

        Issue 18 (intended change): a school's workflow starts on its first event, so a school that never acted has
        none (`late:not_started`); its projection must say `late`, as the area's batch wrote it."""
        gate = asyncio.Semaphore(16)
        seen = Counter()

        async def one(code: str) -> None:
            async with gate:
                handle = self.client.get_workflow_handle(school_round_id(self.round_id, code),
                                                         result_type=SchoolRoundResult)
                try:
                    status = (await handle.describe()).status
                except RPCError as exc:
                    if exc.status != RPCStatusCode.NOT_FOUND:
                        raise
                    seen[f"{rows[code].stage}:not_started"] += 1
                    if rows[code].stage != "late":
                        problems.append(f"school {code}: no workflow, projection {rows[code].stage}")
                    return
                state = await handle.query(SchoolRoundWorkflow.snapshot, result_type=SchoolRoundState) \
                    if status == WorkflowExecutionStatus.RUNNING else None
                if status == WorkflowExecutionStatus.COMPLETED:
                    stage = (await handle.result()).stage.value
                else:
                    stage = state.stage(utcnow()).value if state else str(status)
                seen[f"{stage}:{status.name.lower()}"] += 1
                if stage != rows[code].stage:
                    problems.append(f"school {code}: workflow says {stage}, projection {rows[code].stage}")

        await asyncio.gather(*(one(code) for code in rows))
        return dict(seen)

    async def _verify_requests(self, problems: list[str]) -> dict:
        with session_scope(self.engine) as s:
            dropouts = {r.id: r for r in s.exec(select(DropoutRequest).where(DropoutRequest.round_id == self.round_id))}
            corrections = {r.school_code: r for r in s.exec(select(IdCorrection).where(
                IdCorrection.round_id == self.round_id))}
            students = {(st.school_code, st.student_id): st for st in s.exec(select(Student))}
            audit = Counter((e.action, (e.after or {}).get("request") or (e.after or {}).get("ref"))
                            for e in s.exec(select(AuditEvent).where(AuditEvent.round_id == self.round_id)))
            thread = Counter((m.request_id, m.kind) for m in s.exec(select(DropoutMessage).where(DropoutMessage.posted)))
            deferred = {d.source for d in s.exec(select(DeferredRosterChange).where(
                DeferredRosterChange.round_id == self.round_id, DeferredRosterChange.status == "pending"))}
            certified = {r.school_code for r in s.exec(select(SchoolRound).where(
                SchoolRound.round_id == self.round_id, SchoolRound.stage == "certified"))}
        found = {"dropouts": Counter(), "id_corrections": Counter(), "request_answers": Counter()}
        for req in self.requests:
            for step, a in (("made", req.made), ("decided", req.decided)):
                if a is not None:
                    found["request_answers"][f"{req.kind}_{step}_{a.status}{'_' + a.code if a.code else ''}"] += 1
            if req.ref is None:
                problems.append(f"{req.kind} of school {req.code}: never made ({req.made})")
                continue
            expected = req.expected_status
            found["dropouts" if req.kind == "dropout" else "id_corrections"][expected] += 1
            if req.kind == "dropout":
                row = dropouts[req.ref]
                pupil = students.get((req.code, self.pop.students[req.code][0]))
                wanted = ("dropped_out", "low_income") if expected == "approved" else ("studying", None)
                got = (pupil.status, pupil.status_reason) if pupil else None
                wf = await self._result(dropout_id(req.ref))
                checks = [(row.status, expected, "request status"), (got, wanted, "student on the roster"),
                          (wf, expected, "workflow result"),
                          (audit[(f"dropout_{expected}", req.ref)], 1, "settled audit events"),
                          (audit[("student_dropped_out", req.ref)], int(expected == "approved"), "roster audit events"),
                          (thread[(req.ref, "approve")] + thread[(req.ref, "reject")],
                           int(expected != "expired"), "decisions in the thread")]
            else:
                row = corrections[req.code]
                old, new = self.pop.students[req.code][1], nid("2" + self.pop.students[req.code][1][1:12])
                on_roster = ((req.code, new) in students, (req.code, old) in students)
                wanted = (True, False) if expected == "approved" else (False, True)
                wf = await self._result(id_correction_id(req.ref))
                if expected == "approved" and row.status == "deferred":
                    # approved after the school certified (issue 16): the certified roster stays as it is, and the
                    # change waits for the next round's start
                    checks = [(req.code in certified, True, "school certified before the approval"),
                              (req.ref in deferred, True, "change recorded for the next round"),
                              (on_roster, (False, True), "(new, old) ID on the certified roster"),
                              (audit[("id_correction", req.ref)], 0, "ID-change audit events")]
                else:
                    checks = [(row.status, expected, "request status"),
                              (on_roster, wanted, "(new, old) ID on the roster"), (wf, expected, "workflow result"),
                              (audit[("id_correction", req.ref)], int(expected == "approved"), "ID-change audit events")]
            for got_value, want, what in checks:
                if got_value != want:
                    problems.append(f"{req.kind} {req.ref} of school {req.code}: {what} {got_value!r}, "
                                    f"expected {want!r} (decision {req.decision}, answer {req.decided})")
        return {k: dict(v) for k, v in found.items()}

    def _gap_fault_during(self, row: OutboxMail) -> bool:
        """A second delivery is the outbox's one known gap: the server said 250, then the process died (or
        the database went away) before the row was marked sent; the retry resends the same Message-ID."""
        return row.attempts > 1 and any(row.created_at <= at <= (row.sent_at or utcnow()) for at in self.fault_times)

    async def _area_reminded_at(self, area: str) -> datetime | None:
        """A late school without a reminder is right only if its area's reminder step first ran after the cutoff
        (the worker was catching up after a crash): then "N minutes left" would be a lie (issue 18: the area sends
        its schools' reminders in one step). Answers when the area's reminder activity's last attempt started."""
        history = await self.client.get_workflow_handle(area_round_id(self.round_id, area)).fetch_history()
        scheduled, ran = set(), None
        for e in history.events:
            if e.HasField("activity_task_scheduled_event_attributes") and \
                    e.activity_task_scheduled_event_attributes.activity_type.name == "area_reminders":
                scheduled.add(e.event_id)
            elif e.HasField("activity_task_started_event_attributes") and \
                    e.activity_task_started_event_attributes.scheduled_event_id in scheduled:
                ran = e.event_time.ToDatetime(tzinfo=timezone.utc)
        return ran

    async def _result(self, workflow_id: str):
        """A side process's result, or what keeps it from having one."""
        try:
            return await asyncio.wait_for(self.client.get_workflow_handle(workflow_id).result(), 15)
        except asyncio.TimeoutError:
            return f"still {(await self.client.get_workflow_handle(workflow_id).describe()).status.name}"

    def _verify_mails(self, problems: list[str]) -> dict:
        """Exactly once: every outbox mail delivered once (by Message-ID), nothing delivered that the outbox
        does not hold, one mail per recipient and subject, and the mails the round calls for."""
        with session_scope(self.engine) as s:
            outbox = {r.message_id: r for r in s.exec(select(OutboxMail))}
            rows = {r.school_code: r for r in s.exec(select(SchoolRound).where(SchoolRound.round_id == self.round_id))}
        delivered = Counter(m["Message-ID"] for m in self.smtp.messages)
        duplicates = {mid: n for mid, n in delivered.items() if n > 1}
        unknown = [mid for mid in delivered if mid not in outbox]
        missing = [r.key for mid, r in outbox.items() if r.status == "sent" and mid not in delivered]
        unsent = [r.key for r in outbox.values() if r.status not in ("sent", "no_recipients")]
        same_subject = Counter((m["X-Envelope-To"], str(m["Subject"])) for m in self.smtp.messages)
        twice = sum(n - 1 for n in same_subject.values() if n > 1)
        explained = {mid for mid in duplicates if self._gap_fault_during(outbox[mid])} if self.gap_faults else set()
        unexplained = {mid: n for mid, n in duplicates.items() if mid not in explained}
        for what, items in (("delivered more than once", unexplained), ("delivered without an outbox row", unknown),
                            ("marked sent but never delivered", missing), ("never sent", unsent)):
            if items:
                problems.append(f"mails {what}: {len(items)} ({sorted(items)[:5]})")
        if twice > sum(duplicates[mid] - 1 for mid in explained):
            problems.append(f"{twice} mails repeat a recipient and subject already delivered")

        kinds = Counter()
        for mid in delivered:
            row = outbox.get(mid)
            if row is not None:
                kinds[_mail_kind(row.key)] += 1
        reminders = Counter(r.key.split("/")[2] for r in outbox.values() if r.key.startswith(f"reminder/{self.round_id}/"))
        late = {c for c, r in rows.items() if r.certified_at is None}
        for code in self.schools:
            if reminders[code] > 1:
                problems.append(f"school {code}: {reminders[code]} reminders")
        self.unreminded = sorted(c for c in late if not reminders[c])  # checked against the histories
        escalations = self._check_escalations(late, problems)
        expected = {"dropout_requested": len([r for r in self.requests if r.kind == "dropout" and r.ref]),
                    "dropout_outcome": len([r for r in self.requests if r.kind == "dropout" and r.ref]),
                    "id_correction_reply": len([r for r in self.requests if r.kind == "id_correction" and r.made]),
                    "id_correction_outcome": len([r for r in self.requests if r.kind == "id_correction" and r.ref]),
                    "escalation": len({self.pop.area_of[c] for c in late})}
        for kind, n in expected.items():
            if kinds[kind] != n:
                problems.append(f"{kinds[kind]} '{kind}' mails delivered, expected {n}")
        return {"delivered": sum(delivered.values()), "distinct_message_ids": len(delivered), "by_kind": dict(kinds),
                "reminded_schools": len(reminders), "late_schools_not_reminded": len(self.unreminded),
                "late_schools_listed": escalations,
                "duplicates_by_message_id": sum(n - 1 for n in duplicates.values()),
                "duplicates_same_message_id_after_a_crash_between_250_and_commit": len(explained),
                "duplicates_by_recipient_and_subject": twice, "outbox_rows": len(outbox),
                "outbox_attempts_over_1": sum(r.attempts > 1 for r in outbox.values())}

    def _check_escalations(self, late: set[str], problems: list[str]) -> int:
        """One escalation an area, listing exactly its late schools."""
        listed = 0
        for area in sorted(set(self.pop.area_of.values())):
            want = sorted(c for c in late if self.pop.area_of[c] == area)
            mails = [m for m in self.smtp.messages if str(m["Subject"]).startswith(f"[DMC {self.round_id}] ")
                     and f" {area} (" in str(m["Subject"])]
            if not want:
                continue
            if len(mails) != 1:
                problems.append(f"area {area_key(area)}: {len(mails)} escalations for {len(want)} late schools")
                continue
            text = mails[0].get_body(("plain",)).get_content()
            codes = sorted(re.findall(r"^\d+\. (\d{10}): ", text.split("\n--\n", 1)[-1], flags=re.M))
            listed += len(codes)
            if codes != want:
                problems.append(f"area {area_key(area)}: escalation lists {len(codes)} schools, "
                                f"{len(want)} are late (extra {sorted(set(codes) - set(want))[:5]}, "
                                f"missing {sorted(set(want) - set(codes))[:5]})")
        return listed


def _mail_kind(key: str) -> str:
    head = key.split("/", 1)[0]
    if head == "dropout":
        return "dropout_requested" if key.endswith("/requested") else "dropout_outcome"
    return {"reminder": "reminder", "escalation": "escalation", "reply": "id_correction_reply",
            "id-correction": "id_correction_outcome"}.get(head, head)


# --- report -----------------------------------------------------------------------------------------

def report(summary: dict) -> Path:
    """Print what was tried and found (visible with -s) and write it as JSON to the artifacts folder."""
    name = summary["scenario"]
    found, mails = summary["found"], summary["found"]["emails"]
    lines = [
        f"== fault scenario '{name}' ({summary['form']} form, seed {summary['seed']}) ==",
        f"tried: {len(summary['tried'])} fault(s): " + "; ".join(
            f"{f['what']} at {f['at_s']:+.1f}s ({f['phase']})" for f in summary["tried"]),
        f"round: {found['schools_checked']} schools, confirmation opens at 0s, reminder at "
        f"{summary['round']['reminder_at_s']:+.0f}s, cutoff at {summary['round']['cutoff_at_s']:+.0f}s",
        f"found: stages {found['stages']}; workflows {found['workflows']}",
        f"decisions: {found['decisions']}",
        f"dropouts {found['dropouts']}; id corrections {found['id_corrections']}",
        f"emails: {mails['delivered']} delivered, {mails['distinct_message_ids']} distinct, by kind {mails['by_kind']}; "
        f"duplicates by Message-ID {mails['duplicates_by_message_id']} (of which after a crash between the SMTP "
        f"server's 250 and the commit: {mails['duplicates_same_message_id_after_a_crash_between_250_and_commit']}), "
        f"by recipient+subject {mails['duplicates_by_recipient_and_subject']}; outbox rows retried "
        f"{mails['outbox_attempts_over_1']}; late schools not reminded because their area's reminder step first "
        f"ran after the cutoff: {mails['late_schools_not_reminded']}",
        f"timings: {summary['timings']}",
        f"problems: {len(summary['problems'])}" + "".join(f"\n  - {p}" for p in summary["problems"][:30]),
    ]
    print("\n" + "\n".join(lines), flush=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"faults-{name}.json"
    path.write_text(json.dumps(summary, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path
