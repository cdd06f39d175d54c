"""R8 rules of the dropout consultation: who speaks when, and what the clock does next."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.dropouts import (
    REASONS, STATUS_TH, CommentDropout, DecideDropout, DropoutCalendar, DropoutInput, DropoutState, ThreadEntry,
    WithdrawDropout, apply_comment, check_comment, check_decide, check_withdraw, hold_until, next_due, reason_code,
)
from domain.refusals import Refusal
from domain.rounds import RoundPolicy
from domain.school_round import Actor
from domain.thai_time import bangkok

AREA, SCHOOL = "สพม.มหาสารคาม", "1044449001"
INP = DropoutInput(request_id="DO-1", round_id="r", school_code=SCHOOL, area=AREA, reason="health")
FRIDAY = bangkok(2026, 12, 4, 10)  # before Father's Day (Sat 5, in lieu Mon 7) and Constitution Day (Thu 10)
CAL = DropoutCalendar(cutoff_at=bangkok(2026, 12, 30, 16, 30), holidays=[date(2026, 12, 7), date(2026, 12, 10)])
OFFICER = CommentDropout(message_id=2, actor=Actor(user_id="u-d", role="district"), area=AREA)
STAFF = CommentDropout(message_id=3, actor=Actor(user_id="u-s", role="staff"), school_code=SCHOOL)


def fresh() -> DropoutState:
    return DropoutState(opened_at=FRIDAY, waiting_since=FRIDAY)


def code_of(fn, *args) -> str:
    with pytest.raises(Refusal) as e:
        fn(*args)
    return e.value.code


def test_the_ministry_reasons_are_the_categories_of_the_spec():
    assert len(REASONS) == 16 and reason_code("low_income") == "low_income"
    assert code_of(reason_code, "bored") == "dropout_reason_unknown"


def test_the_district_is_reminded_two_working_days_after_the_request_across_the_weekend_and_holiday():
    # Fri 10.00 → (Sat, Sun, Mon in lieu off) Tue, Wed 10.00
    assert next_due(fresh(), CAL) == (bangkok(2026, 12, 9, 10), "remind_district")


def test_after_the_reminder_the_next_thing_is_the_escalation_five_working_days_on():
    state = fresh()
    state.reminded_wait = state.waits
    # Fri .58, Tue, Wed, (Thu 10 off) Fri 11, Mon 14, Tue 15 10.00
    assert next_due(state, CAL) == (bangkok(2026, 12, 15, 10), "escalate")


def test_a_question_hands_the_request_to_the_school_and_starts_its_own_wait():
    state = fresh()
    state.reminded_wait = state.waits
    asked = bangkok(2026, 12, 9, 11)
    kind = check_comment(INP, state, OFFICER, asked, CAL.cutoff_at)
    assert kind == "question"
    apply_comment(state, ThreadEntry(message_id=2, kind=kind, side="district", by="u-d", at=asked))
    assert state.status == "waiting_school"
    # Wed 11.00 → (Thu off) Fri, Mon 11.00
    assert next_due(state, CAL) == (bangkok(2026, 12, 14, 11), "remind_school")


def test_the_school_answers_then_only_adds_notes_until_asked_again():
    state = fresh()
    apply_comment(state, ThreadEntry(message_id=2, kind="question", side="district", by="u-d", at=FRIDAY))
    assert check_comment(INP, state, STAFF, FRIDAY, CAL.cutoff_at) == "answer"
    apply_comment(state, ThreadEntry(message_id=3, kind="answer", side="school", by="u-s", at=FRIDAY))
    assert state.status == "waiting_district" and state.waits == 3
    assert check_comment(INP, state, STAFF, FRIDAY, CAL.cutoff_at) == "note"
    apply_comment(state, ThreadEntry(message_id=4, kind="note", side="school", by="u-s", at=FRIDAY + timedelta(hours=1)))
    assert state.waits == 3 and state.waiting_since == FRIDAY  # a note does not restart the district's clock


def test_the_cutoff_comes_first_when_it_is_nearer():
    cal = DropoutCalendar(cutoff_at=FRIDAY + timedelta(hours=3), holidays=CAL.holidays)
    assert next_due(fresh(), cal) == (FRIDAY + timedelta(hours=3), "cutoff")


def test_only_the_school_and_its_area_take_part():
    other = CommentDropout(message_id=9, actor=Actor(user_id="x", role="district"), area="สพป.ขอนแก่น เขต 1")
    other_school = CommentDropout(message_id=9, actor=Actor(user_id="x", role="staff"), school_code="1040000009")
    admin = CommentDropout(message_id=9, actor=Actor(user_id="x", role="admin"))
    for c in (other, other_school, admin):
        assert code_of(check_comment, INP, fresh(), c, FRIDAY, CAL.cutoff_at) == "forbidden"


def test_decisions_are_the_area_officers_and_only_while_open_and_before_the_cutoff():
    d = DecideDropout(message_id=5, approve=True, actor=Actor(user_id="u-d", role="district"), area=AREA)
    check_decide(INP, fresh(), d, FRIDAY, CAL.cutoff_at)
    staff = DecideDropout(message_id=5, approve=True, actor=Actor(user_id="u-s", role="staff"), area=None)
    assert code_of(check_decide, INP, fresh(), staff, FRIDAY, CAL.cutoff_at) == "forbidden"
    assert code_of(check_decide, INP, fresh(), d, CAL.cutoff_at, CAL.cutoff_at) == "dropout_cutoff_passed"
    closed = fresh()
    closed.status = "approved"
    assert code_of(check_decide, INP, closed, d, FRIDAY, CAL.cutoff_at) == "dropout_closed"
    assert code_of(check_comment, INP, closed, OFFICER, FRIDAY, CAL.cutoff_at) == "dropout_closed"


def test_the_thread_is_bounded():
    state = fresh()
    for n in range(60):
        apply_comment(state, ThreadEntry(message_id=n, kind="note", side="school", by="u-s", at=FRIDAY))
    assert code_of(check_comment, INP, state, STAFF, FRIDAY, CAL.cutoff_at) == "dropout_thread_full"


def test_the_requesting_schools_staff_may_withdraw_an_open_request_before_the_cutoff():
    own = WithdrawDropout(message_id=9, actor=Actor(user_id="u-s", role="staff", school_code=SCHOOL))
    check_withdraw(INP, fresh(), own, FRIDAY, CAL.cutoff_at)
    for actor in (Actor(user_id="u-x", role="staff", school_code="1044449002"),
                  Actor(user_id="u-r", role="director", school_code=SCHOOL),
                  Actor(user_id="u-d", role="district", area=AREA)):
        assert code_of(check_withdraw, INP, fresh(), WithdrawDropout(message_id=9, actor=actor), FRIDAY,
                       CAL.cutoff_at) == "forbidden"
    settled = fresh()
    settled.status = "rejected"
    assert code_of(check_withdraw, INP, settled, own, FRIDAY, CAL.cutoff_at) == "dropout_closed"
    assert code_of(check_withdraw, INP, fresh(), own, CAL.cutoff_at, CAL.cutoff_at) == "dropout_cutoff_passed"
    withdrawn = fresh()
    withdrawn.status = "withdrawn"
    assert not withdrawn.open and STATUS_TH["withdrawn"] == "โรงเรียนถอนคำขอ"


# --- issue 16: a request the school excused under R11 is decided after the cutoff --------------------------------

DECIDE = DecideDropout(message_id=5, approve=True, actor=Actor(user_id="u-d", role="district"), area=AREA)
HELD_UNTIL = hold_until(CAL.cutoff_at, RoundPolicy())  # what the workflow sets when the cutoff finds it excused
SECOND = timedelta(seconds=1)


def held() -> DropoutState:
    state = fresh()
    state.held_until = HELD_UNTIL
    return state


@pytest.mark.parametrize("excused", [False, True])
def test_a_decision_before_the_cutoff_is_accepted_excused_or_not(excused):
    check_decide(INP, held() if excused else fresh(), DECIDE, CAL.cutoff_at - SECOND, CAL.cutoff_at)


def test_after_the_cutoff_only_an_excused_request_is_decided_until_its_hold_ends():
    assert code_of(check_decide, INP, fresh(), DECIDE, CAL.cutoff_at, CAL.cutoff_at) == "dropout_cutoff_passed"
    check_decide(INP, held(), DECIDE, CAL.cutoff_at, CAL.cutoff_at)
    check_decide(INP, held(), DECIDE, HELD_UNTIL - SECOND, CAL.cutoff_at)
    assert code_of(check_decide, INP, held(), DECIDE, HELD_UNTIL, CAL.cutoff_at) == "dropout_cutoff_passed"
    # the conversation goes on while held: the district asks, the school answers or withdraws
    assert check_comment(INP, held(), OFFICER, CAL.cutoff_at + SECOND, CAL.cutoff_at) == "question"
    own = WithdrawDropout(message_id=9, actor=Actor(user_id="u-s", role="staff", school_code=SCHOOL))
    check_withdraw(INP, held(), own, CAL.cutoff_at + SECOND, CAL.cutoff_at)
    # held or not, a settled request takes no decision
    settled = held()
    settled.status = "approved"
    assert code_of(check_decide, INP, settled, DECIDE, CAL.cutoff_at + SECOND, CAL.cutoff_at) == "dropout_closed"


def test_the_hold_lasts_the_rounds_late_grace_and_is_round_policy():
    assert HELD_UNTIL == CAL.cutoff_at + timedelta(days=30)
    assert hold_until(CAL.cutoff_at, RoundPolicy(late_grace=timedelta(days=3))) == CAL.cutoff_at + timedelta(days=3)


def test_a_held_request_keeps_its_clock_and_closes_when_the_hold_ends():
    state = held()
    state.reminded_wait, state.escalated_at = state.waits, FRIDAY  # reminded and escalated already
    assert next_due(state, CAL) == (HELD_UNTIL, "cutoff")
    state.waits += 1  # a question after the cutoff: its wait is reminded as before
    state.waiting_since = CAL.cutoff_at + timedelta(hours=1)
    at, what = next_due(state, CAL)
    assert what == "remind_district" and CAL.cutoff_at < at < HELD_UNTIL
