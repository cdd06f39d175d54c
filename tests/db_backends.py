"""The database layer's tests run on both backends dmcflow supports: SQLite and PostgreSQL.

Use in a test module (no conftest.py change needed: pytest finds fixtures imported into the module):

    from tests.db_backends import backend_engine, backend_url  # noqa: F401

    def test_something(backend_engine): ...          # runs as test_something[sqlite] and [postgresql]

Each test gets a fresh database migrated to head with db.migrate.upgrade: a temporary SQLite file, or
a new PostgreSQL database created next to DMCFLOW_TEST_POSTGRES_URL (scripts/test.sh starts that
server) and dropped afterwards. Without DMCFLOW_TEST_POSTGRES_URL the PostgreSQL variant is skipped,
except under CI (CI set and not "0"/"false"), where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import Engine, make_url

from db.engine import make_engine
from db.migrate import upgrade

POSTGRES_URL_ENV = "DMCFLOW_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
BOTH_BACKENDS = BACKENDS  # for the API tests: pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def postgres_base_url() -> str:
    """The server's URL, or skip (fail under CI) when scripts/test.sh did not provide one."""
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if url:
        return url
    reason = f"{POSTGRES_URL_ENV} is not set: run the tests with scripts/test.sh to test on PostgreSQL"
    if in_ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """A new, empty database on the server of `base_url` (its role needs CREATEDB); dropped on exit."""
    import psycopg

    base = make_url(base_url).set(drivername="postgresql")
    admin_url = base.render_as_string(hide_password=False)
    name = f"dmcflow_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE may not terminate a backend of another role (an autovacuum worker on the new database):
        # that one ends by itself within moments, so try again.
        for attempt in range(20):
            try:
                with psycopg.connect(admin_url, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.errors.InsufficientPrivilege:
                if attempt == 19:
                    raise
                time.sleep(0.5)


@pytest.fixture(params=BACKENDS)
def backend_url(request, tmp_path) -> Iterator[str]:
    """The URL of a fresh, empty database on each backend (not migrated yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dmcflow.sqlite'}"
        return
    with fresh_postgres_database(postgres_base_url()) as url:
        yield url


@pytest.fixture
def backend_engine(backend_url) -> Iterator[Engine]:
    """An engine on a fresh database of each backend, migrated to head."""
    upgrade(backend_url)
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()
