"""Issue 15, finding 5: the intake believed the `From:` header. `MAIL FROM:attacker@evil.example` with
`From: <a registered school address>` opened a pending ID correction for that school.

Now a message counts as the school's only when its From domain is authenticated: a DKIM signature the
intake verifies (aligned with the From domain), or the trusted relay's Authentication-Results with
dmarc=pass. Every forgery below claims the registered address of SCHOOL; each is kept, listed for the
district of SCHOOL's area with its reason, opens nothing and is answered by nobody. The same message
properly signed, or vouched for by the trusted relay, is accepted as before. Through SMTP and IMAP.
"""

from __future__ import annotations

from sqlmodel import select

from db.engine import session_scope
from db.models import IdCorrection
from intake.imap_poller import ImapPoller
from tests.intake.conftest import imap_config, mailbox  # noqa: F401  (fixtures)
from tests.intake.env import outcome_of, replies
from tests.intake.messages import block, build, letter, rsa_key, sign
from tests.timing import eventually

RELAY = "mx.district.example"  # the district's relay, trusted by its authserv-id
OLD, NEW = "1449900000018", "1449909000011"  # on SCHOOL's roster; NEW is free
OLD2, NEW2 = "1449900000026", "1449909000029"


def correction_mail(mid: str, old: str = OLD, new: str = NEW, signed: bool = False) -> bytes:
    """SCHOOL's registered address in From, a valid request: unsigned unless `signed`."""
    return build(letter(block(old=old, new=new)), message_id=f"<{mid}@mail.example>", signed=signed)


def relay_says(result: str, authserv_id: str = RELAY) -> bytes:
    return f"Authentication-Results: {authserv_id}; dkim=none; dmarc={result} header.from=tuayang.ac.th\r\n".encode()


def forgeries() -> dict[str, tuple[bytes, str]]:
    """Message id -> (bytes, the reason the district is shown)."""
    return {
        "unsigned": (correction_mail("unsigned"), "no_authentication"),
        "signed-by-evil": (sign(correction_mail("signed-by-evil"), "evil.example"), "dkim_not_aligned"),
        "signed-with-evil-key": (sign(correction_mail("signed-with-evil-key"), key=rsa_key("attacker")), "dkim_fail"),
        "untrusted-relay": (relay_says("pass", "mx.evil.example") + correction_mail("untrusted-relay"), "no_authentication"),
        # the sender wrote a pass under the relay's own (fail) verdict: only the topmost counts
        "injected-under-relay": (relay_says("fail") + b"Received: from evil (evil [203.0.113.9])\r\n"
                                 + relay_says("pass") + correction_mail("injected-under-relay"), "relay_dmarc_fail"),
    }


def genuine_mail() -> dict[str, bytes]:
    return {"dkim-signed": correction_mail("dkim-signed", signed=True),
            "relay-vouched": relay_says("pass") + correction_mail("relay-vouched", OLD2, NEW2)}


async def test_via_smtp_a_forged_school_sender_opens_nothing_gets_no_reply_and_is_listed(intake_env, engine, smtp,
                                                                                          settings):
    settings.intake_authserv_id = RELAY
    forged, genuine = forgeries(), genuine_mail()
    for raw, _ in forged.values():
        await intake_env.send(raw, sender="attacker@evil.example")  # the envelope says who it is: ignored
    for raw in genuine.values():
        await intake_env.send(raw)
    await check(intake_env, engine, smtp, forged, genuine, "smtp")


async def test_via_imap_a_forged_school_sender_opens_nothing_gets_no_reply_and_is_listed(
        intake_env, engine, smtp, settings, imap_config, mailbox):  # noqa: F811  (Dovecot: scripts/test.sh)
    settings.intake_authserv_id = RELAY
    forged, genuine = forgeries(), genuine_mail()
    for raw in [raw for raw, _ in forged.values()] + list(genuine.values()):
        await mailbox.append(raw)
    poller = ImapPoller(imap_config, intake_env.intake.receive)
    try:
        assert await poller.poll_once() == len(forged) + len(genuine)
    finally:
        await poller.close()
    await check(intake_env, engine, smtp, forged, genuine, "imap")


async def check(intake_env, engine, smtp, forged: dict, genuine: dict, way: str) -> None:
    stack = intake_env.stack

    # the genuine ones are accepted as before
    for mid in genuine:
        assert await eventually(lambda m=mid: outcome_of(engine, f"<{m}@mail.example>")) == "pending", mid
    for mid in genuine:
        await eventually(lambda m=mid: replies(smtp, f"<{m}@mail.example>"))

    for mid, (_, reason) in forged.items():
        assert outcome_of(engine, f"<{mid}@mail.example>") == f"refused:{reason}", mid
        assert replies(smtp, f"<{mid}@mail.example>") == [], mid
    assert not [m for m in smtp.messages if m["In-Reply-To"] in {f"<{mid}@mail.example>" for mid in forged}]
    with session_scope(engine) as s:
        opened = s.exec(select(IdCorrection)).all()
    assert sorted(r.old_id for r in opened) == [OLD, OLD2]  # the genuine requests, nothing of the forgeries

    # the district of SCHOOL's area sees each forgery with its reason; another area's does not; schools may not
    r = await stack.http.get("/id-corrections/refused-mail", headers=stack.auth("district"))
    assert r.status_code == 200, r.text
    listed = {i["message_id"]: i for i in r.json()}
    for mid, (_, reason) in forged.items():
        item = listed[f"<{mid}@mail.example>"]
        assert item["reason"]["code"] == reason and item["reason"]["message_th"] and item["reason"]["message_en"]
        assert item["sender"] == "dmc@tuayang.ac.th" and item["via"] == way
    assert (await stack.http.get("/id-corrections/refused-mail", headers=stack.auth("other_district"))).json() == []
    r = await stack.http.get("/id-corrections/refused-mail", headers=stack.auth("staff"))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
