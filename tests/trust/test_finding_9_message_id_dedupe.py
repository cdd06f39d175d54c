"""Issue 15, finding 9 (the intake's part): the Message-ID dedupe was global, so a guessed Message-ID sent
first from another sender silently swallowed a school's real request (no request, no reply).

Now the dedupe is per authenticated sender domain: the same Message-ID from another domain, or from an
unauthenticated forger, is another message; the same Message-ID from the same domain is still one.
"""

from __future__ import annotations

from sqlmodel import select

from db.engine import session_scope
from db.models import InboundMessage
from tests.intake.env import replies
from tests.intake.messages import block, build, letter
from tests.timing import eventually

GUESSED = "<20240418090500.idfix@tuayang.ac.th>"  # what the school's mailer will call its next message


def statuses(engine) -> list[tuple[str, str]]:
    """(sender as read, status) of every delivery of the guessed Message-ID."""
    with session_scope(engine) as s:
        return sorted((r.sender or "", r.status)
                      for r in s.exec(select(InboundMessage).where(InboundMessage.message_id == GUESSED)))


async def test_a_guessed_message_id_from_another_sender_does_not_swallow_the_schools_request(intake_env, engine,
                                                                                              smtp):
    # first another registered school (authenticated, its own domain), then a forger, with the guessed id
    await intake_env.send(build(letter(block(school="1044449002", old="1449910000096", new="1449909000011")),
                                sender="register@banthodlong.ac.th", message_id=GUESSED),
                          sender="register@banthodlong.ac.th")
    await intake_env.send(build(letter(block(old="1449900000026", new="1449909000029")), message_id=GUESSED,
                                signed=False, date="Thu, 18 Apr 2024 09:04:00 +0700"))
    await eventually(lambda: ("register@banthodlong.ac.th", "processed") in statuses(engine))

    # then the school's real request, with that id: it is read, opened and answered
    await intake_env.send(build(letter(block(old="1449900000018", new="1449909000011")), message_id=GUESSED))
    [reply] = await eventually(lambda: [m for m in replies(smtp, GUESSED) if m["To"] == "dmc@tuayang.ac.th"])
    assert "รับเรื่องแล้ว" in reply.get_body(("plain",)).get_content()
    r = await intake_env.stack.http.get("/id-corrections?status=pending", headers=intake_env.stack.auth("district"))
    assert sorted((i["school_code"], i["old_id"]) for i in r.json()) == [("1044449001", "1449900000018"),
                                                                         ("1044449002", "1449910000096")]

    # the school's own mail delivered again (another relay, other bytes, same id): still one request, one reply
    await intake_env.send(build(letter(block(old="1449900000018", new="1449909000011")), message_id=GUESSED,
                                date="Thu, 18 Apr 2024 09:06:00 +0700"))
    await eventually(lambda: ("", "duplicate") in statuses(engine))
    assert statuses(engine) == [("", "duplicate"), ("dmc@tuayang.ac.th", "processed"),
                                ("dmc@tuayang.ac.th", "refused"),  # the forger's: kept, unanswered
                                ("register@banthodlong.ac.th", "processed")]
    assert len([m for m in replies(smtp, GUESSED) if m["To"] == "dmc@tuayang.ac.th"]) == 1
