"""R11 "ทุกรายการ": the school confirms only when every active student is confirmed present or an exception."""

from __future__ import annotations

import pytest

from domain.existence import (
    ExceptionKind, ExistenceCounts, MarkPresentIn, check_exception, check_existence_complete, check_present_selection,
)
from domain.refusals import Refusal
from domain.rounds import ROUND_2566_3
from domain.school_round import BlockingCase, GateProgress, SchoolRoundState, check_can_confirm
from domain.thai_time import bangkok

T_1000 = bangkok(2024, 4, 30, 10, 0)
R10_DONE = dict(students=30, results=30)


def refused(check, *args, **kwargs) -> Refusal:
    with pytest.raises(Refusal) as exc:
        check(*args, **kwargs)
    assert exc.value.message_th and exc.value.message_en
    return exc.value


def state(gate: GateProgress, blocking: list[BlockingCase] | None = None) -> SchoolRoundState:
    return SchoolRoundState(round_id=ROUND_2566_3.id, school_code="1044449001", area="สพม.มหาสารคาม",
                            schedule=ROUND_2566_3.schedule, gate=gate, blocking=blocking or [])


def test_every_student_marked_is_complete_one_missing_is_refused_naming_how_many():
    assert check_existence_complete(ExistenceCounts(students=30, present=28, exceptions=2)) is None
    r = refused(check_existence_complete, ExistenceCounts(students=30, present=28, exceptions=1))
    assert r.code == "existence_incomplete" and r.status == 409
    assert r.message_th.startswith("ยังยืนยันการมีตัวตนของนักเรียนไม่ครบทุกรายการ (ข้อ 11) ขาดอีก 1 คน")
    assert "1 student(s)" in r.message_en


def test_confirmation_needs_every_record_after_the_r10_menus():
    assert check_can_confirm(state(GateProgress(**R10_DONE, present=30)), T_1000) is None
    assert check_can_confirm(state(GateProgress(**R10_DONE, present=29, exceptions=1)), T_1000) is None
    r = refused(check_can_confirm, state(GateProgress(**R10_DONE, present=29)), T_1000)
    assert r.code == "existence_incomplete" and "ขาดอีก 1 คน" in r.message_th
    # R10's menus are reported first: the letter's order of work
    assert refused(check_can_confirm, state(GateProgress(students=30, results=29)), T_1000).code == "gate_3_2_2"
    # a confirmation replayed from before R11's marks is judged without them (workflow.patched)
    assert check_can_confirm(state(GateProgress(**R10_DONE)), T_1000, existence=False) is None


def test_a_dropout_request_marked_as_an_exception_no_longer_blocks():
    cases = [BlockingCase(kind="dropout", ref="DO-1"), BlockingCase(kind="duplicate", ref="dup-1")]
    gate = GateProgress(**R10_DONE, present=28, exceptions=2, excused_cases=["DO-1"])
    r = refused(check_can_confirm, state(gate, cases), T_1000)
    assert r.code == "blocking_cases" and "DO-1" not in r.message_en and "dup-1" in r.message_en
    assert check_can_confirm(state(gate, cases[:1]), T_1000) is None
    # only a dropout request is excused by its mark: the same ref on another kind of case still blocks
    assert refused(check_can_confirm, state(gate, [BlockingCase(kind="duplicate", ref="DO-1")]), T_1000).code \
        == "blocking_cases"
    # without the mark (before R11's marks existed) it blocks as it always did
    assert refused(check_can_confirm, state(gate, cases[:1]), T_1000, existence=False).code == "blocking_cases"


@pytest.mark.parametrize("kind", list(ExceptionKind))
def test_exception_kinds_and_what_each_stands_on(kind):
    if kind is ExceptionKind.transferred_out:
        r = refused(check_exception, kind, "  ", False)
        assert r.code == "exception_note_required" and r.status == 422
        assert check_exception(kind, "ย้ายไป รร.บ้านใหม่ 1 เม.ย.", False) is None
    else:
        r = refused(check_exception, kind, "บันทึก", False)
        assert r.code == "exception_without_case" and r.status == 409
        assert check_exception(kind, None, True) is None


def test_counts_and_their_summary_in_the_gate():
    gate = GateProgress(**R10_DONE, present=27, exceptions=2, exception_kinds={"dropout_request": 2})
    e = gate.summary()["existence"]
    assert e == {"students": 30, "present": 27, "exceptions": 2, "exception_kinds": {"dropout_request": 2},
                 "unmarked": 1, "complete": False}
    assert not GateProgress().existence.complete  # an empty roster is never complete


@pytest.mark.parametrize("body, ok", [
    ({"all": True}, True), ({"grade": "ม.1"}, True), ({"grade": "ม.1", "classroom": "2"}, True),
    ({"students": ["1449900000018"]}, True), ({}, False), ({"all": True, "grade": "ม.1"}, False),
    ({"classroom": "2"}, False), ({"all": False, "students": []}, False),
])
def test_present_takes_exactly_one_selection(body, ok):
    selection = MarkPresentIn.model_validate(body)
    if ok:
        assert check_present_selection(selection) is None
    else:
        assert refused(check_present_selection, selection).code == "existence_selection"
