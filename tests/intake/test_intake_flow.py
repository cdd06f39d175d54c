"""The ID-correction intake end to end: real SMTP in (aiosmtpd), Temporal under time skipping, the API
for the district's review, replies caught by a real SMTP server."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.service import RPCError

from activities.intake import IntakeActivities
from db.engine import session_scope
from db.models import IdCorrection, InboundMessage, Student
from intake.imap_poller import ImapPoller
from tests.intake.env import body, outcome_of, replies
from tests.intake.messages import block, build, find_samples, letter, nid, sign
from tests.stack import SCHOOL, keep_history
from tests.timing import eventually, skip_to
from workflows.ids import id_correction_id, inbound_intake_id

SAMPLES = find_samples(Path(__file__))


@pytest.mark.skipif(SAMPLES is None, reason="shared/samples/emails not found beside the work tree")
async def test_every_sample_gets_its_outcome_and_exactly_one_reply(intake_env, engine, smtp):
    expected = json.loads((SAMPLES / "expected.json").read_text())
    subjects = []
    for case in expected:
        raw = sign((SAMPLES / case["file"]).read_bytes())  # as the school's mail server sends it
        await intake_env.send(raw)
        message_id = next(line.split(":", 1)[1].strip() for line in raw.decode("latin-1").splitlines()
                          if line.lower().startswith("message-id:"))
        [reply] = await eventually(lambda mid=message_id: replies(smtp, mid))
        text = body(reply)
        subjects.append(str(reply["Subject"]))
        assert reply["References"] == message_id and reply["To"] == "dmc@tuayang.ac.th"
        assert text.index("เรียน") < text.index("--\n")  # Thai first, English beneath
        with session_scope(engine) as s:
            rows = s.exec(IdCorrection.__table__.select().where(
                IdCorrection.message_sha == s.exec(InboundMessage.__table__.select().where(
                    InboundMessage.message_id == message_id)).first().sha256)).all()
        if case["expect"] == "accepted":
            assert [(r.old_id, r.new_id, r.status) for r in rows] == [
                (q["old"], q["new"], "pending") for q in case["requests"]], case["file"]
            assert all(r.id in text for r in rows) and "รับเรื่องแล้ว" in text
        else:
            assert [r.status for r in rows] == ["refused"] and rows[0].refusal_code == "national_id_check_digit"
            assert "ไม่รับคำขอนี้" in text and "check digit" in text
        assert rows[0].id in subjects[-1]  # the reply's subject names our own reference, never the sender's subject
    # one school, many replies: a clerk tells them apart in the mailbox
    assert len(set(subjects)) == len(subjects)


async def test_review_approve_reject_expire_and_duplicate_delivery(intake_env, engine, smtp, settings):
    stack = intake_env.stack
    raw = build(letter(block(old="1449900000018", new="1449909000011"), block(old="1449900000026", new="1449909000029"),
                       block(old="G664400000008", new="1449909000037")), message_id="<review@mail.example>")
    await intake_env.send(raw)
    [reply] = await eventually(lambda: replies(smtp, "<review@mail.example>"))
    await intake_env.send(raw)  # delivered twice: one request each, one reply
    await intake_env.send(raw.replace(b"Thu, 18 Apr", b"Fri, 19 Apr"))  # same Message-ID, other bytes
    r = await stack.http.get("/id-corrections?status=pending", headers=stack.auth("district"))
    await eventually(lambda: len(replies(smtp, "<review@mail.example>")) == 1)
    items = r.json()
    assert len(items) == 3 and {i["old_id"] for i in items} == {"1449900000018", "1449900000026", "G664400000008"}
    refs = {i["old_id"]: i["ref"] for i in items}
    assert (await stack.http.get("/id-corrections", headers=stack.auth("other_district"))).json() == []
    assert (await stack.http.get(f"/id-corrections/{refs['G664400000008']}",
                                 headers=stack.auth("other_district"))).status_code == 404
    detail = (await stack.http.get(f"/id-corrections/{refs['G664400000008']}", headers=stack.auth("district"))).json()
    assert detail["message"]["sender"] == "dmc@tuayang.ac.th" and detail["evidence"][0]["content_type"] == "application/pdf"
    pdf = await stack.http.get(detail["evidence"][0]["download"], headers=stack.auth("district"))
    assert pdf.content.startswith(b"%PDF") and pdf.headers["content-disposition"].startswith("attachment")

    r = await stack.http.post(f"/id-corrections/{refs['G664400000008']}/decision", headers=stack.auth("staff"),
                              json={"approve": True})
    assert r.status_code == 403
    r = await stack.http.post(f"/id-corrections/{refs['1449900000026']}/decision", headers=stack.auth("district"),
                              json={"approve": False})
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    r = await stack.http.post(f"/id-corrections/{refs['G664400000008']}/decision", headers=stack.auth("district"),
                              json={"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    r = await stack.http.post(f"/id-corrections/{refs['1449900000026']}/decision", headers=stack.auth("district"),
                              json={"approve": False, "reason": "หลักฐานไม่ชัด"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    r = await stack.http.post(f"/id-corrections/{refs['G664400000008']}/decision", headers=stack.auth("district"),
                              json={"approve": False, "reason": "x"})
    assert r.status_code == 409 and r.json()["code"] == "already_decided"
    with session_scope(engine) as s:
        owned = {row.student_id for row in s.exec(Student.__table__.select().where(Student.school_code == SCHOOL))}
    assert "1449909000037" in owned and "G664400000008" not in owned  # G-code to national ID: the common case

    told = lambda: [m["Subject"] for m in smtp.messages if m["Subject"].startswith("[DMC] คำขอแก้ไข")]  # noqa: E731
    await eventually(lambda: len(told()) == 2)  # approved and rejected: each school told once
    await skip_to(stack, intake_env.cutoff + timedelta(minutes=1))
    expired = await eventually(lambda: [m for m in smtp.messages if m["Subject"].startswith("[DMC]")
                                        and refs["1449900000018"] in m["Subject"]])
    assert "หมดเวลา" in expired[0]["Subject"]
    outcomes = {i["old_id"]: i["status"] for i in (await stack.http.get("/id-corrections",
                                                                        headers=stack.auth("admin"))).json()}
    assert outcomes == {"1449900000018": "expired", "1449900000026": "rejected", "G664400000008": "approved"}
    assert len(told()) == 3  # and expired
    await keep_history(stack, f"id-correction/{refs['1449900000018']}", "v7-intake-id_correction_expired_at_cutoff")
    await keep_history(stack, inbound_intake_id(settings.task_queue), "v7-intake-three_requests_twice_delivered")


async def test_refusals_sender_closed_and_crash_between_store_and_parse(intake_env, engine, smtp, settings):
    stack = intake_env.stack
    forged = build(letter(block(old="1449900000018", new="1449909000011")), message_id="<forged@mail.example>",
                   sender='"dmc@tuayang.ac.th" <attacker@evil.example>')
    await intake_env.send(forged)  # signed by evil.example, registered for no school: kept, never answered
    assert await eventually(lambda: outcome_of(engine, "<forged@mail.example>")) == "refused:sender_not_registered"
    assert (await stack.http.get("/id-corrections", headers=stack.auth("admin"))).json() == []

    # the listener stored the message, then died before handing it over: a restart resumes it
    raw = build(letter(block(old="1449900000018", new="1449909000011")), message_id="<crash@mail.example>")
    assert intake_env.intake.admit(raw, "smtp", await stack.now())[1]
    assert await intake_env.intake.resume() == 1
    await eventually(lambda: replies(smtp, "<crash@mail.example>"))
    assert await intake_env.intake.resume() == 0

    await skip_to(stack, intake_env.cutoff + timedelta(minutes=1))
    late = build(letter(block(old="1449900000034", new="1449909000037")), message_id="<late@mail.example>")
    # received after the cutoff (Temporal's clock, not the sender's Date)
    sha, _ = intake_env.intake.admit(late, "smtp", await stack.now())
    await intake_env.intake.hand_over(sha)
    [reply] = await eventually(lambda: replies(smtp, "<late@mail.example>"))
    assert "ปิดรับการแก้ไข" in body(reply) and "closed" in body(reply)


async def test_a_request_received_in_time_but_handed_over_after_the_cutoff_expires(intake_env, engine, smtp, settings):
    """The intake stored a request a minute before the cutoff and died (or the worker was down); the request
    reaches Temporal after the cutoff. It was on time, so it is acknowledged; nobody can decide it any more,
    so it expires at once and the school is told (it used to wait for a decision forever)."""
    stack = intake_env.stack
    raw = build(letter(block(old="1449900000018", new="1449909000011")), message_id="<eve@mail.example>")
    intake_env.intake.admit(raw, "smtp", intake_env.cutoff - timedelta(minutes=1))
    await skip_to(stack, intake_env.cutoff + timedelta(minutes=1))
    assert await intake_env.intake.resume() == 1
    [reply] = await eventually(lambda: replies(smtp, "<eve@mail.example>"))
    assert "รับเรื่องแล้ว" in body(reply)
    [told] = await eventually(lambda: [m for m in smtp.messages if m["Subject"].startswith("[DMC] คำขอแก้ไข")])
    assert "หมดเวลา" in told["Subject"]
    r = await stack.http.get("/id-corrections", headers=stack.auth("admin"))
    assert [i["status"] for i in r.json()] == ["expired"]


async def test_an_open_request_has_no_workflow_until_the_officer_decides_it(intake_env, engine, settings, smtp):
    """An open request waits for the district without a workflow of its own (issue 18: what the intake costs grows
    with decisions, not with requests). The officer's decision starts it and is applied at once, even when the
    message was read and nothing else ran (the worker died right after)."""
    stack = intake_env.stack
    raw = build(letter(block(old="1449900000018", new="1449909000011")), message_id="<behind@mail.example>")
    sha, _ = intake_env.intake.admit(raw, "smtp", await stack.now())
    IntakeActivities(engine, settings).process_inbound(sha)  # the activity ran; no workflow went any further
    [item] = (await stack.http.get("/id-corrections?status=pending", headers=stack.auth("district"))).json()
    with pytest.raises(RPCError):
        await stack.client.get_workflow_handle(id_correction_id(item["ref"])).describe()
    r = await stack.http.post(f"/id-corrections/{item['ref']}/decision", headers=stack.auth("district"),
                              json={"approve": True})
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    r = await stack.http.post(f"/id-corrections/{item['ref']}/decision", headers=stack.auth("district"),
                              json={"approve": False, "reason": "ซ้ำ"})
    assert r.status_code == 409 and r.json()["code"] == "already_decided"
    await intake_env.intake.hand_over(sha)  # the intake's workflow takes the message up again: one reply
    await eventually(lambda: replies(smtp, "<behind@mail.example>"))
    await keep_history(stack, id_correction_id(item["ref"]), "v7-intake-id_correction_started_by_its_decision")


@pytest.mark.slow
async def test_through_a_real_imap_mailbox_once_even_when_smtp_brought_it_too(intake_env, imap_config, mailbox, smtp):
    raw = build(letter(block(old="1449900000042", new="1449909000045")), message_id="<imap-e2e@mail.example>")
    await mailbox.append(raw)
    poller = ImapPoller(imap_config, intake_env.intake.receive)
    try:
        assert await poller.poll_once() == 1
        [reply] = await eventually(lambda: replies(smtp, "<imap-e2e@mail.example>"))
        assert "รับเรื่องแล้ว" in body(reply)
        assert await poller.poll_once() == 0  # marked only after it was stored
        await intake_env.send(raw)  # the same message through the SMTP way too: no second request or reply
        await mailbox.append(raw.replace(b"Subject:", b"X-Relayed: yes\nSubject:"))
        assert await poller.poll_once() == 1
    finally:
        await poller.close()
    r = await intake_env.stack.http.get("/id-corrections", headers=intake_env.stack.auth("district"))
    assert [i["old_id"] for i in r.json()] == ["1449900000042"]
    await eventually(lambda: statuses(intake_env.stack.engine, "<imap-e2e@mail.example>") == ["duplicate", "processed"])
    assert len(replies(smtp, "<imap-e2e@mail.example>")) == 1


def statuses(engine, message_id: str) -> list[str]:
    """What became of each delivery of one Message-ID (the first processed, the others duplicates)."""
    with session_scope(engine) as s:
        return sorted(r.status for r in s.exec(InboundMessage.__table__.select().where(
            InboundMessage.message_id == message_id)))


async def test_too_large_is_refused_with_the_limit_and_smtp_down_delays_the_reply_once(intake_env, smtp, settings):
    big = build(letter(block(old="1449900000018", new="1449909000011")), message_id="<big@mail.example>",
                attachments=[("scan.pdf", "application/pdf", b"%PDF-1.4\n" + b"0" * (settings.intake_max_bytes + 10))])
    await intake_env.send(big)
    [reply] = await eventually(lambda: replies(smtp, "<big@mail.example>"), timeout=30)
    assert "25 MB" in body(reply) and "เกิน" in body(reply)

    # the outgoing SMTP server is down when the reply is due: it goes out once it is back, once
    catcher_port = smtp.port
    from aiosmtpd.controller import Controller
    down = smtp.controller
    down.stop()
    await intake_env.send(build(letter(block(old="1449900000026", new="1449909000029")),
                                message_id="<while-down@mail.example>"))
    await eventually(lambda: pending_old_ids(intake_env.stack.engine) == ["1449900000026"])  # open, reply waits
    assert replies(smtp, "<while-down@mail.example>") == []
    again = Controller(smtp, hostname=smtp.host, port=catcher_port)
    again.start()
    try:
        await eventually(lambda: replies(smtp, "<while-down@mail.example>"), timeout=60)
        await intake_env.stack.env.sleep(timedelta(minutes=10))  # any retry still scheduled has had its chance
        assert len(replies(smtp, "<while-down@mail.example>")) == 1
    finally:
        again.stop()


def pending_old_ids(engine) -> list[str]:
    with session_scope(engine) as s:
        return [r.old_id for r in s.exec(IdCorrection.__table__.select().where(IdCorrection.status == "pending"))]


@pytest.mark.slow
@pytest.mark.skipif(SAMPLES is None, reason="shared/samples/emails not found beside the work tree")
async def test_every_sample_through_dovecot(intake_env, imap_config, mailbox, smtp, engine):
    expected = json.loads((SAMPLES / "expected.json").read_text())
    for case in expected:
        await mailbox.append(sign((SAMPLES / case["file"]).read_bytes()))
    poller = ImapPoller(imap_config, intake_env.intake.receive)
    try:
        assert await poller.poll_once() == len(expected)
    finally:
        await poller.close()
    await eventually(lambda: len([m for m in smtp.messages if m["In-Reply-To"]]) == len(expected))
    with session_scope(engine) as s:
        rows = {(r.old_id, r.new_id): r.status for r in s.exec(IdCorrection.__table__.select())}
    for case in expected:
        if case["expect"] == "accepted":
            assert all(rows[(q["old"], q["new"])] == "pending" for q in case["requests"]), case["file"]
    assert sorted(rows.values()).count("refused") == 1  # bad-check-digit.eml


# Every row of the spec's table, through each way in: (message id, bytes, expected outcome code).
def spec_table(max_bytes: int) -> list[tuple[str, bytes, str]]:
    def one(mid: str, **fields) -> bytes:
        return build(letter(block(**fields)), message_id=f"<{mid}@mail.example>")

    # signed, so without a NUL and ending in a line break: Dovecot changes both, which breaks the signature, and
    # the message would never get past the door
    broken = sign(b"From: dmc@tuayang.ac.th\r\nTo: idfix@district.example\r\nMessage-ID: <unreadable@mail.example>\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"gone\"\r\n\r\n--other\r\n\xff\xfe\r\n")
    return [
        ("unreadable", broken, "refused:unreadable"),
        ("no-block", build("สวัสดีครับ ขอแก้ไขเลขให้ด้วย", message_id="<no-block@mail.example>"),
         "refused:no_request_block"),
        ("stranger", build(letter(block(old="1449900000018", new="1449909000011")), message_id="<stranger@mail.example>",
                           sender="dmc@elsewhere.example"), "refused:sender_not_registered"),
        ("huge", build(letter(block(old="1449900000018", new="1449909000011")), message_id="<huge@mail.example>",
                       attachments=[("scan.pdf", "application/pdf", b"%PDF-1.4\n" + b"0" * max_bytes)]),
         "refused:too_large"),
        ("check-digit", one("check-digit", old="1449900000018", new="1449909000012"), "national_id_check_digit"),
        ("same", one("same", old="1449900000018", new="1449900000018"), "same_id"),
        ("not-on-roster", one("not-on-roster", old=nid("144990000099"), new="1449909000011"), "not_on_roster"),
        ("other-school", one("other-school", old="1449910000096", new="1449909000011"), "other_school_student"),
        ("taken", one("taken", old="1449900000018", new="1449900000026"), "new_id_taken"),
        ("fine", one("fine", old="1449900000034", new="1449909000037"), "pending"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("way", ["smtp", "imap"])
async def test_every_outcome_of_the_spec_through_each_way_in(way, intake_env, smtp, engine, settings, imap_config,
                                                               mailbox):
    settings.intake_max_bytes = 200_000  # the same rule as 25 MB, without moving 25 MB around
    table = spec_table(settings.intake_max_bytes)
    if way == "smtp":
        for _, raw, _ in table:
            await intake_env.send(raw)
    else:
        for _, raw, _ in table:
            await mailbox.append(raw)
        poller = ImapPoller(imap_config, intake_env.intake.receive)
        try:
            assert await poller.poll_once() == len(table)
        finally:
            await poller.close()
    for mid, _, expected in table:
        got = await eventually(lambda m=mid: outcome_of(engine, f"<{m}@mail.example>"))
        assert got == expected, (mid, got)
        if mid == "stranger":
            continue  # an address registered for no school: kept for the district, never answered
        [reply] = await eventually(lambda m=mid: replies(smtp, f"<{m}@mail.example>"))
        assert reply["Subject"].startswith("Re:") and "--\n" in body(reply)  # Thai, then English beneath
    assert replies(smtp, "<stranger@mail.example>") == []
    assert "195 KB" in body(replies(smtp, "<huge@mail.example>")[0]) or "0.2 MB" in body(
        replies(smtp, "<huge@mail.example>")[0])

    # the same Message-ID again: no second request, no second reply
    await intake_env.send(spec_table(settings.intake_max_bytes)[-1][1])
    # and after the cutoff (the receipt time is the intake's clock, not the sender's Date header)
    await skip_to(intake_env.stack, intake_env.cutoff + timedelta(minutes=1))
    late = build(letter(block(old="1449900000042", new="1449909000045")), message_id="<late-way@mail.example>")
    if way == "smtp":
        sha, _ = intake_env.intake.admit(late, "smtp", await intake_env.stack.now())
        await intake_env.intake.hand_over(sha)
    else:
        await intake_env.intake.receive(late, "imap", await intake_env.stack.now())
    assert await eventually(lambda: outcome_of(engine, "<late-way@mail.example>")) == "refused:closed"
    assert len(replies(smtp, "<fine@mail.example>")) == 1
