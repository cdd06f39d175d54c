"""Running the intake: the SMTP listener and, when configured, the IMAP poller, both feeding one Intake."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine
from temporalio.client import Client

from dmcflow.settings import Settings
from intake.imap_poller import ImapConfig, ImapPoller
from intake.pipeline import Intake
from intake.smtp_listener import start_listener

log = logging.getLogger(__name__)


def imap_config(settings: Settings) -> ImapConfig | None:
    if not settings.intake_imap_host:
        return None
    return ImapConfig(host=settings.intake_imap_host, port=settings.intake_imap_port,
                      username=settings.intake_imap_user or "", password=settings.intake_imap_password or "",
                      mailbox=settings.intake_imap_mailbox, processed_mailbox=settings.intake_imap_processed_mailbox,
                      use_ssl=settings.intake_imap_ssl)


async def run_intake(engine: Engine, client: Client, settings: Settings, stop: asyncio.Event) -> None:
    intake = Intake(engine, client, settings)
    resumed = await intake.resume()  # messages stored before a crash, never handed over
    if resumed:
        log.info("intake: %d stored message(s) resumed", resumed)
    listener = start_listener(intake, settings.intake_smtp_host, settings.intake_smtp_port, settings.intake_max_bytes)
    log.info("intake: SMTP on %s:%s", settings.intake_smtp_host, settings.intake_smtp_port)
    try:
        config = imap_config(settings)
        if config is not None:
            log.info("intake: IMAP %s@%s:%s/%s", config.username, config.host, config.port, config.mailbox)
            await ImapPoller(config, intake.receive).run(stop)
        else:
            await stop.wait()
    finally:
        listener.stop()
