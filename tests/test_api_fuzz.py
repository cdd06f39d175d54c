"""Schemathesis against the API's own OpenAPI document, with real tokens: no input gets a 5xx.

Every operation is called with requests generated from its schema, valid ones and invalid ones, by an
admin, a district officer and a school's staff, against a populated dmcflow (a started round, a
duplicate case, an ID correction, a dropout request). Path parameters are mostly the world's real ids
(and its area), each independently of the others (a real school in a round that does not exist...), so
the requests get past "not found" into the rules. Every answer must be below 500, and every 4xx a
refusal with its code, Thai and English (from the dashboard's pages, shown on the HTML page).

The app runs under uvicorn on a loopback port in the test's event loop (where its Temporal client
lives); Hypothesis runs in a worker thread and calls it over HTTP like any client.

    HYPOTHESIS_PROFILE=long python -m pytest tests/test_api_fuzz.py     # 20 x the examples

On both backends: PostgreSQL enforces column lengths and integer ranges that SQLite ignores.
"""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from api import live
from tests.api_world import EVIDENCE_SHA, populated_world, world_database
from tests.conftest import free_port
from tests.db_backends import BACKENDS
from tests.hypothesis_profiles import examples
from tests.stack import AREA, SCHOOL
from tests.test_authz_matrix import OPS, page_refusal

ACTORS = ("admin", "district", "staff")
EXAMPLES_PER_OPERATION = 20
# Real ids for path parameters, by name (None: the world's value, filled in below).
REAL = {"round_id": None, "school_code": SCHOOL, "case_id": None, "ref": None, "sha256": EVIDENCE_SHA, "code": SCHOOL,
        "operation_id": None, "request_id": None, "area": AREA}


@pytest.fixture(scope="module", params=BACKENDS)
async def served(request, migrated_template, tmp_path_factory):
    with world_database(request.param, migrated_template, tmp_path_factory) as url, pytest.MonkeyPatch.context() as mp:
        mp.setattr(live, "STREAM_SECONDS", 0)  # the live feed ends at once: a request reads it to its end
        async with serving(url) as found:
            yield found


@asynccontextmanager
async def serving(url: str):
    async with populated_world(url, auth_failure_limit=10_000) as world:
        app = world.http._transport.app
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), lifespan="off",
                                               log_level="warning", access_log=False))
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        real = {**REAL, "round_id": world.round_id, "case_id": world.case_id, "ref": world.correction,
                "operation_id": f"round-start/{world.round_id}", "request_id": world.dropout}
        try:
            yield world, f"http://127.0.0.1:{server.config.port}", schemathesis.openapi.from_dict(app.openapi()), real
        finally:
            server.should_exit = True
            await task


OPERATION_IDS = sorted(op["operationId"] for path in __import__("api.app", fromlist=["create_app"]).create_app(
    __import__("dmcflow.settings", fromlist=["Settings"]).Settings(database_url="sqlite://")).openapi()["paths"].values()
    for op in path.values())


def cases(operation_id: str, operation, world, real: dict):
    """Mostly callers the matrix allows (so the requests reach the rules); each path parameter the world's
    real id or a generated one, independently (a real school in a round that does not exist...)."""
    names = re.findall(r"{(\w+)}", operation.path)
    if operation_id == "get_dropout_evidence":  # the dropout's own file (the others share the world's PDF)
        real = {**real, "sha256": world.dropout_evidence}
    row = OPS.get(operation_id)  # a route without a matrix row fails there (tests/test_authz_matrix.py)
    allowed = sorted(a for a in (row.allowed if row else ACTORS) if a in world.stack.tokens) or ["admin"]

    def strategy(actor: str, mode: GenerationMode, real_names: frozenset):
        return operation.as_strategy(generation_mode=mode, headers=world.stack.auth(actor),
                                     path_parameters={n: real[n] for n in real_names} or None)

    # all real, all real but one (for each), none real
    subsets = [frozenset(names)] + [frozenset(names) - {n} for n in names] + ([frozenset()] if len(names) > 1 else [])
    return st.tuples(st.one_of(st.sampled_from(allowed), st.sampled_from(allowed), st.sampled_from(ACTORS)),
                     st.sampled_from([GenerationMode.POSITIVE, GenerationMode.POSITIVE, GenerationMode.NEGATIVE]),
                     st.sampled_from(subsets)).flatmap(lambda choice: strategy(*choice))


@pytest.mark.parametrize("operation_id", OPERATION_IDS)
async def test_no_request_gets_a_server_error(served, operation_id):
    world, base_url, schema, real = served
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().definition.raw["operationId"] == operation_id)
    seen: list[int] = []

    # no shrinking: each step is a request to a live stack (minutes); the failure shows its curl command instead
    @settings(max_examples=examples(EXAMPLES_PER_OPERATION), suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(case=cases(operation_id, operation, world, real))
    def run(case):
        response = case.call(base_url=base_url, timeout=60)
        seen.append(response.status_code)
        text = response.content[:300].decode(errors="replace")  # downloads (XLSX, ZIP) are not text
        where = f"{response.status_code} {text}\n{case.as_curl_command()}"
        assert response.status_code < 500, where
        if response.status_code >= 400:
            ctype = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type"), "")
            page = OPS[operation_id].page and ctype.startswith("text/html")  # a page refuses in HTML
            body = page_refusal(response.content.decode()) if page else response.json()
            assert isinstance(body, dict) and body.get("code") and body.get("message_th") and body.get("message_en"), where

    await asyncio.to_thread(run)
    assert seen, "no request was sent"
