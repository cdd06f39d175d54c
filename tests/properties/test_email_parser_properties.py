"""The ID-correction email parser under any input (id-correction-email.md): it never raises, and every
message comes back with an outcome a reply can be written from."""

from __future__ import annotations

import re

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.correction_requests import ParsedMessage
from domain.evidence import sniff_evidence
from domain.ids import is_gcode, is_national_id
from intake.email_parsing.message import parse_message
from tests.hypothesis_profiles import examples
from tests.properties.email_strategies import SAMPLE_BYTES, any_mail, messages, mutated_samples

MESSAGE_PROBLEMS = {"too_large", "unreadable", "no_request_block", "no_evidence"}
REQUEST_PROBLEMS = {"missing_field", "national_id_format", "national_id_first_digit", "national_id_check_digit",
                    "gcode_format", "school_code_format", "new_id_not_national_id", "same_id"}
WHOLE_ID = re.compile(r"(?<![0-9])[0-8][0-9]{12}(?![0-9])|G[0-9]{12}")


def summary(parsed: ParsedMessage) -> tuple:
    return (parsed.message_id, parsed.sender, parsed.subject, parsed.problem and parsed.problem.code,
            [(r.index, r.old_id, r.new_id, r.school_code, r.problem and r.problem.code) for r in parsed.requests],
            [(a.sha256, a.filename, a.evidence_type) for a in parsed.attachments])


def check_outcome(raw: bytes, parsed: ParsedMessage) -> None:
    assert isinstance(parsed, ParsedMessage)
    assert parsed.size == len(raw)
    # one outcome for the reply: accepted as a whole, or one message-level reason in Thai and English
    if parsed.problem is not None:
        assert parsed.problem.code in MESSAGE_PROBLEMS, parsed.problem.code
        assert parsed.problem.message_th and parsed.problem.message_en
    else:
        assert parsed.requests and parsed.evidence
    if not parsed.requests:
        assert parsed.problem is not None and parsed.problem.code in {"unreadable", "no_request_block", "too_large"}
    for number, request in enumerate(parsed.requests, start=1):
        assert request.index == number
        if request.problem is None:
            assert is_national_id(request.new_id)
            assert is_national_id(request.old_id) or is_gcode(request.old_id)
            assert request.old_id != request.new_id and request.student_name
        else:
            assert request.problem.code in REQUEST_PROBLEMS, request.problem.code
            assert request.problem.message_th and request.problem.message_en
    for attachment in parsed.attachments:
        assert attachment.evidence_type == sniff_evidence(attachment.content)  # the bytes decide, not the name
        if attachment.filename is not None:
            assert attachment.filename and not re.search(r"[/\\\x00-\x1f]", attachment.filename)
    if parsed.sender is not None:
        assert parsed.sender == parsed.sender.lower() and "@" in parsed.sender and " " not in parsed.sender
    # what reaches a log line about the requests: no whole student identifier (a Message-ID or an address
    # may hold 13 digits that happen to check: those are the sender's, not a student's)
    assert not [m for m in WHOLE_ID.findall(repr(parsed.requests)) if is_national_id(m) or is_gcode(m)]


@settings(max_examples=examples(250))
@given(raw=any_mail)
def test_any_message_gets_an_outcome_and_never_an_exception(raw):
    parsed = parse_message(raw)
    event(f"outcome: {parsed.problem.code if parsed.problem else 'accepted'}")
    event(f"requests accepted: {min(3, sum(r.accepted for r in parsed.requests))}")
    check_outcome(raw, parsed)
    assert summary(parse_message(raw)) == summary(parsed)  # the same bytes read the same way twice


@settings(max_examples=examples(100))
@given(raw=st.one_of(messages(), mutated_samples()), limit=st.integers(0, 4000))
def test_a_message_over_the_limit_is_refused_with_the_limit_whatever_it_holds(raw, limit):
    parsed = parse_message(raw, max_bytes=limit)
    check_outcome(raw, parsed)
    if len(raw) > limit:
        assert parsed.problem.code == "too_large" and parsed.problem.status == 413
        assert not parsed.requests and not parsed.attachments  # not read beyond its headers


def test_the_samples_are_in_the_mutation_pool():
    """The mutated-sample strategy is not silently empty (shared/samples/emails is laid beside the clone)."""
    assert len(SAMPLE_BYTES) >= 5


def test_addresses_and_ids_with_control_characters_or_too_long_are_not_trusted():
    """Found on PostgreSQL: a NUL or a 300-character address could be stored, and failed there."""
    from intake.email_parsing.headers import sender_address

    assert sender_address(["dmc\x00@tuayang.ac.th"]) is None
    assert sender_address(["x" * 250 + "@tuayang.ac.th"]) is None
    assert sender_address(["โรงเรียน <DMC@Tuayang.ac.th>"]) == "dmc@tuayang.ac.th"
    parsed = parse_message(("From: a@b.cc\r\nMessage-ID: <a\x00b@c>\r\nSubject: x\r\n\r\n"
                            "ชื่อ-สกุล: ด.ช.\x00ทดสอบ\r\n").encode())
    assert parsed.message_id == "<ab@c>" and "\x00" not in (parsed.requests[0].student_name or "")
