"""One populated dmcflow for the access, download and fuzzing tests: a started round, ready schools, a
duplicate case with evidence, an ID correction waiting for the district, a dropout request waiting for
the district (with its own evidence), and a user of every kind.

Module-scoped (it takes a few seconds to build): tests that share it must not depend on each other's
changes, or must run in the order they are written.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import select
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from db.directory import create_user
from db.engine import make_engine, session_scope
from db.models import IdCorrection
from dmcflow.settings import Settings
from tests.payload_keys import DATA_CONVERTER
from intake.pipeline import Intake
from tests.conftest import BIN, Catcher, free_port
from tests.intake.messages import PDF, block, build, dkim_dns, letter, nid
from tests.stack import OTHER_SCHOOL, READY_IDS, SCHOOL, SCHOOL_2, Stack, add_round, make_ready, running_stack, \
    unique_round
from tests.timing import eventually
from workflows import search_attributes as sa

SHARED_ID = READY_IDS[SCHOOL_2]  # on SCHOOL_2's roster; SCHOOL claims the same child: a duplicate case
CLAIM = {"student": SHARED_ID, "prefix": "เด็กชาย", "first_name": "ชนิดา", "last_name": "พลอยงาม", "grade": "ม.1",
         "sat_final_exam_here": True}
EVIDENCE_SHA = hashlib.sha256(PDF).hexdigest()
DROPOUT_PUPIL = READY_IDS[SCHOOL]
DROPOUT_PDF = b"%PDF-1.4\n% home visit record\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"  # other than PDF: its own sha
DROPOUT_EVIDENCE_SHA = hashlib.sha256(DROPOUT_PDF).hexdigest()


@dataclass
class World:
    stack: Stack
    settings: Settings
    round_id: str
    now: datetime
    case_id: str  # SCHOOL claims SCHOOL_2's student (both in AREA), AREA's district opened it; SCHOOL's staff
    # declared it with PDF
    correction: str  # SCHOOL's ID correction, pending with the district of AREA; its evidence is PDF
    dropout: str  # SCHOOL's staff asked for DROPOUT_PUPIL (SCHOOL) with DROPOUT_PDF; waiting for AREA's district
    dropout_evidence: str  # DROPOUT_EVIDENCE_SHA
    refused_mail: str = ""  # an unsigned mail claiming SCHOOL's address: kept refused, listed for AREA's district

    @property
    def http(self):
        return self.stack.http


@asynccontextmanager
async def temporal_env():
    """Temporal's time-skipping server (as tests/conftest.py `time_env`, but for a module)."""
    path = shutil.which("temporal-test-server") or str(BIN / "temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path, data_converter=DATA_CONVERTER)
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in sa.ALL}))
    try:
        yield env
    finally:
        await env.shutdown()


@asynccontextmanager
async def populated_world(db_url: str, **settings_overrides):
    """`db_url`: a migrated, empty database."""
    catcher = Catcher("127.0.0.1", free_port())
    from aiosmtpd.controller import Controller

    catcher.controller = Controller(catcher, hostname=catcher.host, port=catcher.port)
    catcher.controller.start()
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, smtp_host=catcher.host, smtp_port=catcher.port, smtp_tls="off",
                        task_queue=f"tq-{uuid.uuid4().hex[:8]}", public_url="http://dmcflow.test", **settings_overrides)
    try:
        async with temporal_env() as env, running_stack(env, engine, settings) as stack:
            with session_scope(engine) as s:
                _, stack.tokens["other_director"] = create_user(s, role="director", display_name="ผอ.อื่น",
                                                                school_code=OTHER_SCHOOL)
            now = await stack.now()
            rid = unique_round()
            add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
            await stack.start_round(rid)
            await make_ready(stack, rid, SCHOOL)
            await make_ready(stack, rid, SCHOOL_2)
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students", headers=stack.auth("staff"),
                                      json=CLAIM)
            assert r.status_code == 409 and r.json()["code"] == "active_elsewhere", r.text
            case_id = r.json()["message_en"].split("duplicate case ")[1].split(" ")[0]
            r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("district"),
                                      data={"action": "open"})  # the holder's district opens the claim as a case
            assert r.status_code == 200, r.text
            r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("staff"),
                                      data={"action": "present"},
                                      files={"evidence": ("หลักฐาน.pdf", PDF, "application/pdf")})
            assert r.status_code == 200, r.text
            raw = build(letter(block(old=READY_IDS[SCHOOL], new=nid("144990900001"))), message_id="<world@mail.example>")
            intake = Intake(engine, stack.client, settings, dnsfunc=dkim_dns)
            await intake.receive(raw, "smtp", now)
            refused_mail = await intake.receive(build(letter(block(old=READY_IDS[SCHOOL], new=nid("144990900002"))),
                                                      message_id="<world-forged@mail.example>", signed=False),
                                                "smtp", now)

            def pending() -> str | None:
                with session_scope(engine) as s:
                    row = s.exec(select(IdCorrection).where(IdCorrection.status == "pending")).first()
                    return row.id if row else None

            ref = await eventually(pending)
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/dropouts", headers=stack.auth("staff"),
                                      data={"student": DROPOUT_PUPIL, "reason": "low_income",
                                            "details": "ไม่มาเรียนตั้งแต่ ก.พ. ครอบครัวย้ายไปทำงานต่างจังหวัด"},
                                      files={"evidence": ("บันทึกการติดตาม.pdf", DROPOUT_PDF, "application/pdf")})
            assert r.status_code == 201 and r.json()["status"] == "waiting_district", r.text
            assert r.json()["thread"][0]["evidence"] == DROPOUT_EVIDENCE_SHA, r.text
            yield World(stack=stack, settings=settings, round_id=rid, now=now, case_id=case_id, correction=ref,
                        dropout=r.json()["id"], dropout_evidence=DROPOUT_EVIDENCE_SHA, refused_mail=refused_mail)
    finally:
        engine.dispose()
        catcher.controller.stop()


def fresh_db_url(migrated_template, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("world") / "app.sqlite"
    shutil.copy(migrated_template, path)
    return f"sqlite:///{path}"


@contextmanager
def world_database(backend: str, migrated_template, tmp_path_factory):
    """A migrated, empty database on `backend` (PostgreSQL as tests/db_backends.py provides it)."""
    if backend == "sqlite":
        yield fresh_db_url(migrated_template, tmp_path_factory)
        return
    from db.migrate import upgrade
    from tests.db_backends import fresh_postgres_database, postgres_base_url

    with fresh_postgres_database(postgres_base_url()) as url:
        upgrade(url)
        yield url


__all__ = ["CLAIM", "DROPOUT_EVIDENCE_SHA", "DROPOUT_PUPIL", "EVIDENCE_SHA", "OTHER_SCHOOL", "SCHOOL", "SCHOOL_2",
           "World", "fresh_db_url", "populated_world", "world_database"]
