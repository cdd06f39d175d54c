"""Fixtures of the intake tests: a fresh folder on the real Dovecot that scripts/test.sh starts."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import aioimaplib
import pytest

import intake.imap_poller as imap_poller
from intake.imap_poller import ImapConfig
from tests.db_backends import in_ci


@pytest.fixture
def imap_config() -> ImapConfig:
    host = os.environ.get("DMCFLOW_TEST_IMAP_HOST", "").strip()
    if not host:
        reason = "DMCFLOW_TEST_IMAP_HOST is not set: run the tests with scripts/test.sh to test against Dovecot"
        if in_ci():
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return ImapConfig(host=host, port=int(os.environ["DMCFLOW_TEST_IMAP_PORT"]),
                      username=os.environ["DMCFLOW_TEST_IMAP_USER"],
                      password=os.environ["DMCFLOW_TEST_IMAP_PASSWORD"],
                      mailbox=f"test-{uuid.uuid4().hex[:12]}", poll_seconds=60, idle_seconds=60)


class Mailbox:
    """The test's own (second) connection: drops mail in and looks at what the poller left behind."""

    def __init__(self, client: aioimaplib.IMAP4, name: str):
        self.client, self.name = client, name

    async def append(self, raw: bytes, date: datetime | None = None, mailbox: str | None = None) -> None:
        response = await self.client.append(raw, mailbox=imap_poller._mailbox_arg(mailbox or self.name), date=date)
        assert response.result == "OK", response

    async def uids(self, *criteria: str, mailbox: str | None = None) -> list[int]:
        await self.client.select(imap_poller._mailbox_arg(mailbox or self.name))
        response = await self.client.uid_search(*criteria, charset=None)
        assert response.result == "OK", response
        return [int(t) for line in response.lines[:-1] for t in line.split()]

    async def bodies(self, mailbox: str | None = None) -> list[bytes]:
        found = []
        for uid in await self.uids("ALL", mailbox=mailbox):
            response = await self.client.uid("fetch", str(uid), "(BODY.PEEK[])")
            found += [bytes(line) for line in response.lines if isinstance(line, bytearray)]
        return found


@pytest.fixture
async def mailbox(imap_config) -> AsyncIterator[Mailbox]:
    client = aioimaplib.IMAP4(imap_config.host, imap_config.port)
    await client.wait_hello_from_server()
    assert (await client.login(imap_config.username, imap_config.password)).result == "OK"
    assert (await client.create(imap_config.mailbox)).result == "OK"
    box = Mailbox(client, imap_config.mailbox)
    yield box
    if client.get_state() == "SELECTED":
        await client.close()
    for name in (imap_config.mailbox, imap_config.processed_mailbox):
        if name:
            await client.delete(imap_poller._mailbox_arg(name))
    await client.logout()


