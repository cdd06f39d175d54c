"""A message's lines to its requests (intake.email_parsing.labels, .request_blocks, .quoting): labels as people
type them, where one student's block ends, what a block inherits, what is quoted. Pure: no server, marked fast."""

from __future__ import annotations

import pytest

from domain.correction_requests import Field
from intake.email_parsing.labels import exact_label, label_line
from intake.email_parsing.quoting import drop_quoted
from intake.email_parsing.request_blocks import requests_in, split_blocks
from tests.intake.messages import GCODE, NEW, NEW2, OLD, OLD2, SCHOOL

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("line, expected", [
    ("ชื่อ - สกุล : ด.ช.ทดสอบ", (Field.STUDENT_NAME, "ด.ช.ทดสอบ")),
    ("ชื่อสกุล ด.ช.ทดสอบ", (Field.STUDENT_NAME, "ด.ช.ทดสอบ")),
    ("  2) old_id：G664400000008", (Field.OLD_ID, "G664400000008")),
    ("• NEW ID", (Field.NEW_ID, "")),
    ("๑. เลขประจำตัวประชาชนเดิม 1449900000018", (Field.OLD_ID, "1449900000018")),
    ("ชั้นเรียนที่ 6", None),  # `ชั้น` inside a longer word is no label
    ("Classroom: 6/1", None),
    ("เรียน ผู้อำนวยการเขต", None),
])
def test_label_lines_as_people_type_them(line, expected):
    assert label_line(line) == expected


def test_a_cell_is_a_label_only_when_it_holds_nothing_else():
    assert exact_label(" เลขใหม่ ：") is Field.NEW_ID
    assert exact_label("เลขใหม่: 1449909000012") is None


def test_a_repeated_label_starts_the_next_block_without_blank_lines():
    lines = ["ชื่อ-สกุล: ก", "เลขเดิม: 1", "เลขใหม่: 2", "ชื่อ-สกุล: ข", "เลขเดิม: 3", "ขอบคุณ", "เลขใหม่: 4"]
    assert split_blocks(lines) == [
        {Field.STUDENT_NAME: "ก", Field.OLD_ID: "1", Field.NEW_ID: "2"},
        {Field.STUDENT_NAME: "ข", Field.OLD_ID: "3", Field.NEW_ID: "4"},
    ]


def blocks(*pairs: tuple[str, str], school: str | None = None) -> list[dict[Field, str]]:
    found = []
    for old, new in pairs:
        b = {Field.STUDENT_NAME: "เด็กชายทดสอบ ใจดี", Field.OLD_ID: old, Field.NEW_ID: new}
        found.append({Field.SCHOOL_CODE: school, **b} if school else b)
    return found


def test_a_school_code_above_applies_to_the_blocks_below():
    found = requests_in([{Field.SCHOOL_CODE: SCHOOL}, *blocks((OLD, NEW), (OLD2, NEW2))])
    assert [(r.index, r.school_code) for r in found] == [(1, SCHOOL), (2, SCHOOL)]


def test_a_school_code_named_once_below_applies_to_all():
    found = requests_in([*blocks((OLD, NEW)), {Field.SCHOOL_CODE: "๑๐๔๔๔๔๙๐๐๑"}])
    assert [r.school_code for r in found] == [SCHOOL]


def test_two_different_school_codes_below_are_not_guessed():
    found = requests_in([*blocks((OLD, NEW)), {Field.SCHOOL_CODE: SCHOOL}, {Field.SCHOOL_CODE: "1044449002"}])
    assert [r.school_code for r in found] == [None]


def test_an_empty_template_block_is_no_request():
    empty = {Field.SCHOOL_CODE: SCHOOL, Field.STUDENT_NAME: "", Field.OLD_ID: " ", Field.NEW_ID: ""}
    assert requests_in([empty, *blocks((GCODE, NEW))])[0].old_id == GCODE
    assert requests_in([empty]) == []


@pytest.mark.parametrize("old, new, code", [
    (OLD, OLD, "same_id"),
    (OLD, GCODE, "new_id_not_national_id"),
    (OLD, "1234", "national_id_format"),
    ("", NEW, "missing_field"),
])
def test_what_a_block_alone_can_refuse(old, new, code):
    (request,) = requests_in(blocks((old, new)))
    assert request.problem is not None and request.problem.code == code


def test_a_malformed_id_says_which_field():
    (request,) = requests_in(blocks((OLD, NEW[:-1] + str((int(NEW[-1]) + 1) % 10))))
    assert request.problem.code == "national_id_check_digit"
    assert request.problem.message_en.startswith("New ID: ")
    assert request.problem.message_th.startswith("เลขประจำตัวประชาชนใหม่: ")


@pytest.mark.parametrize("header", ["On Mon, 1 Apr 2024 at 09:00, DMC <dmc@school.ac.th> wrote:",
                                    "เมื่อ จ. 1 เม.ย. 2567 ครูสมศรี เขียนว่า:", "-----Original Message-----",
                                    "---------- Forwarded message ---------"])
def test_below_a_quote_header_nothing_counts(header):
    assert drop_quoted(["เลขใหม่: 1", header, "เลขใหม่: 2"]) == (["เลขใหม่: 1"], True)


def test_outlook_from_then_sent_is_a_quote_but_a_from_line_alone_is_not():
    assert drop_quoted(["a", "From: DMC", "Sent: Monday", "b"]) == (["a"], True)
    assert drop_quoted(["จาก: ครูสมศรี", "เลขใหม่: 1"]) == (["จาก: ครูสมศรี", "เลขใหม่: 1"], False)


def test_gt_quoted_lines_are_skipped_and_the_rest_kept():
    assert drop_quoted(["> เลขใหม่: 9", "เลขใหม่: 1"]) == (["เลขใหม่: 1"], False)
