"""What the reply says when the parser refuses (mailer.id_correction_refusals): Thai first, English beside, the
limits and fields named as a clerk reads them. Pure: no server, marked fast."""

from __future__ import annotations

import pytest

from domain.correction_requests import LABELS, Field
from domain.ids import normalise_national_id
from domain.refusals import Refusal
from mailer.id_correction_refusals import about, missing_field, no_evidence, no_request_block, too_large

pytestmark = pytest.mark.fast


@pytest.mark.parametrize("max_bytes, shown", [(25 * 1024 * 1024, "25 MB"), (1536 * 1024, "1.5 MB")])
def test_too_large_names_the_limit_in_both_languages(max_bytes, shown):
    problem = too_large(max_bytes)
    assert (problem.code, problem.status) == ("too_large", 413)
    assert f"เกิน {shown}" in problem.message_th and f"larger than {shown}" in problem.message_en


def test_missing_fields_are_all_named_in_order():
    problem = missing_field([Field.STUDENT_NAME, Field.NEW_ID])
    assert problem.message_th == "ไม่ได้ระบุ ชื่อ-สกุล, เลขประจำตัวประชาชนใหม่"
    assert problem.message_en == "Missing: student name, new ID"


def test_no_evidence_says_whether_files_came_that_are_not_evidence():
    assert no_evidence(False).message_en.startswith("No evidence attached")
    assert no_evidence(True).message_en.startswith("The attached files are not PDF, JPEG or PNG")
    assert no_evidence(True).message_th.startswith("ไฟล์แนบไม่ใช่ PDF, JPEG หรือ PNG")


def test_no_request_block_shows_a_block_to_copy_in_each_language():
    problem = no_request_block()
    th_lines = [line for line in problem.message_th.split("\n") if line.endswith(": ...")]
    en_lines = [line for line in problem.message_en.split("\n") if line.endswith(": ...")]
    assert th_lines == [f"{th}: ..." for th in ("รหัสโรงเรียน", "ชื่อ-สกุล", "ชั้น", "เลขประจำตัวประชาชนเดิม",
                                                 "เลขประจำตัวประชาชนใหม่", "เหตุผล")]
    assert en_lines == [f"{label}: ..." for labels in LABELS.values() for label in labels if label.isascii()]


def test_a_field_refusal_keeps_the_domain_code_and_names_the_field():
    with pytest.raises(Refusal) as raised:
        normalise_national_id("1449900000019")
    problem = about(Field.OLD_ID, raised.value)
    assert problem.code == raised.value.code and problem.status == raised.value.status
    assert problem.message_en == f"Old ID: {raised.value.message_en}"
    assert problem.message_th == f"เลขประจำตัวประชาชนเดิม: {raised.value.message_th}"
