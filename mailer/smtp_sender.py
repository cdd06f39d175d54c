"""Delivery through aiosmtplib to the configured SMTP server."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from dmcflow.settings import Settings


def build_message(settings: Settings, *, to: list[str], subject: str, body: str, message_id: str,
                  in_reply_to: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id  # derived from the outbox key: a resend is recognisably the same mail
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg.set_content(body, charset="utf-8")
    return msg


def client(settings: Settings) -> aiosmtplib.SMTP:
    """A connection to the relay (`async with` connects and quits), for one mail or a batch of them.

    `starttls` is required, never opportunistic (None would fall back to plain text when the server does not
    offer it); the certificate is verified against the system's CAs or DMCFLOW_SMTP_TLS_CA_FILE. `off` exists
    only for a loopback catcher: Settings refuses it for any other host."""
    tls = settings.smtp_tls
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host, port=settings.smtp_port,
        username=settings.smtp_username or None, password=settings.smtp_password or None,  # compose passes "" when unset
        use_tls=tls == "implicit", start_tls=tls == "starttls", validate_certs=True,
        cert_bundle=str(settings.smtp_tls_ca_file) if settings.smtp_tls_ca_file else None,
        timeout=settings.smtp_timeout_seconds,
    )


async def send(settings: Settings, msg: EmailMessage) -> None:
    async with client(settings) as smtp:
        await smtp.send_message(msg)
