"""Reading ID-correction emails (shared/docs/id-correction-email.md): pure parsing, no I/O but the samples."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from pathlib import Path

import pytest

from domain.correction_requests import LABELS, CorrectionRequest, Field, ParsedMessage
from domain.refusals import Refusal
from intake.email_parsing.headers import sender_address
from intake.email_parsing.message import MAX_BYTES, parse_message
from tests.intake.messages import (
    ENGLISH_LABELS,
    EVIDENCE,
    EXE,
    GCODE,
    JPEG,
    NEW,
    NEW2,
    NEW3,
    OLD,
    OLD2,
    OLD3,
    PDF,
    PNG,
    SCHOOL,
    SENDER,
    attachment_part,
    block,
    build,
    find_samples,
    html_table,
    letter,
    nid,
    text_part,
)

SAMPLES = find_samples(Path(__file__))
needs_samples = pytest.mark.skipif(SAMPLES is None, reason="shared/samples/emails not found above the clone")


def _expected() -> list[dict]:
    if SAMPLES is None:
        return [{"file": "(samples not found)"}]
    return json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))


def assert_refusal(problem: Refusal | None, code: str) -> Refusal:
    """Thai first, English beside it, stable code."""
    assert isinstance(problem, Refusal), f"expected refusal {code}, got none"
    assert problem.code == code, f"{problem.code}: {problem.message_en}"
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in problem.message_th)
    assert problem.message_en and problem.message_en.isascii()
    return problem


def ids(parsed: ParsedMessage) -> list[tuple[str | None, str | None]]:
    return [(r.old_id, r.new_id) for r in parsed.requests]


def accepted(parsed: ParsedMessage, *pairs: tuple[str, str]) -> None:
    """The message is fine and carries exactly these requests, none refused."""
    assert parsed.problem is None, parsed.problem and parsed.problem.code
    assert ids(parsed) == list(pairs)
    assert [r.problem for r in parsed.requests] == [None] * len(pairs), [repr(r) for r in parsed.requests]


# --- the shared samples ------------------------------------------------------------------------------

@needs_samples
@pytest.mark.parametrize("case", _expected(), ids=lambda c: c["file"])
def test_sample_outcome(case):
    parsed = parse_message((SAMPLES / case["file"]).read_bytes())
    assert parsed.sender == SENDER
    assert parsed.message_id and parsed.message_id.startswith("<sample-")
    assert [a.filename for a in parsed.evidence] == ["หลักฐาน.pdf"]  # RFC 2231 continuation, decoded
    if case["expect"] == "accepted":
        accepted(parsed, *[(r["old"], r["new"]) for r in case["requests"]])
        assert all(r.school_code == SCHOOL for r in parsed.requests)
    else:
        assert case["reason"] == "check digit"
        assert parsed.problem is None  # the message is fine; its request is not
        assert len(parsed.requests) == 1
        assert_refusal(parsed.requests[0].problem, "national_id_check_digit")


@needs_samples
def test_sample_headers_and_fields():
    parsed = parse_message((SAMPLES / "basic-utf8.eml").read_bytes())
    assert parsed.subject == "ขอแก้ไขเลขประจำตัวประชาชนนักเรียน โรงเรียนตัวอย่างวิทยา"
    assert parsed.date == datetime(2024, 4, 18, 2, 5, tzinfo=timezone.utc)
    assert parsed.date.utcoffset() == timedelta(hours=7)
    (request,) = parsed.requests
    assert request.index == 1
    assert request.student_name == "เด็กชายปวีณา พลอยงาม"
    assert request.grade == "ม.1/1"
    assert request.reason == "เลขไม่ตรงกับทะเบียนบ้าน"
    assert request.raw[Field.OLD_ID] == "1449900000018"
    (pdf,) = parsed.attachments
    assert pdf.evidence_type == "application/pdf" and pdf.sha256 == hashlib.sha256(pdf.content).hexdigest()


@needs_samples
def test_two_blocks_sample_numbers_its_blocks():
    parsed = parse_message((SAMPLES / "two-blocks.eml").read_bytes())
    assert [r.index for r in parsed.requests] == [1, 2]
    assert [r.grade for r in parsed.requests] == ["ม.4/1", "ม.5/2"]


# --- charsets and transfer encodings -------------------------------------------------------------------

@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
@pytest.mark.parametrize("charset", ["utf-8", "tis-620", "windows-874"])
def test_every_charset_and_transfer_encoding(charset, cte):
    parsed = parse_message(build(letter(block(name="เด็กหญิงศุภชัย แสนสุข")), charset=charset, cte=cte))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].student_name == "เด็กหญิงศุภชัย แสนสุข"
    assert parsed.requests[0].reason == "เลขไม่ตรงกับทะเบียนบ้าน"


@pytest.mark.parametrize(("declared", "actual"), [
    ("utf-8", "tis-620"),  # TIS-620 bytes labelled UTF-8
    ("tis-620", "utf-8"),  # UTF-8 bytes labelled TIS-620
    ("iso-8859-1", "utf-8"),  # a Western default on Thai text
    ("iso-8859-1", "windows-874"),
    (None, "tis-620"),  # no charset at all
    (None, "utf-8"),
    ("x-no-such-charset", "utf-8"),
])
@pytest.mark.parametrize("cte", ["8bit", "base64"])
def test_wrong_or_missing_charset(declared, actual, cte):
    parsed = parse_message(build(letter(block(name="นายอรอุมา คำมูล")), charset=declared, encode_as=actual, cte=cte))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].student_name == "นายอรอุมา คำมูล"


def test_windows_874_extras_decode():
    """windows-874 has characters TIS-620 lacks (curly quotes, ellipsis): read as cp874."""
    parsed = parse_message(build(letter(block(reason="“ผิด” ตามทะเบียนบ้าน…")), charset="tis-620", cte="8bit"))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].reason == "“ผิด” ตามทะเบียนบ้าน…"


# --- HTML ------------------------------------------------------------------------------------------

def test_html_only_label_value_table():
    rows = [["รหัสโรงเรียน", SCHOOL], ["ชื่อ-สกุล", "เด็กชาย <b>ทดสอบ</b>&nbsp;ใจดี"], ["ชั้น", "ป.6/1"],
            ["เลขประจำตัวประชาชนเดิม", OLD], ["เลขประจำตัวประชาชนใหม่", "1-4499-09000-01-" + NEW[-1]],
            ["เหตุผล", "เลขไม่ตรง<br>กับทะเบียนบ้าน"]]
    html = f"<html><head><style>td {{color: red}}</style></head><body><p>เรียน เจ้าหน้าที่</p>{html_table(rows)}" \
           "<p>ขอแสดงความนับถือ</p></body></html>"
    parsed = parse_message(build(html=html))
    accepted(parsed, (OLD, NEW))
    request = parsed.requests[0]
    assert request.student_name == "เด็กชาย ทดสอบ ใจดี"
    assert request.school_code == SCHOOL
    assert request.reason == "เลขไม่ตรง กับทะเบียนบ้าน"


def test_html_numbered_and_side_by_side_label_tables():
    numbered = [["1", "ชื่อ-สกุล", "เด็กชายหนึ่ง"], ["2", "เลขเดิม", OLD], ["3", "เลขใหม่", NEW]]
    pairs = [["ชื่อ-สกุล", "เด็กหญิงสอง", "ชั้น", "ป.2"], ["เลขเดิม", OLD2, "เลขใหม่", NEW2]]
    parsed = parse_message(build(html=html_table(numbered) + html_table(pairs)))
    accepted(parsed, (OLD, NEW), (OLD2, NEW2))
    assert [r.student_name for r in parsed.requests] == ["เด็กชายหนึ่ง", "เด็กหญิงสอง"]
    assert parsed.requests[1].grade == "ป.2"


def test_html_only_header_row_table_is_one_block_per_row():
    header = ["ลำดับ", "รหัสโรงเรียน", "ชื่อ-สกุล", "ชั้น", "เลขเดิม", "เลขใหม่", "เหตุผล"]
    rows = [header,
            ["1", SCHOOL, "เด็กชายหนึ่ง ใจดี", "ป.1", OLD, NEW, "สะกดผิด"],
            ["2", SCHOOL, "เด็กหญิงสอง ใจดี", "ป.2", OLD2, NEW2, ""],
            ["3", SCHOOL, "เด็กชายสาม ใจดี", "", GCODE, NEW3, "ได้เลขประจำตัวแล้ว"]]
    parsed = parse_message(build(html=f"<div>เรียน เขต</div>{html_table(rows, header=True)}"))
    accepted(parsed, (OLD, NEW), (OLD2, NEW2), (GCODE, NEW3))
    assert [r.student_name for r in parsed.requests] == ["เด็กชายหนึ่ง ใจดี", "เด็กหญิงสอง ใจดี", "เด็กชายสาม ใจดี"]
    assert [r.grade for r in parsed.requests] == ["ป.1", "ป.2", None]
    assert [r.reason for r in parsed.requests] == ["สะกดผิด", None, "ได้เลขประจำตัวแล้ว"]
    assert [r.index for r in parsed.requests] == [1, 2, 3]


def test_html_header_table_in_a_layout_table_with_school_code_above():
    rows = [["Student name", "Old ID", "New ID"], ["เด็กชายหนึ่ง", OLD, NEW], ["เด็กหญิงสอง", OLD2, NEW2]]
    html = f"<table><tr><td><p><b>รหัสโรงเรียน:</b> {SCHOOL}</p>{html_table(rows, header=True)}</td></tr></table>"
    parsed = parse_message(build(html=html))
    accepted(parsed, (OLD, NEW), (OLD2, NEW2))
    assert [r.school_code for r in parsed.requests] == [SCHOOL, SCHOOL]


def test_html_paragraph_labels():
    html = "".join(f"<p><b>{line.split(': ')[0]}</b>: {line.split(': ')[1]}</p>\n" for line in block().splitlines())
    accepted(parse_message(build(html=html)), (OLD, NEW))


def test_rows_pasted_from_a_spreadsheet_into_plain_text():
    rows = ["ที่\tชื่อ-สกุล\tชั้น\tเลขเดิม\tเลขใหม่", f"1\tเด็กชายหนึ่ง\tป.1\t{OLD}\t{NEW}",
            f"2\tเด็กหญิงสอง\t\t{GCODE}\t{NEW2}"]
    parsed = parse_message(build(letter(f"รหัสโรงเรียน: {SCHOOL}\n" + "\n".join(rows) + "\n")))
    accepted(parsed, (OLD, NEW), (GCODE, NEW2))
    assert [r.student_name for r in parsed.requests] == ["เด็กชายหนึ่ง", "เด็กหญิงสอง"]
    assert [r.school_code for r in parsed.requests] == [SCHOOL, SCHOOL]


def test_alternative_text_and_html_is_one_message():
    text = letter(block())
    rows = [["รหัสโรงเรียน", SCHOOL], ["ชื่อ-สกุล", "เด็กชายทดสอบ ใจดี"], ["เลขเดิม", OLD], ["เลขใหม่", NEW]]
    parsed = parse_message(build(text, html=html_table(rows)))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].grade == "ป.6/1"  # from the text part, which the HTML lacks


def test_alternative_falls_back_to_html_when_text_has_no_request():
    rows = [["ชื่อ-สกุล", "เด็กชายทดสอบ ใจดี"], ["เลขเดิม", OLD], ["เลขใหม่", NEW]]
    parsed = parse_message(build("Your mail client cannot show this message.", html=html_table(rows)))
    accepted(parsed, (OLD, NEW))


def test_html_quotes_are_not_requests():
    old_request = "".join(f"<div>{line}</div>" for line in block(old=OLD2, new=NEW2).splitlines())
    html = ("".join(f"<div>{line}</div>" for line in block().splitlines())
            + f"<div class='gmail_quote'><div class='gmail_attr'>On Mon wrote:</div>{old_request}</div>"
            + f"<blockquote type='cite'>{old_request}</blockquote>")
    accepted(parse_message(build(html=html)), (OLD, NEW))


def test_html_outlook_reply_header_cuts_the_quote():
    html = ("".join(f"<p>{line}</p>" for line in block().splitlines())
            + "<div id='divRplyFwdMsg'><b>From:</b> district<br><b>Sent:</b> Monday</div>"
            + "".join(f"<p>{line}</p>" for line in block(old=OLD2, new=NEW2).splitlines()))
    accepted(parse_message(build(html=html)), (OLD, NEW))


def test_html_scripts_and_comments_are_not_text():
    html = ("<script>document.write('เลขเดิม: 1')</script><!-- เลขใหม่: 2 -->"
            + "".join(f"<p>{line}</p>" for line in block().splitlines()))
    accepted(parse_message(build(html=html)), (OLD, NEW))


# --- labels, separators, digits --------------------------------------------------------------------

def test_thai_digits_with_dashes_and_spaces():
    thai = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")
    old = f"{OLD[0]}-{OLD[1:5]}-{OLD[5:10]}-{OLD[10:12]}-{OLD[12]}".translate(thai)
    new = f"{NEW[0]} {NEW[1:5]} {NEW[5:10]} {NEW[10:12]} {NEW[12]}".translate(thai)
    parsed = parse_message(build(letter(block(school=SCHOOL.translate(thai), old=old, new=new))))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].school_code == SCHOOL
    assert parsed.requests[0].raw[Field.OLD_ID] == old


def test_english_labels_any_case():
    labels = {k: v.upper() if i % 2 else v.lower() for i, (k, v) in enumerate(ENGLISH_LABELS.items())}
    parsed = parse_message(build(letter(block(labels=labels, name="Somchai Jaidee", reason="typo"))))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].student_name == "Somchai Jaidee"
    assert parsed.requests[0].reason == "typo"


@pytest.mark.parametrize("sep", ["：", " ： ", ":", "  :  ", " ", "   ", "\t", " \t "])
def test_separators(sep):
    parsed = parse_message(build(letter(block(sep=sep))))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].student_name == "เด็กชายทดสอบ ใจดี"


@pytest.mark.parametrize(("old_label", "new_label"), [
    ("เลขประจำตัวประชาชนเดิม", "เลขประจำตัวประชาชนใหม่"), ("เลขเดิม", "เลขใหม่"), ("เลขเดิม", "เลขที่ถูกต้อง"),
    ("Old ID", "New ID"), ("old id", "NEW ID"),
])
@pytest.mark.parametrize("name_label", ["ชื่อ-สกุล", "ชื่อ-นามสกุล", "ชื่อนักเรียน", "Student Name", "ชื่อ - สกุล"])
def test_every_label_of_the_spec(old_label, new_label, name_label):
    labels = {"school": "รหัสโรงเรียน", "name": name_label, "grade": "ชั้น", "old": old_label, "new": new_label,
              "reason": "สาเหตุ"}
    parsed = parse_message(build(letter(block(labels=labels))))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].student_name == "เด็กชายทดสอบ ใจดี"
    assert parsed.requests[0].reason == "เลขไม่ตรงกับทะเบียนบ้าน"


def test_labels_do_not_match_inside_longer_words():
    body = letter(block(grade=None)) + ("ชั้นเรียนนี้มีนักเรียน 30 คน\nClassroom: 5\nเลขประจำตัวประชาชนของครู 3\n"
                                        "เลขประจำตัวประชาชน: 3\nOldest ID: 9\nSchool bus code: 1\nReasonable: 2\n")
    parsed = parse_message(build(body))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].grade is None


def test_every_spec_label_is_known():
    assert set(LABELS) == set(Field)
    assert "ชั้น" in LABELS[Field.GRADE] and "เลขที่ถูกต้อง" in LABELS[Field.NEW_ID]


def test_bulleted_and_numbered_lines():
    body = "\n".join(f"{i}. {line}" for i, line in enumerate(block().splitlines(), 1))
    accepted(parse_message(build(body)), (OLD, NEW))
    body = "\n".join(f"- {line}" for line in block().splitlines())
    accepted(parse_message(build(body)), (OLD, NEW))


def test_zero_width_spaces_and_decomposed_sara_am():
    body = block().replace("ประจำ", "ประจ\u0e4d\u0e32").replace("รหัส", "รหัส\u200b")
    accepted(parse_message(build(body)), (OLD, NEW))


# --- several blocks ------------------------------------------------------------------------------------

def test_blocks_without_blank_lines_between():
    body = block() + block(name="เด็กหญิงสอง", old=OLD2, new=NEW2) + block(name="เด็กชายสาม", old=OLD3, new=NEW3)
    parsed = parse_message(build(letter(body)))
    accepted(parsed, (OLD, NEW), (OLD2, NEW2), (OLD3, NEW3))
    assert [r.index for r in parsed.requests] == [1, 2, 3]


def test_school_code_once_at_the_top_applies_to_all_blocks():
    body = f"รหัสโรงเรียน: {SCHOOL}\n\n" + block(school=None) + "\n" + block(school=None, old=OLD2, new=NEW2)
    parsed = parse_message(build(letter(body)))
    accepted(parsed, (OLD, NEW), (OLD2, NEW2))
    assert [r.school_code for r in parsed.requests] == [SCHOOL, SCHOOL]
    assert Field.SCHOOL_CODE not in parsed.requests[1].raw  # inherited, not written there


def test_a_later_school_code_applies_from_its_block_on():
    other = "1044449002"
    body = block() + block(school=other, old=OLD2, new=NEW2) + block(school=None, old=OLD3, new=NEW3)
    parsed = parse_message(build(letter(body)))
    assert [r.school_code for r in parsed.requests] == [SCHOOL, other, other]


def test_school_code_only_under_the_signature():
    body = block(school=None) + "\nขอแสดงความนับถือ\nครูธุรการ\nรหัสโรงเรียน " + SCHOOL + "\n"
    parsed = parse_message(build(body))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].school_code == SCHOOL


def test_no_school_code_is_not_refused_here():
    """Required only when the sender is registered for several schools: the caller decides."""
    parsed = parse_message(build(letter(block(school=None))))
    accepted(parsed, (OLD, NEW))
    assert parsed.requests[0].school_code is None


def test_an_empty_template_block_is_not_a_request():
    empty = "ชื่อ-สกุล:\nเลขประจำตัวประชาชนเดิม:\nเลขประจำตัวประชาชนใหม่:\nเหตุผล:\n"
    accepted(parse_message(build(letter(block() + "\n" + empty))), (OLD, NEW))


# --- quoted earlier messages ---------------------------------------------------------------------------

@pytest.mark.parametrize("attribution", [
    "On Thu, 18 Apr 2024 at 09:05, DMC <dmc@tuayang.ac.th> wrote:",
    "เมื่อ พฤ. 18 เม.ย. 2567 เวลา 09:05 DMC <dmc@tuayang.ac.th> เขียนว่า:",
    "-----Original Message-----",
    "----- ข้อความต้นฉบับ -----",
    "---------- Forwarded message ---------",
])
def test_everything_below_a_quote_header_is_ignored(attribution):
    older = block(name="เด็กชายเก่า", old=OLD2, new=NEW2)
    parsed = parse_message(build(letter(block()) + "\n" + attribution + "\n\n" + older))
    accepted(parsed, (OLD, NEW))


@pytest.mark.parametrize("header", ["From: DMC <dmc@tuayang.ac.th>\nSent: Thursday\nTo: district",
                                    "จาก: DMC <dmc@tuayang.ac.th>\nส่ง: 18 เมษายน 2567 9:05\nถึง: เขต"])
def test_outlook_from_sent_header_cuts_the_quote(header):
    body = letter(block()) + "\n" + header + "\n\n" + block(old=OLD2, new=NEW2)
    accepted(parse_message(build(body)), (OLD, NEW))


def test_gt_quoted_lines_are_ignored():
    quoted = "".join(f"> {line}\n" for line in block(old=OLD2, new=NEW2).splitlines())
    nested = "".join(f">> {line}\n" for line in block(old=OLD3, new=NEW3).splitlines())
    parsed = parse_message(build(quoted + "\n" + letter(block()) + nested))
    accepted(parsed, (OLD, NEW))


def test_a_reply_quoting_only_the_old_request_has_no_request():
    body = "ส่งหลักฐานเพิ่มเติมค่ะ\n\nOn Mon, 15 Apr 2024 DMC wrote:\n" + block()
    parsed = parse_message(build(body))
    assert parsed.requests == ()
    assert_refusal(parsed.problem, "no_request_block")


# --- headers -------------------------------------------------------------------------------------------

def test_rfc2047_subject_in_thai_charsets():
    subject = "ขอแก้ไขเลขประจำตัวประชาชนนักเรียน โรงเรียนตัวอย่างวิทยา"
    assert parse_message(build(block(), subject=subject)).subject == subject
    utf8 = Header(subject, "utf-8", maxlinelen=40).encode()  # folded over several encoded-words
    tis = "=?tis-620?b?" + base64.b64encode(subject.encode("cp874")).decode() + "?="
    win = "=?windows-874?q?" + "".join(f"={b:02X}" for b in "ขอแก้ไข".encode("cp874")) + "?= Re"
    for raw_subject, expected in ((utf8, subject), (tis, subject), (win, "ขอแก้ไข Re")):
        raw = build(block(), subject="PLACEHOLDER").replace(b"PLACEHOLDER", raw_subject.encode())
        assert parse_message(raw).subject == expected


def test_raw_8bit_subject():
    raw = build(block(), subject="x").replace(b"Subject: x", "Subject: ขอแก้ไขเลข".encode())
    assert parse_message(raw).subject == "ขอแก้ไขเลข"


def test_message_ids_and_date():
    parsed = parse_message(build(block(), message_id=" <abc.123@mail.example> ", headers={
        "In-Reply-To": "<prev@district.example>", "References": "<a@x>\n <prev@district.example>"},
        date="Thu, 18 Apr 2024 09:05:00 -0000"))
    assert parsed.message_id == "<abc.123@mail.example>"
    assert parsed.in_reply_to == "<prev@district.example>"
    assert parsed.references == ("<a@x>", "<prev@district.example>")
    assert parsed.date == datetime(2024, 4, 18, 9, 5, tzinfo=timezone.utc)


def test_missing_or_broken_headers_are_none():
    parsed = parse_message(build(block(), message_id=None, date=None))
    assert parsed.message_id is None and parsed.date is None
    parsed = parse_message(build(block(), date="the day after tomorrow"))
    assert parsed.date is None
    accepted(parsed, (OLD, NEW))


@pytest.mark.parametrize(("from_header", "expected"), [
    ("Tuayang School <DMC@TuaYang.ac.th>", SENDER),
    ("DMC@tuayang.ac.th", SENDER),
    ('"dmc@tuayang.ac.th" <evil@example.com>', "evil@example.com"),
    ("dmc@tuayang.ac.th <evil@example.com>", "evil@example.com"),
    ("=?utf-8?q?dmc=40tuayang=2Eac=2Eth_=3Cdmc=40tuayang=2Eac=2Eth=3E?= <evil@example.com>", "evil@example.com"),
    ("evil@example.com (dmc@tuayang.ac.th)", "evil@example.com"),
    ('"School <dmc@tuayang.ac.th>" <evil@example.com>', "evil@example.com"),
    ("<dmc@tuayang.ac.th>, <evil@example.com>", None),  # two authors: trust neither
    ("undisclosed-recipients:;", None),
    ("not an address", None),
    ("<dmc@tuayang.ac.th> <evil@example.com>", None),
])
def test_sender_is_the_real_address_never_the_display_name(from_header, expected):
    assert parse_message(build(block(), sender=from_header)).sender == expected


def test_raw_8bit_display_name():
    raw = build(block(), sender="PLACEHOLDER").replace(b"PLACEHOLDER", "โรงเรียน dmc@x.ac.th <dmc@tuayang.ac.th>".encode())
    assert parse_message(raw).sender == SENDER


def test_an_address_hidden_in_an_encoded_word_is_no_address():
    assert parse_message(build(block(), sender="=?utf-8?q?=3Cdmc=40tuayang=2Eac=2Eth=3E?=")).sender is None


def test_two_from_headers_trust_neither():
    raw = build(block(), sender="dmc@tuayang.ac.th").replace(b"From:", b"From: evil@example.com\nFrom:", 1)
    assert parse_message(raw).sender is None
    assert sender_address([]) is None


# --- attachments ---------------------------------------------------------------------------------------

def test_pdf_jpeg_png_are_evidence_with_sha256():
    files = [("บัตร.pdf", "application/pdf", PDF), ("บ้าน.jpg", "image/jpeg", JPEG), ("scan.png", "image/png", PNG)]
    parsed = parse_message(build(block(), attachments=files))
    accepted(parsed, (OLD, NEW))
    assert [(a.filename, a.evidence_type) for a in parsed.evidence] == [
        ("บัตร.pdf", "application/pdf"), ("บ้าน.jpg", "image/jpeg"), ("scan.png", "image/png")]
    assert [a.sha256 for a in parsed.attachments] == [hashlib.sha256(c).hexdigest() for _, _, c in files]
    assert [a.content for a in parsed.attachments] == [PDF, JPEG, PNG]
    assert "content=" not in repr(parsed.attachments[0])


def test_declared_types_and_names_do_not_make_evidence():
    files = [("setup.exe", "application/octet-stream", EXE), ("หลักฐาน.pdf", "application/pdf", b"MZ not a pdf"),
             ("photo.png", "image/png", JPEG)]
    parsed = parse_message(build(block(), attachments=files))
    assert [a.is_evidence for a in parsed.attachments] == [False, False, True]
    assert parsed.attachments[2].evidence_type == "image/jpeg"  # what the bytes are, not what was declared
    assert parsed.attachments[2].content_type == "image/png"
    accepted(parsed, (OLD, NEW))


def test_only_non_evidence_attachments():
    files = [("setup.exe", "application/octet-stream", EXE), ("หลักฐาน.pdf", "application/pdf", b"<html>")]
    parsed = parse_message(build(block(), attachments=files))
    assert_refusal(parsed.problem, "no_evidence")
    assert "PDF" in parsed.problem.message_th
    assert ids(parsed) == [(OLD, NEW)]  # the requests are still read, for the reply


def test_no_attachment_at_all():
    parsed = parse_message(build(block(), attachments=()))
    assert_refusal(parsed.problem, "no_evidence")


def test_inline_photo_counts_as_evidence():
    related = MIMEMultipart("related")
    related.attach(text_part("<p>" + block().replace("\n", "<br>") + "</p>", subtype="html"))
    related.attach(attachment_part("image001.jpg", "image/jpeg", JPEG, inline=True))
    parsed = parse_message(build(body_part=related, attachments=()))
    accepted(parsed, (OLD, NEW))
    assert [a.filename for a in parsed.evidence] == ["image001.jpg"]


def test_attachment_filenames_cannot_carry_paths():
    parsed = parse_message(build(block(), attachments=[("../../etc/บัตร.pdf", "application/pdf", PDF)]))
    assert parsed.attachments[0].filename == "บัตร.pdf"


def test_a_text_attachment_is_not_the_body():
    parsed = parse_message(build("ตามไฟล์แนบ", attachments=[*EVIDENCE, ("request.txt", "text/plain", block().encode())]))
    assert_refusal(parsed.problem, "no_request_block")
    assert len(parsed.attachments) == 2


# --- size, broken input ------------------------------------------------------------------------------

def test_over_the_size_limit():
    small = build(block())
    raw = small + b"\n" + b"0" * (MAX_BYTES - len(small))  # an epilogue, to weigh one byte too much
    assert len(raw) == MAX_BYTES + 1
    parsed = parse_message(raw)
    problem = assert_refusal(parsed.problem, "too_large")
    assert "25 MB" in problem.message_th and "25 MB" in problem.message_en
    assert parsed.requests == () and parsed.attachments == ()
    assert parsed.sender == SENDER and parsed.message_id == "<t-1@mail.example>"  # to answer it, once
    assert parsed.size == len(raw)


def test_size_limit_is_a_parameter():
    raw = build(block())
    assert parse_message(raw, max_bytes=len(raw)).problem is None
    problem = assert_refusal(parse_message(raw, max_bytes=len(raw) - 1).problem, "too_large")
    assert parse_message(b"x" * (3 * 1024 * 1024), max_bytes=2 * 1024 * 1024).problem.message_en.count("2 MB") == 1
    assert problem.message_th


@pytest.mark.parametrize("raw", [
    b"", b"\x00\xff\xfe garbage \x80\x81", "ไม่ใช่อีเมล".encode("cp874"), b"From: a@b.c\n\nhello",
    b"Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\n" + "เลขเดิม".encode(),
    b"Content-Type: multipart/mixed; boundary=abc\nMIME-Version: 1.0\n\nno boundary ever appears",
    b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n!!!not base64***",
    b"Subject: =?utf-8?b?####?=\nFrom: =?x?q?=ZZ?= <\n\n",
    b"Content-Type: text/html\n\n" + b"<div>" * 5000,
])
def test_broken_input_never_raises(raw):
    parsed = parse_message(raw)
    assert parsed.problem is not None and parsed.problem.code in ("unreadable", "no_request_block", "no_evidence")
    assert_refusal(parsed.problem, parsed.problem.code)


def test_crlf_line_endings_as_smtp_delivers_them():
    raw = build(letter(block()), cte="quoted-printable", subject="ขอแก้ไขเลขประจำตัวประชาชนนักเรียน ยาวมากพอที่จะพับบรรทัด")
    parsed = parse_message(raw.replace(b"\n", b"\r\n"))
    accepted(parsed, (OLD, NEW))
    assert parsed.subject == "ขอแก้ไขเลขประจำตัวประชาชนนักเรียน ยาวมากพอที่จะพับบรรทัด"
    assert parsed.requests[0].reason == "เลขไม่ตรงกับทะเบียนบ้าน"


def test_html_with_inline_data_uri_image():
    html = "<p>" + block().replace("\n", "<br>") + "</p><img src='data:image/png;base64," + "A" * 3_000_000 + "'>"
    accepted(parse_message(build(html=html)), (OLD, NEW))


def test_an_attached_earlier_message_is_not_read():
    earlier = MIMEMultipart("mixed")
    earlier.attach(text_part(block(old=OLD2, new=NEW2)))
    forwarded = MIMEMultipart("mixed")
    forwarded.attach(text_part(letter(block())))
    forwarded.attach(MIMEMessage(earlier))
    for filename, content_type, data in EVIDENCE:
        forwarded.attach(attachment_part(filename, content_type, data))
    parsed = parse_message(build(body_part=forwarded, attachments=()))
    accepted(parsed, (OLD, NEW))
    assert [a.content_type for a in parsed.attachments] == ["message/rfc822", "application/pdf"]


def test_multipart_without_its_boundary_is_unreadable():
    raw = (b"From: dmc@tuayang.ac.th\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"
           b"--lost\nContent-Type: application/pdf\n\n%PDF-1.4\n--lost--\n")
    parsed = parse_message(raw)
    assert_refusal(parsed.problem, "unreadable")
    assert parsed.attachments == () and parsed.sender == SENDER
    assert "NoBoundaryInMultipartDefect" in parsed.defects


def test_garbage_is_unreadable():
    assert_refusal(parse_message(b"\x00\xff\xfe garbage \x80\x81").problem, "unreadable")
    assert_refusal(parse_message(b"").problem, "unreadable")


def test_truncated_mime_still_reads_what_arrived():
    raw = build(letter(block()))
    truncated = raw[: raw.index(b"JVBER") + 8]  # cut inside the attachment
    parsed = parse_message(truncated)
    assert ids(parsed) == [(OLD, NEW)]
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_refusals_explain_the_template():
    problem = assert_refusal(parse_message(build("สวัสดีครับ")).problem, "no_request_block")
    for labels in LABELS.values():
        for label in labels:
            assert label in (problem.message_en if label.isascii() else problem.message_th)
    assert_refusal(parse_message(b"\x00\x01").problem, "unreadable")
    assert "เลขประจำตัวประชาชนใหม่" in parse_message(b"\x00\x01").problem.message_th


def test_fuzz_never_raises():
    rng = random.Random(20240430)
    seeds = [build(letter(block())), build(html=html_table([["เลขเดิม", OLD], ["เลขใหม่", NEW]])),
             build(block(), attachments=[("a.png", "image/png", PNG), ("b.jpg", "image/jpeg", JPEG)])]
    if SAMPLES is not None:
        seeds += [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
    inputs: list[bytes] = []
    for _ in range(100):
        inputs.append(bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400))))
    for _ in range(100):
        seed = bytearray(rng.choice(seeds))
        cut = seed[: rng.randrange(len(seed) + 1)]
        for _ in range(rng.randrange(4)):  # and a few flipped bytes
            if cut:
                cut[rng.randrange(len(cut))] = rng.randrange(256)
        inputs.append(bytes(cut))
    assert len(inputs) == 200
    for raw in inputs:
        parsed = parse_message(raw)
        assert isinstance(parsed, ParsedMessage)
        assert parsed.problem is None or parsed.problem.code in (
            "unreadable", "no_request_block", "no_evidence", "too_large")
        for request in parsed.requests:
            assert isinstance(request, CorrectionRequest)


# --- request-level refusals -------------------------------------------------------------------------

def test_missing_new_id():
    parsed = parse_message(build(letter(block(new=None))))
    (request,) = parsed.requests
    problem = assert_refusal(request.problem, "missing_field")
    assert request.missing == (Field.NEW_ID,)
    assert "เลขประจำตัวประชาชนใหม่" in problem.message_th and "new ID" in problem.message_en
    assert request.old_id == OLD and request.new_id is None


def test_missing_several_fields_names_them_all():
    parsed = parse_message(build(letter(block(name=None, new="")) + "\n"))
    (request,) = parsed.requests
    problem = assert_refusal(request.problem, "missing_field")
    assert request.missing == (Field.STUDENT_NAME, Field.NEW_ID)
    assert "ชื่อ-สกุล" in problem.message_th and "student name" in problem.message_en


def test_same_old_and_new():
    (request,) = parse_message(build(block(new=f"{OLD[:1]}-{OLD[1:]}"))).requests
    assert_refusal(request.problem, "same_id")


def test_gcode_to_national_id_is_the_common_case():
    parsed = parse_message(build(letter(block(old=GCODE, new=NEW))))
    accepted(parsed, (GCODE, NEW))
    parsed = parse_message(build(letter(block(old="g-6644-0000-0008", new=NEW))))
    accepted(parsed, (GCODE, NEW))


def test_gcode_as_new_id_is_refused():
    (request,) = parse_message(build(block(old=OLD, new=GCODE))).requests
    assert_refusal(request.problem, "new_id_not_national_id")
    assert request.new_id is None


@pytest.mark.parametrize(("old", "new", "code"), [
    (OLD, NEW[:-1] + str((int(NEW[-1]) + 1) % 10), "national_id_check_digit"),
    (OLD, "12345", "national_id_format"),
    (OLD, nid("944990900001"), "national_id_first_digit"),
    (OLD[:-1] + str((int(OLD[-1]) + 1) % 10), NEW, "national_id_check_digit"),
    ("G12345", NEW, "gcode_format"),
    ("ไม่ทราบ", NEW, "national_id_format"),
])
def test_malformed_ids_use_the_domain_codes(old, new, code):
    (request,) = parse_message(build(block(old=old, new=new))).requests
    problem = assert_refusal(request.problem, code)
    which = "เลขประจำตัวประชาชนเดิม" if old != OLD else "เลขประจำตัวประชาชนใหม่"
    assert problem.message_th.startswith(which)


def test_malformed_school_code():
    (request,) = parse_message(build(block(school="10444"))).requests
    assert_refusal(request.problem, "school_code_format")


def test_one_bad_block_does_not_spoil_the_others():
    body = block() + block(old=OLD2, new=OLD2) + block(old=OLD3, new=None)
    parsed = parse_message(build(letter(body)))
    assert parsed.problem is None
    assert [r.problem and r.problem.code for r in parsed.requests] == [None, "same_id", "missing_field"]


# --- hooks for the checks that need the database ----------------------------------------------------------

def test_callers_add_their_refusals_first_one_stands():
    parsed = parse_message(build(block()))
    request = parsed.requests[0]
    not_on_roster = Refusal("not_on_roster", "ไม่พบนักเรียนในโรงเรียน", "Not on the school's roster", 422)
    refused = request.refused(not_on_roster)
    assert refused.problem is not_on_roster and request.problem is None
    assert refused.refused(Refusal("other", "อื่น", "other")).problem is not_on_roster
    unregistered = Refusal("sender_not_registered", "ผู้ส่งไม่ได้ลงทะเบียน", "Sender not registered", 403)
    assert parsed.refused(unregistered).problem is unregistered


def test_repr_hides_personal_data():
    parsed = parse_message(build(block(name="เด็กชายลับ ลับมาก")))
    text = repr(parsed)
    assert OLD not in text and NEW not in text and "ลับ" not in text
    assert "1449900000" not in repr(parsed.requests[0])
