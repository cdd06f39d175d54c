"""Every header dmcflow writes reads back as the text it meant, whatever a school's mail put into it.

A reply echoes the school's subject ("Re: ..."); when the school's mailer broke an encoded word, the
intake keeps it as it came (`=?utf-8?b?4Li?=`). dmcflow used to write that text as it was, or as an
`unknown-8bit` encoded word: readers then decoded a broken word, and `dmcflow mail list` crashed.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.header import decode_header, make_header

from hypothesis import given, settings as hyp_settings
from hypothesis import strategies as st

from dmcflow.settings import Settings
from mailer import outbox, smtp_sender
from tests.hypothesis_profiles import examples

ECHOED = "Re: =?utf-8?b?4Li?= ขอแก้ไขเลขประจำตัวประชาชน [ผลการรับคำขอ / receipt]"
PIECES = ["=?", "?=", "utf-8", "?b?", "?q?", "unknown-8bit", " ", "  ", "ก", "แจ้งเตือน ", "\u2028", "\x85", "\t"]
SETTINGS = Settings(mail_from="dmcflow@dmcflow.test")
subjects = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(PIECES)), max_size=60).map("".join)


def written(subject: str, in_reply_to: str | None = None) -> bytes:
    """The bytes dmcflow hands to SMTP for a mail with this subject (as `outbox.deliver` builds it)."""
    msg = smtp_sender.build_message(SETTINGS, to=["dmc@tuayang.ac.th"], subject="-", body="x",
                                    message_id="<a@dmcflow.test>", in_reply_to=in_reply_to)
    outbox.well_formed_headers(msg, subject=subject, in_reply_to=in_reply_to)
    return msg.as_bytes()


def header_lines(raw: bytes, name: bytes) -> list[bytes]:
    head = raw.split(b"\n\n", 1)[0].split(b"\n")
    start = next(i for i, line in enumerate(head) if line.lower().startswith(name.lower() + b":"))
    end = next((i for i in range(start + 1, len(head)) if not head[i][:1].isspace()), len(head))
    return head[start:end]


def strictly_decoded(raw: bytes) -> str:
    """What a strict reader shows (the stdlib's compat32 decoding raises on a broken encoded word)."""
    return str(make_header(decode_header(message_from_bytes(raw)["Subject"])))


@hyp_settings(max_examples=examples(200))
@given(subjects)
def test_any_subject_is_written_as_well_formed_encoded_words_that_read_back_as_written(subject):
    raw = written(subject)
    expected = outbox.one_line(subject)
    lines = header_lines(raw, b"Subject")
    assert all(line.isascii() and len(line) <= 998 for line in lines)
    if not expected.isascii() or "=?" in expected:
        assert all(len(line) <= 78 for line in lines), lines
    assert strictly_decoded(raw) == expected
    parsed = message_from_bytes(raw, policy=policy.default)["Subject"]
    assert parsed == expected and not parsed.defects


def test_a_subject_echoing_a_broken_encoded_word_reads_back_as_the_school_wrote_it():
    raw = written(ECHOED)
    assert b"unknown-8bit" not in raw and b"=?utf-8?b?4Li?=" not in raw  # the literal text is inside a valid word
    assert strictly_decoded(raw) == ECHOED
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == ECHOED


def test_a_long_thai_subject_keeps_its_spaces_when_folded():
    subject = "แจ้งเตือน ¡¡¡ ¡ ¡ " + "ยังไม่ได้ยืนยันข้อมูล ปิดระบบ 30 เม.ย. 2567 16.30 น. " * 3
    raw = written(subject)
    assert len(header_lines(raw, b"Subject")) > 1
    assert strictly_decoded(raw) == outbox.one_line(subject)


def test_a_line_separator_in_a_stored_subject_does_not_stop_the_mail():
    """`\\u2028` is a line break to Python's email package: building the mail used to raise, every retry."""
    raw = written("แจ้งเตือน\u2028โรงเรียน\x85ก")
    assert strictly_decoded(raw) == "แจ้งเตือน โรงเรียน ก"


def test_a_senders_message_id_is_echoed_verbatim_only_when_it_is_a_plain_msg_id():
    odd = "<=?utf-8?b?4Li?=@school.ac.th>"
    raw = written("Re: x", in_reply_to=odd)
    assert header_lines(raw, b"In-Reply-To") == [b"In-Reply-To: " + odd.encode()]
    assert header_lines(raw, b"References") == [b"References: " + odd.encode()]
    for bad in ("<ก@school.ac.th>", "no brackets", "<a b@c>"):
        assert b"In-Reply-To" not in written("Re: x", in_reply_to=bad)


async def test_the_outbox_delivers_the_echoed_subject_intact(engine, settings, smtp):
    from db.engine import session_scope

    with session_scope(engine) as s:
        outbox.enqueue(s, settings, key="reply/1", kind="id_correction_reply", to=["dmc@tuayang.ac.th"],
                       subject=ECHOED, body="รับคำขอแล้ว", in_reply_to="<=?utf-8?b?4Li?=@school.ac.th>")
    assert await outbox.deliver(engine, settings, "reply/1")
    (msg,) = smtp.messages
    assert msg["Subject"] == ECHOED and not msg["Subject"].defects
    raw_subject = next(v for k, v in msg.raw_items() if k == "Subject")
    assert str(make_header(decode_header(raw_subject))) == ECHOED
