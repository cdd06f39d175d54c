"""The school round's stages and refusals (R10-R12 and the 16.30 cutoff)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.refusals import Refusal
from domain.rounds import ROUND_2566_3
from domain.school_round import (
    STAGE_TH,
    BlockingCase,
    Decision,
    GateProgress,
    SchoolRoundState,
    Stage,
    check_can_certify,
    check_can_confirm,
    check_can_withdraw,
    check_extension,
    check_roster_editable,
    stage_at,
)
from domain.thai_time import bangkok

SCHEDULE = ROUND_2566_3.schedule
BEFORE_OPEN = bangkok(2024, 2, 29, 23, 59, 59)
OPENING = bangkok(2024, 3, 1, 0, 0)
APRIL_10 = bangkok(2024, 4, 10, 10, 0)
T_0829_59 = bangkok(2024, 4, 30, 8, 29, 59)
T_0830 = bangkok(2024, 4, 30, 8, 30)
T_1000 = bangkok(2024, 4, 30, 10, 0)
T_1629_59 = bangkok(2024, 4, 30, 16, 29, 59)
T_1630 = bangkok(2024, 4, 30, 16, 30)
NEXT_DAY = bangkok(2024, 5, 1, 9, 0)

COMPLETE = GateProgress(students=10, results=10, repeaters=2, repeat_reasons=2, graduates=3, destinations=3,
                        present=9, exceptions=1)  # R11: every record confirmed present or an exception


def state(*, gate: GateProgress = COMPLETE, confirmed: datetime | None = None, certified: datetime | None = None,
          blocking: list[BlockingCase] | None = None, schedule=SCHEDULE) -> SchoolRoundState:
    return SchoolRoundState(
        round_id=ROUND_2566_3.id, school_code="1044449001", area="สพม.มหาสารคาม", schedule=schedule,
        gate=gate,
        confirmed=Decision(by="staff-1", at=confirmed) if confirmed else None,
        certified=Decision(by="director-1", at=certified) if certified else None,
        blocking=blocking or [],
    )


def refused(check, *args) -> Refusal:
    with pytest.raises(Refusal) as exc:
        check(*args)
    refusal = exc.value
    assert refusal.message_th and refusal.message_en, refusal.code
    return refusal


# --- stages ------------------------------------------------------------------------------------

@pytest.mark.parametrize("now,expected", [
    (BEFORE_OPEN, Stage.not_open),
    (OPENING, Stage.open),
    (APRIL_10, Stage.open),
    (T_0829_59, Stage.open),
    (T_0830, Stage.confirmation_window),
    (T_1629_59, Stage.confirmation_window),
    (T_1630, Stage.late),
    (NEXT_DAY, Stage.late),
])
def test_stage_boundaries_unconfirmed(now, expected, process_tz):
    assert stage_at(now, SCHEDULE, None, None) is expected
    assert state().stage(now) is expected


def test_stage_boundaries_in_other_offsets():
    # The same instants, written in UTC: 01:29:59Z is still open, 09:30Z is late.
    assert stage_at(datetime(2024, 4, 30, 1, 29, 59, tzinfo=timezone.utc), SCHEDULE, None, None) is Stage.open
    assert stage_at(datetime(2024, 4, 30, 1, 30, tzinfo=timezone.utc), SCHEDULE, None, None) is Stage.confirmation_window
    assert stage_at(datetime(2024, 4, 30, 9, 30, tzinfo=timezone.utc), SCHEDULE, None, None) is Stage.late


def test_confirmed_school_is_confirmed_until_the_cutoff_then_late():
    confirmed = Decision(by="staff-1", at=T_1000)
    assert stage_at(T_1629_59, SCHEDULE, confirmed, None) is Stage.confirmed
    # confirmed without the director's certification is still late at 16.30: the district must know
    assert stage_at(T_1630, SCHEDULE, confirmed, None) is Stage.late


def test_certified_stays_certified_after_the_cutoff():
    s = state(confirmed=T_1000, certified=bangkok(2024, 4, 30, 11, 0))
    for now in (T_1629_59, T_1630, NEXT_DAY, bangkok(2025, 1, 1)):
        assert s.stage(now) is Stage.certified


def test_every_stage_has_a_thai_label():
    assert set(STAGE_TH) == set(Stage)
    assert all(STAGE_TH[s] for s in Stage)


# --- gate progress (R10) -------------------------------------------------------------------------

def test_gate_steps_are_cumulative():
    g = GateProgress(students=5, results=4, repeaters=0, graduates=0)
    assert not g.step_322_done and not g.step_3221_done and not g.step_3222_done and not g.complete
    g = GateProgress(students=5, results=5, repeaters=1, repeat_reasons=0, graduates=1, destinations=1)
    # destinations all recorded but 3.2.2.1 is not: 3.2.2.2 is not done either (menus in order)
    assert g.step_322_done and not g.step_3221_done and not g.step_3222_done
    assert COMPLETE.complete
    assert not GateProgress().complete  # an empty roster is never complete
    assert COMPLETE.summary()["steps"] == {"3.2.2": True, "3.2.2.1": True, "3.2.2.2": True}


# --- confirm (R11) -------------------------------------------------------------------------------

@pytest.mark.parametrize("now", [T_0830, T_1000, T_1629_59])
def test_confirm_allowed_in_the_window_when_everything_is_done(now):
    assert check_can_confirm(state(), now) is None


def test_confirm_before_0830_is_window_not_open_and_says_when():
    r = refused(check_can_confirm, state(), T_0829_59)
    assert r.code == "window_not_open"
    assert "30 เม.ย. 2567 08.30 น." in r.message_th


def test_confirm_before_the_round_opens():
    assert refused(check_can_confirm, state(), BEFORE_OPEN).code == "round_not_open"


def test_confirm_empty_roster():
    assert refused(check_can_confirm, state(gate=GateProgress()), T_1000).code == "roster_empty"


def test_confirm_missing_322_reports_how_many():
    r = refused(check_can_confirm, state(gate=GateProgress(students=10, results=7)), T_1000)
    assert r.code == "gate_3_2_2"
    assert "3 คน" in r.message_th and "3.2.2" in r.message_th
    assert "3 student" in r.message_en


def test_confirm_missing_3221():
    gate = GateProgress(students=10, results=10, repeaters=4, repeat_reasons=1, graduates=2, destinations=2)
    r = refused(check_can_confirm, state(gate=gate), T_1000)
    assert r.code == "gate_3_2_2_1"
    assert "3 คน" in r.message_th


def test_confirm_missing_3222():
    gate = GateProgress(students=10, results=10, repeaters=1, repeat_reasons=1, graduates=5, destinations=3)
    r = refused(check_can_confirm, state(gate=gate), T_1000)
    assert r.code == "gate_3_2_2_2"
    assert "2 คน" in r.message_th


def test_confirm_with_open_cases_names_each_in_thai_by_reference():
    cases = [BlockingCase(kind="duplicate", ref="dup-17"), BlockingCase(kind="dropout", ref="drop-3")]
    r = refused(check_can_confirm, state(blocking=cases), T_1000)
    assert r.code == "blocking_cases"
    assert "เรื่องนักเรียนซ้ำซ้อน dup-17" in r.message_th and "คำขอออกกลางคัน drop-3" in r.message_th
    assert "dropout:drop-3" not in r.message_th  # tests/domain/test_blocking_case_names.py: the wording


def test_confirm_twice():
    assert refused(check_can_confirm, state(confirmed=T_1000), T_1629_59).code == "already_confirmed"


def test_confirm_at_the_cutoff():
    assert refused(check_can_confirm, state(), T_1630).code == "round_closed"
    r = refused(check_can_confirm, state(), NEXT_DAY)
    assert r.code == "round_closed"
    assert "30 เม.ย. 2567 16.30 น." in r.message_th


def test_confirm_after_certification():
    assert refused(check_can_confirm, state(confirmed=T_1000, certified=T_1000), T_1629_59).code == "already_certified"


def test_confirm_refusals_in_order_as_a_school_fixes_things():
    """The codes a school meets, one after another, as it works through the day."""
    gate = GateProgress()
    s = state(gate=gate, blocking=[BlockingCase(kind="id_correction", ref="idc-1")])
    codes = []

    def attempt(now):
        try:
            check_can_confirm(s, now)
            codes.append("ok")
        except Refusal as r:
            codes.append(r.code)

    attempt(T_0829_59)                    # too early, whatever else is missing
    attempt(T_0830)                       # in the window, but nobody is on the roster
    s.gate = GateProgress(students=3, results=1, repeaters=1, graduates=1)
    attempt(T_0830)                       # 3.2.2 not done for everyone
    s.gate.results = 3
    attempt(T_0830)                       # 3.2.2.1 reasons missing for the repeater
    s.gate.repeat_reasons = 1
    attempt(T_0830)                       # 3.2.2.2 destination missing for the graduate
    s.gate.destinations = 1
    attempt(T_0830)                       # R11: nobody confirmed present yet
    s.gate.present, s.gate.exceptions = 2, 1
    attempt(T_0830)                       # the ID correction is still open
    s.blocking = []
    attempt(T_1000)                       # now it can
    s.confirmed = Decision(by="staff-1", at=T_1000)
    attempt(T_1000)                       # and not twice
    attempt(T_1630)                       # and nothing after 16.30
    assert codes == ["window_not_open", "roster_empty", "gate_3_2_2", "gate_3_2_2_1", "gate_3_2_2_2",
                     "existence_incomplete", "blocking_cases", "ok", "already_confirmed", "round_closed"]


def test_gate_problems_are_reported_first_step_first():
    # Everything is missing at once: the first menu in the letter's order is the one reported.
    gate = GateProgress(students=4, results=2, repeaters=2, repeat_reasons=0, graduates=2, destinations=0)
    blocking = [BlockingCase(kind="duplicate", ref="d1")]
    assert refused(check_can_confirm, state(gate=gate, blocking=blocking), T_1000).code == "gate_3_2_2"
    # After the cutoff nothing can be fixed any more: the answer is that the round is closed.
    assert refused(check_can_confirm, state(gate=gate, blocking=blocking), T_1630).code == "round_closed"


# --- certify (R12) -------------------------------------------------------------------------------

def test_certify_needs_staff_confirmation_first():
    r = refused(check_can_certify, state(), T_1000)
    assert r.code == "not_confirmed"
    assert check_can_certify(state(confirmed=T_1000), T_1629_59) is None


def test_certify_time_window():
    assert refused(check_can_certify, state(), BEFORE_OPEN).code == "round_not_open"
    assert refused(check_can_certify, state(), T_0829_59).code == "window_not_open"
    assert refused(check_can_certify, state(confirmed=T_1000), T_1630).code == "round_closed"


def test_certify_twice():
    s = state(confirmed=T_1000, certified=T_1000)
    assert refused(check_can_certify, s, T_1629_59).code == "already_certified"
    assert refused(check_can_certify, s, NEXT_DAY).code == "already_certified"


# --- withdraw a confirmation -----------------------------------------------------------------------

def test_withdraw_only_a_confirmation_that_exists():
    assert check_can_withdraw(state(confirmed=T_1000), T_1629_59) is None
    assert refused(check_can_withdraw, state(), T_1000).code == "not_confirmed"
    assert refused(check_can_withdraw, state(), APRIL_10).code == "not_confirmed"


def test_withdraw_after_certification_or_cutoff():
    assert refused(check_can_withdraw, state(confirmed=T_1000, certified=T_1000), T_1000).code == "already_certified"
    assert refused(check_can_withdraw, state(confirmed=T_1000), T_1630).code == "round_closed"


# --- roster edits --------------------------------------------------------------------------------

@pytest.mark.parametrize("now", [OPENING, APRIL_10, T_0829_59, T_0830, T_1629_59])
def test_roster_editable_while_open_and_unconfirmed(now):
    assert check_roster_editable(state(), now) is None


def test_roster_frozen_while_confirmed_and_free_again_after_withdrawal():
    s = state(confirmed=T_1000)
    r = refused(check_roster_editable, s, T_1629_59)
    assert r.code == "roster_frozen"
    assert "ยกเลิกการยืนยัน" in r.message_th  # tells staff the way out
    s.confirmed = None
    assert check_roster_editable(s, T_1629_59) is None


def test_roster_closed_at_the_cutoff():
    assert refused(check_roster_editable, state(), T_1630).code == "round_closed"
    assert refused(check_roster_editable, state(confirmed=T_1000), T_1630).code == "round_closed"
    assert refused(check_roster_editable, state(), NEXT_DAY).code == "round_closed"


def test_roster_not_editable_before_opening_or_after_certification():
    assert refused(check_roster_editable, state(), BEFORE_OPEN).code == "round_not_open"
    assert refused(check_roster_editable, state(confirmed=T_1000, certified=T_1000), T_1000).code == "already_certified"


# --- deadline extensions ---------------------------------------------------------------------------

def test_extension_accepted_for_a_late_school_reopens_its_window():
    s = state()
    assert s.stage(NEXT_DAY) is Stage.late
    new_cutoff = bangkok(2024, 5, 2, 16, 30)
    assert check_extension(s, NEXT_DAY, new_cutoff) is None
    s.schedule = s.schedule.with_cutoff(new_cutoff)
    assert s.stage(NEXT_DAY) is Stage.confirmation_window
    assert check_can_confirm(s, NEXT_DAY) is None
    assert s.stage(new_cutoff) is Stage.late


def test_extension_refusals():
    s = state()
    r = refused(check_extension, s, T_1000, bangkok(2024, 4, 30, 8, 30))
    assert r.code == "extension_before_window" and r.status == 422
    r = refused(check_extension, s, NEXT_DAY, bangkok(2024, 5, 1, 8, 0))
    assert r.code == "extension_in_past" and r.status == 422
    r = refused(check_extension, s, NEXT_DAY, NEXT_DAY)
    assert r.code == "extension_in_past"
    certified = state(confirmed=T_1000, certified=T_1000)
    assert refused(check_extension, certified, T_1000, bangkok(2024, 5, 2, 16, 30)).code == "already_certified"


@pytest.mark.parametrize("new_cutoff", [bangkok(2024, 4, 30, 10, 5), bangkok(2024, 4, 30, 16, 29), T_1630])
def test_an_extension_never_shortens_a_deadline(new_cutoff):
    """At 10.00 on the day, a "new cutoff" of 10.05 (or any time before 16.30) used to be accepted: the
    school lost its afternoon. An extension only moves the cutoff later."""
    r = refused(check_extension, state(), T_1000, new_cutoff)
    assert (r.code, r.status) == ("extension_not_later", 422)
    assert r.message_th.startswith("การขยายเวลาต้องเลื่อนกำหนดส่งให้ช้ากว่าเดิม") and "30 เม.ย. 2567 16.30 น." in r.message_th
    assert "later" in r.message_en
    assert check_extension(state(), T_1000, bangkok(2024, 4, 30, 16, 31)) is None


def test_state_round_trips_through_json():
    s = state(confirmed=T_1000, blocking=[BlockingCase(kind="duplicate", ref="d1")])
    again = SchoolRoundState.model_validate_json(s.model_dump_json())
    assert again == s
    assert again.stage(T_1629_59) is Stage.confirmed
    assert again.confirmed.at == T_1000 and again.confirmed.at.utcoffset() == timedelta(hours=7)
