"""The outbox against a real SMTP catcher: a mail goes out once, even when the database blinks after the send."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.exc import OperationalError

from db.engine import session_scope
from db.models import OutboxMail
from mailer import outbox


def enqueue(engine, settings, key: str) -> None:
    with session_scope(engine) as s:
        outbox.enqueue(s, settings, key=key, kind="reminder", to=["dmc@tuayang.ac.th"], subject="แจ้งเตือน",
                       body="ยังไม่ได้ยืนยันข้อมูล")


async def test_a_database_blip_after_the_send_does_not_send_the_mail_again(engine, settings, smtp, monkeypatch):
    """PostgreSQL restarts just as the SMTP server says 250: marking the row sent fails a few times. The
    delivery waits the blip out instead of failing, so the activity's retry finds the mail sent; it used to
    fail, and the retry sent a second copy (same Message-ID, still a second mail in the school's inbox)."""
    enqueue(engine, settings, "reminder/r/1044449001/12:00")
    real_scope, calls = outbox.session_scope, {"n": 0}

    @contextmanager
    def blinking_scope(eng):
        calls["n"] += 1
        if calls["n"] in (2, 3):  # the writes right after the send: the server is restarting
            raise OperationalError("UPDATE outbox_mail", {}, Exception("server closed the connection unexpectedly"))
        with real_scope(eng) as s:
            yield s

    monkeypatch.setattr(outbox, "session_scope", blinking_scope)
    for _ in range(3):  # the activity and its retries
        try:
            await outbox.deliver(engine, settings, "reminder/r/1044449001/12:00")
            break
        except OperationalError:
            continue
    assert len(smtp.messages) == 1
    with session_scope(engine) as s:
        assert s.get(OutboxMail, "reminder/r/1044449001/12:00").status == "sent"
