"""The refusal of a confirmation that open cases block, as the school's staff read it (issue 16): each case
named in Thai, its kind, its reference and who must act, never raw codes; the student's name in Thai only."""

from __future__ import annotations

import pytest

from domain.refusals import Refusal
from domain.rounds import ROUND_2566_3
from domain.school_round import (
    BlockingCase,
    GateProgress,
    NamedCase,
    SchoolRoundState,
    blocking_cases_refusal,
    check_can_confirm,
)
from domain.thai_time import bangkok

T_1000 = bangkok(2024, 4, 30, 10, 0)
# R10 done and, for R11, the one student confirmed present
READY = GateProgress(students=1, results=1, present=1)


def blocked_by(*cases: BlockingCase) -> Refusal:
    state = SchoolRoundState(round_id=ROUND_2566_3.id, school_code="1044449001", area="สพม.มหาสารคาม",
                             schedule=ROUND_2566_3.schedule, gate=READY, blocking=list(cases))
    with pytest.raises(Refusal) as exc:
        check_can_confirm(state, T_1000)
    return exc.value


def test_the_workflow_refusal_names_each_case_its_kind_and_who_must_act_in_thai():
    r = blocked_by(BlockingCase(kind="dropout", ref="drop-1"), BlockingCase(kind="duplicate", ref="dup-abc"))
    assert r.code == "blocking_cases" and r.status == 409
    assert r.message_th == ("ยังยืนยันข้อมูลไม่ได้ มีเรื่องค้าง 2 เรื่องที่ต้องได้ข้อยุติก่อน: "
                            "คำขอออกกลางคัน drop-1 (รอเขตพื้นที่พิจารณา); "
                            "เรื่องนักเรียนซ้ำซ้อน dup-abc (รอโรงเรียนแจ้งข้อมูลนักเรียน หรือเขตพื้นที่พิจารณา)")
    assert "dropout:" not in r.message_th + r.message_en and "duplicate:" not in r.message_th + r.message_en
    assert r.message_en.startswith("Cannot confirm yet: 2 open case(s) must be settled first: dropout request drop-1")
    # the references ride along, so the API can name the students for the school's staff
    assert r.as_dict()["cases"] == [{"kind": "dropout", "ref": "drop-1"}, {"kind": "duplicate", "ref": "dup-abc"}]


@pytest.mark.parametrize("waiting_on, th", [
    ("district", "รอเขตพื้นที่พิจารณา"),
    ("school_answer", "รอโรงเรียนตอบคำถามของเขตพื้นที่"),
    ("school_declare", "รอโรงเรียนแจ้งว่านักเรียนยังเรียนอยู่ที่โรงเรียน (แนบหลักฐาน) หรือไม่ได้เรียนอยู่แล้ว"),
    ("holder_district", "รอเขตพื้นที่ของโรงเรียนที่มีชื่อนักเรียนอยู่พิจารณาเปิดเรื่อง"),
])
def test_a_named_case_says_whose_student_and_who_must_act(waiting_on, th):
    r = blocking_cases_refusal([NamedCase(kind="duplicate", ref="dup-9", student="เด็กหญิงมาลี ใจดี", waiting_on=waiting_on)])
    assert r.message_th.endswith(f": เรื่องนักเรียนซ้ำซ้อน dup-9 ของ เด็กหญิงมาลี ใจดี ({th})")
    assert "มาลี" not in r.message_en and "มาลี" not in str(r)  # the English line is what logs show


def test_a_case_without_a_student_on_the_school_records_is_named_by_kind_and_reference_only():
    r = blocking_cases_refusal([NamedCase(kind="id_correction", ref="IDC-7")])
    assert r.message_th.endswith(": คำขอแก้ไขเลขประจำตัวประชาชน IDC-7 (รอเขตพื้นที่พิจารณา)")
