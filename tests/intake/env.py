"""The intake running for real, for the tests that send it mail: the stack (Temporal under time skipping, the
API), a round open for corrections with the demo roster imported, the intake's SMTP listener, and the
catcher of its replies. Import `intake_env` into a test module to use it as a fixture."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiosmtplib
import pytest

from db.engine import session_scope
from db.models import IdCorrection, InboundMessage
from intake.pipeline import Intake
from intake.smtp_listener import start_listener
from tests.conftest import free_port
from tests.intake.messages import dkim_dns
from tests.stack import add_round, running_stack, unique_round

ROSTER = Path(__file__).resolve().parents[2] / "dmcflow" / "demo" / "roster-phase3-2566.csv"
INTAKE_ADDRESS = "idfix@district.example"


class Setup:
    def __init__(self, stack, intake, port, rid, cutoff):
        self.stack, self.intake, self.port, self.rid, self.cutoff = stack, intake, port, rid, cutoff

    async def send(self, raw: bytes, sender: str = "dmc@tuayang.ac.th") -> None:
        await send_to_intake(self.port, raw, sender)


async def send_to_intake(port: int, raw: bytes, sender: str = "dmc@tuayang.ac.th") -> None:
    """Through the intake's SMTP listener, as the district's relay hands it over."""
    await aiosmtplib.send(raw, sender=sender, recipients=[INTAKE_ADDRESS], hostname="127.0.0.1", port=port)


@asynccontextmanager
async def intake_listening(stack):
    """The intake in front of the stack, its SMTP listener on a free loopback port: answers (intake, port)."""
    intake = Intake(stack.engine, stack.client, stack.settings, dnsfunc=dkim_dns)
    port = free_port()
    listener = start_listener(intake, "127.0.0.1", port, stack.settings.intake_max_bytes)
    try:
        yield intake, port
    finally:
        listener.stop()


@pytest.fixture
async def intake_env(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        cutoff = now + timedelta(days=3)
        add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(days=2), cutoff)
        await stack.start_round(rid)
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("admin"),
                                  files={"file": ("roster.csv", ROSTER.read_bytes(), "text/csv")})
        assert r.json()["applied"] == 14, r.text
        async with intake_listening(stack) as (intake, port):
            yield Setup(stack, intake, port, rid, cutoff)


def replies(smtp, message_id: str) -> list:
    """The receipt replies to one message (outcome notices later thread under it too, as [DMC] ...)."""
    return [m for m in smtp.messages if m["In-Reply-To"] == message_id and m["Subject"].startswith("Re:")]


def body(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def outcome_of(engine, message_id: str) -> str | None:
    """What the intake made of a message: a whole-message outcome (`refused:<code>`), or its one request's
    status or refusal code; None while it is not decided."""
    with session_scope(engine) as s:
        row = s.exec(InboundMessage.__table__.select().where(InboundMessage.message_id == message_id)).first()
        if row is None or row.status == "stored":
            return None
        if row.status == "refused":
            return row.outcome
        if row.outcome and row.outcome.startswith("refused:") and row.outcome != "refused:requests":
            return row.outcome
        [request] = s.exec(IdCorrection.__table__.select().where(IdCorrection.message_sha == row.sha256)).all()
        return request.refusal_code or request.status
