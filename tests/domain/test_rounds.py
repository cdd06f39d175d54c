"""Round data: the AY 2566 round-3 letter's instants, reminders and extensions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from domain.rounds import ROUND_2566_3, SHIPPED_ROUNDS, RoundPolicy, RoundSpec, Schedule
from domain.thai_time import bangkok

UTC = timezone.utc


def test_round_2566_3_has_the_letters_instants(process_tz):
    # 1 Mar 2567 00.00, 30 Apr 2567 08.30 and 16.30 Asia/Bangkok (UTC+7), written here in UTC.
    assert ROUND_2566_3.opens_at == datetime(2024, 2, 29, 17, 0, tzinfo=UTC)
    assert ROUND_2566_3.confirm_from == datetime(2024, 4, 30, 1, 30, tzinfo=UTC)
    assert ROUND_2566_3.cutoff_at == datetime(2024, 4, 30, 9, 30, tzinfo=UTC)
    assert ROUND_2566_3.academic_year == 2566
    assert SHIPPED_ROUNDS[ROUND_2566_3.id] is ROUND_2566_3


def test_round_2566_3_displays_in_thai(process_tz):
    assert ROUND_2566_3.display() == {
        "opens_at": "1 มี.ค. 2567 00.00 น.",
        "confirm_from": "30 เม.ย. 2567 08.30 น.",
        "cutoff_at": "30 เม.ย. 2567 16.30 น.",
        "final_exam_on": "29 มี.ค. 2567",
    }


def test_r7_final_exam_date_is_round_data():
    """The letter gives no exam date; on its own date (29 Mar 2567) it says the roster holds only students who
    sat the final exam (ข้อ 2), so that is 2566-3's boundary. A round that does not say uses its opening day;
    an exam after the cutoff's day is refused."""
    from datetime import date
    assert ROUND_2566_3.exam_date == date(2024, 3, 29)
    unsaid = RoundSpec(id="r1", academic_year=2566, **ROUND_2566_3.schedule.model_dump())
    assert unsaid.final_exam_on is None and unsaid.exam_date == date(2024, 3, 1)  # 1 Mar 00.00 Bangkok, not 29 Feb UTC
    RoundSpec(id="r1", academic_year=2566, final_exam_on=date(2024, 4, 30), **ROUND_2566_3.schedule.model_dump())
    with pytest.raises(ValidationError):
        RoundSpec(id="r1", academic_year=2566, final_exam_on=date(2024, 5, 1), **ROUND_2566_3.schedule.model_dump())


def test_default_reminders_are_noon_and_half_past_three_on_cutoff_day(process_tz):
    instants = ROUND_2566_3.schedule.reminder_instants(ROUND_2566_3.policy)
    assert instants == [bangkok(2024, 4, 30, 12, 0), bangkok(2024, 4, 30, 15, 30)]
    assert instants == [datetime(2024, 4, 30, 5, 0, tzinfo=UTC), datetime(2024, 4, 30, 8, 30, tzinfo=UTC)]


def test_default_policy_escalates_at_cutoff():
    policy = RoundPolicy()
    assert policy.escalate_at_cutoff is True
    assert policy.late_grace > timedelta(0)


def test_reminder_instants_move_with_the_cutoff(process_tz):
    extended = ROUND_2566_3.schedule.with_cutoff(bangkok(2024, 5, 2, 16, 30))
    assert extended.cutoff_at == bangkok(2024, 5, 2, 16, 30)
    assert extended.opens_at == ROUND_2566_3.opens_at and extended.confirm_from == ROUND_2566_3.confirm_from
    assert extended.reminder_instants(RoundPolicy()) == [bangkok(2024, 5, 2, 12, 0), bangkok(2024, 5, 2, 15, 30)]
    # the original is untouched: another school's timers must not move by accident
    assert ROUND_2566_3.cutoff_at == bangkok(2024, 4, 30, 16, 30)


def test_with_cutoff_refuses_a_cutoff_before_confirmation_opens():
    with pytest.raises(ValidationError):
        ROUND_2566_3.schedule.with_cutoff(bangkok(2024, 4, 30, 8, 0))


def test_reminders_before_the_round_opens_are_dropped():
    schedule = Schedule(opens_at=bangkok(2024, 4, 30, 14, 0), confirm_from=bangkok(2024, 4, 30, 14, 0),
                        cutoff_at=bangkok(2024, 4, 30, 16, 30))
    assert schedule.reminder_instants(RoundPolicy()) == [bangkok(2024, 4, 30, 15, 30)]


def test_policy_offsets_sorted_and_deduplicated(process_tz):
    policy = RoundPolicy(reminders_before_cutoff=["PT1H", "P1D", "PT1H", "PT4H30M"])
    assert policy.reminders_before_cutoff == [timedelta(days=1), timedelta(hours=4, minutes=30), timedelta(hours=1)]
    assert ROUND_2566_3.schedule.reminder_instants(policy) == [
        bangkok(2024, 4, 29, 16, 30), bangkok(2024, 4, 30, 12, 0), bangkok(2024, 4, 30, 15, 30)]


@pytest.mark.parametrize("offsets", [["PT0S"], ["-PT1H"], ["PT1H", "PT0S"]])
def test_policy_refuses_offsets_that_are_not_before_the_cutoff(offsets):
    with pytest.raises(ValidationError):
        RoundPolicy(reminders_before_cutoff=offsets)


@pytest.mark.parametrize("opens,confirm,cutoff", [
    (bangkok(2024, 4, 30, 8, 30), bangkok(2024, 3, 1), bangkok(2024, 4, 30, 16, 30)),   # confirm before open
    (bangkok(2024, 3, 1), bangkok(2024, 4, 30, 16, 30), bangkok(2024, 4, 30, 8, 30)),   # cutoff before confirm
    (bangkok(2024, 3, 1), bangkok(2024, 4, 30, 16, 30), bangkok(2024, 4, 30, 16, 30)),  # no window at all
    (bangkok(2024, 5, 1), bangkok(2024, 5, 1, 8), bangkok(2024, 4, 30, 16, 30)),        # cutoff before opening
])
def test_schedules_out_of_order_are_refused(opens, confirm, cutoff):
    with pytest.raises(ValidationError):
        Schedule(opens_at=opens, confirm_from=confirm, cutoff_at=cutoff)


def test_naive_schedule_input_means_bangkok_whatever_the_server_zone(process_tz):
    schedule = Schedule(opens_at=datetime(2024, 3, 1), confirm_from=datetime(2024, 4, 30, 8, 30),
                        cutoff_at="2024-04-30T16:30:00")
    assert schedule.opens_at == ROUND_2566_3.opens_at
    assert schedule.confirm_from == ROUND_2566_3.confirm_from
    assert schedule.cutoff_at == ROUND_2566_3.cutoff_at
    assert all(v.utcoffset() == timedelta(hours=7) for v in (schedule.opens_at, schedule.cutoff_at))


def test_aware_schedule_input_keeps_its_instant():
    schedule = Schedule(opens_at="2024-02-29T17:00:00Z", confirm_from="2024-04-30T01:30:00+00:00",
                        cutoff_at="2024-04-30T16:30:00+07:00")
    assert schedule == ROUND_2566_3.schedule


def test_schedule_survives_json_round_trip():
    again = Schedule.model_validate_json(ROUND_2566_3.schedule.model_dump_json())
    assert again == ROUND_2566_3.schedule
    assert again.reminder_instants(RoundPolicy()) == ROUND_2566_3.schedule.reminder_instants(RoundPolicy())


@pytest.mark.parametrize("round_id", ["", "2566 3", "-2566", "x" * 41, "2566/3", "๒๕๖๖-๓"])
def test_round_id_shape(round_id):
    with pytest.raises(ValidationError):
        RoundSpec(id=round_id, academic_year=2566, **ROUND_2566_3.schedule.model_dump())


@pytest.mark.parametrize("year", [2024, 2499, 2701])
def test_academic_year_is_buddhist_era(year):
    # 2024 is the CE year of the letter: it must not be taken for an academic year.
    with pytest.raises(ValidationError):
        RoundSpec(id="r1", academic_year=year, **ROUND_2566_3.schedule.model_dump())
