"""R10: menus 3.2.2 (result), 3.2.2.1 (reasons for repeating), 3.2.2.2 (further study of graduates)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.end_of_year import (
    Destination,
    EndOfYearBatch,
    EndOfYearEntry,
    RepeatReason,
    Result,
    check_entry,
    check_step_order,
)
from domain.grades import is_graduating, normalise_grade
from domain.refusals import Refusal
from domain.rounds import Schedule
from domain.school_round import GateProgress, SchoolRoundState, check_can_confirm
from domain.thai_time import bangkok

STUDENT = "1449900000018"
ALL_GRADES = [f"อ.{i}" for i in range(1, 4)] + [f"ป.{i}" for i in range(1, 7)] + [f"ม.{i}" for i in range(1, 7)]
GRADUATING = {"ป.6", "ม.3", "ม.6"}


def refused(step, entry, grade, current=None) -> Refusal:
    with pytest.raises(Refusal) as exc:
        check_entry(step, entry, grade, current)
    r = exc.value
    assert r.message_th and r.message_en and r.status == 422
    return r


# --- order of the menus ----------------------------------------------------------------------------

def test_322_is_always_open():
    check_step_order("3.2.2", GateProgress(students=5))
    check_step_order("3.2.2", GateProgress())


def test_3221_needs_322_for_every_student():
    with pytest.raises(Refusal) as exc:
        check_step_order("3.2.2.1", GateProgress(students=5, results=4, repeaters=1))
    assert exc.value.code == "step_order"
    assert "3.2.2" in exc.value.message_th
    check_step_order("3.2.2.1", GateProgress(students=5, results=5, repeaters=1))


def test_r10_3222_may_come_before_3221_once_322_is_complete():
    """The letter orders 3.2.2 before the other two menus, not 3.2.2.1 before 3.2.2.2: a school that
    records its graduates' destinations first is not refused (it used to be, with step_order)."""
    gate = GateProgress(students=5, results=5, repeaters=2, repeat_reasons=0, graduates=2)
    check_step_order("3.2.2.2", gate)
    check_step_order("3.2.2.1", GateProgress(students=5, results=5, repeaters=2, graduates=2, destinations=2))
    # the dashboard shows each menu's own progress: 3.2.2.2 done, 3.2.2.1 not
    gate.destinations = 2
    assert gate.summary()["steps"] == {"3.2.2": True, "3.2.2.1": False, "3.2.2.2": True}
    assert not gate.complete


def test_r10_confirmation_still_needs_all_three_menus():
    state = SchoolRoundState(round_id="r", school_code="1044449001", area="a", schedule=Schedule(
        opens_at=bangkok(2024, 3, 1), confirm_from=bangkok(2024, 4, 30, 8, 30), cutoff_at=bangkok(2024, 4, 30, 16, 30)))
    state.gate = GateProgress(students=5, results=5, repeaters=2, repeat_reasons=1, graduates=2, destinations=2)
    with pytest.raises(Refusal) as exc:
        check_can_confirm(state, bangkok(2024, 4, 30, 9))
    assert exc.value.code == "gate_3_2_2_1" and "3.2.2.1" in exc.value.message_th
    state.gate = GateProgress(students=5, results=5, repeaters=2, repeat_reasons=2, graduates=2, destinations=1)
    with pytest.raises(Refusal) as exc:
        check_can_confirm(state, bangkok(2024, 4, 30, 9))
    assert exc.value.code == "gate_3_2_2_2"
    state.gate.destinations = 2
    state.gate.present = 5  # R11: and every record confirmed present
    check_can_confirm(state, bangkok(2024, 4, 30, 9))


def test_3222_refused_when_322_itself_is_incomplete():
    # no repeaters at all, so 3.2.2.1 has nothing to do, but 3.2.2 is still missing one student
    with pytest.raises(Refusal) as exc:
        check_step_order("3.2.2.2", GateProgress(students=5, results=4, graduates=2))
    assert exc.value.code == "step_order"


def test_3221_refused_when_322_itself_is_incomplete():
    with pytest.raises(Refusal) as exc:
        check_step_order("3.2.2.1", GateProgress(students=5, results=4, repeaters=1, graduates=2, destinations=2))
    assert exc.value.code == "step_order" and exc.value.message_th.startswith("ต้องบันทึกเมนู 3.2.2 ")


def test_3222_allowed_when_no_student_repeats():
    check_step_order("3.2.2.2", GateProgress(students=5, results=5, repeaters=0, graduates=2))


# --- 3.2.2: the result -----------------------------------------------------------------------------

def test_322_needs_a_result():
    assert refused("3.2.2", EndOfYearEntry(student=STUDENT), "ม.1").code == "result_required"


@pytest.mark.parametrize("grade", ALL_GRADES)
def test_graduated_only_for_p6_m3_m6(grade):
    entry = EndOfYearEntry(student=STUDENT, result=Result.graduated, years_studied=3)
    if grade in GRADUATING:
        check_entry("3.2.2", entry, grade, None)
        assert is_graduating(grade)
    else:
        r = refused("3.2.2", entry, grade)
        assert r.code == "not_graduating_grade"
        assert grade in r.message_th
        assert not is_graduating(grade)


def test_m6_cannot_be_promoted():
    r = refused("3.2.2", EndOfYearEntry(student=STUDENT, result=Result.promoted), "ม.6")
    assert r.code == "cannot_promote_m6"


@pytest.mark.parametrize("grade", [g for g in ALL_GRADES if g != "ม.6"])
def test_other_grades_can_be_promoted(grade):
    check_entry("3.2.2", EndOfYearEntry(student=STUDENT, result=Result.promoted), grade, None)


@pytest.mark.parametrize("result", [Result.repeat, Result.pending])
@pytest.mark.parametrize("grade", ["อ.1", "ป.6", "ม.6"])
def test_repeat_and_pending_for_any_grade(result, grade):
    check_entry("3.2.2", EndOfYearEntry(student=STUDENT, result=result), grade, None)


# --- 3.2.2.1: reasons for repeating ------------------------------------------------------------------

def test_3221_for_a_repeater_with_reasons():
    entry = EndOfYearEntry(student=STUDENT, reasons=[RepeatReason.attendance, RepeatReason.failed_subjects])
    check_entry("3.2.2.1", entry, "ม.2", "repeat")


@pytest.mark.parametrize("current", [None, "promoted", "graduated", "pending"])
def test_3221_only_for_repeaters(current):
    entry = EndOfYearEntry(student=STUDENT, reasons=[RepeatReason.health])
    assert refused("3.2.2.1", entry, "ม.2", current).code == "not_repeater"


@pytest.mark.parametrize("reasons", [None, []])
def test_3221_needs_at_least_one_reason(reasons):
    entry = EndOfYearEntry(student=STUDENT, reasons=reasons)
    assert refused("3.2.2.1", entry, "ม.2", "repeat").code == "reasons_required"


# --- 3.2.2.2: destination of graduates ---------------------------------------------------------------

@pytest.mark.parametrize("grade", sorted(GRADUATING))
def test_3222_for_a_graduate_with_destination(grade):
    entry = EndOfYearEntry(student=STUDENT, destination=Destination.vocational)
    check_entry("3.2.2.2", entry, grade, "graduated")


@pytest.mark.parametrize("current", [None, "promoted", "repeat", "pending"])
def test_3222_only_for_graduates(current):
    entry = EndOfYearEntry(student=STUDENT, destination=Destination.same_school)
    assert refused("3.2.2.2", entry, "ม.3", current).code == "not_graduate"


def test_3222_needs_a_destination():
    assert refused("3.2.2.2", EndOfYearEntry(student=STUDENT), "ม.6", "graduated").code == "destination_required"


# --- shape of what is sent ---------------------------------------------------------------------------

def test_batch_needs_records_and_a_known_step():
    with pytest.raises(ValidationError):
        EndOfYearBatch(step="3.2.2", records=[])
    with pytest.raises(ValidationError):
        EndOfYearBatch(step="3.2.3", records=[{"student": STUDENT, "result": "promoted"}])
    batch = EndOfYearBatch(step="3.2.2", records=[{"student": STUDENT, "result": "repeat", "years_studied": 2}])
    assert batch.records[0].result is Result.repeat


@pytest.mark.parametrize("bad", [{"result": "expelled"}, {"years_studied": -1}, {"years_studied": 21},
                                 {"reasons": ["lazy"]}, {"destination": "moon"}])
def test_entry_values_outside_the_menus_are_refused(bad):
    with pytest.raises(ValidationError):
        EndOfYearEntry(student=STUDENT, **bad)


# --- grades (what check_entry is given) --------------------------------------------------------------

@pytest.mark.parametrize("raw,grade", [("ม.6", "ม.6"), ("ม6", "ม.6"), ("ม. 3", "ม.3"), ("ป.๖", "ป.6"), (" อ.1 ", "อ.1")])
def test_grade_normalised(raw, grade):
    assert normalise_grade(raw) == grade


@pytest.mark.parametrize("raw", ["อ.4", "ป.7", "ม.7", "ม.0", "ม.1.5", "ก.1", "", "ม.٣"])
def test_grade_refused(raw):
    with pytest.raises(Refusal) as exc:
        normalise_grade(raw)
    assert exc.value.code == "grade_format"
