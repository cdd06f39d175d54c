"""An outage is an answer too: 503 with a code, Thai and English and Retry-After, and nothing half-done.

Real parts: a Temporal dev server of the test's own that is stopped and started again on its SQLite
file, the real worker and API; a database file that cannot be opened.
"""

from __future__ import annotations

import signal
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client

from api.app import create_app
from db.engine import make_engine, session_scope
from db.models import AuditEvent
from tests.payload_keys import DATA_CONVERTER
from tests.conftest import free_port
from tests.faults.processes import DevServer
from tests.stack import SCHOOL, add_round, make_ready, running_stack, unique_round

pytestmark = pytest.mark.slow


def assert_outage(r: httpx.Response, code: str) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["code"] == code
    assert "ไม่พร้อมให้บริการ" in body["message_th"] and "unavailable" in body["message_en"]
    assert int(r.headers["Retry-After"]) > 0


async def test_a_decision_while_temporal_is_down_is_answered_503_and_taken_once_it_is_back(engine, settings,
                                                                                          tmp_path):
    server = DevServer(tmp_path, free_port())
    await server.start()
    try:
        client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
        async with running_stack(client, engine, settings, timeout=120) as stack:  # on the wall clock
            http = stack.http
            now = await stack.now()
            rid = unique_round()
            add_round(engine, rid, now, now, now + timedelta(hours=2))
            await stack.start_round(rid)
            await make_ready(stack, rid, SCHOOL)
            url = f"/rounds/{rid}/schools/{SCHOOL}/confirmation"

            await server.stop(signal.SIGKILL)
            r = await http.post(url, headers=stack.auth("staff"))
            assert_outage(r, "temporal_unavailable")
            r = await http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=stack.auth("staff"))
            assert r.status_code == 200 and r.json()["stage"] == "confirmation_window"  # reads need no Temporal

            await server.start()
            r = await http.post(url, headers=stack.auth("staff"))
            assert r.status_code == 200, r.text
            assert r.json()["stage"] == "confirmed"
            with session_scope(engine) as s:
                confirms = s.exec(select(AuditEvent).where(AuditEvent.round_id == rid,
                                                           AuditEvent.action == "confirm")).all()
            assert len(confirms) == 1  # the refused attempt left nothing behind
    finally:
        await server.stop()


async def test_a_request_while_the_database_is_unreachable_is_answered_503(dev_env, settings, tmp_path):
    gone = make_engine(f"sqlite:///{tmp_path / 'no-such-directory' / 'app.sqlite'}")
    app = create_app(settings, engine=gone, temporal=dev_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
        r = await http.get(f"/rounds/r/schools/{SCHOOL}", headers={"Authorization": "Bearer some-token"})
    assert_outage(r, "database_unavailable")
