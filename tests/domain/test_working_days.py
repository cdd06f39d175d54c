"""Working-day deadlines: weekends and holidays don't count, whatever the process's time zone."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dmcflow.holiday_calendar import SHIPPED, holidays_between
from domain.thai_time import bangkok
from domain.working_days import is_working_day, working_days_between, working_deadline

H2567 = holidays_between(date(2024, 1, 1), date(2024, 12, 31), [SHIPPED])


def test_the_shipped_2567_list_has_songkran_and_its_in_lieu_and_bridge_days():
    for day in (date(2024, 4, 12), date(2024, 4, 13), date(2024, 4, 15), date(2024, 4, 16), date(2024, 4, 8)):
        assert day in H2567, day
    assert date(2024, 1, 13) not in H2567  # Children's Day: a Saturday observance, not a day off
    assert H2567[date(2024, 4, 13)] == "วันสงกรานต์"


def test_labour_day_is_a_working_day_for_schools_and_area_offices():
    """1 May (National Labour Day) closes banks and private firms, not government offices: the shipped
    2567 list used to count it as a holiday, so a consultation asked on 30 Apr 2567 waited a day longer."""
    assert date(2024, 5, 1) not in H2567 and is_working_day(date(2024, 5, 1), H2567)
    # Tue 30 Apr 16.30: Wed 1 May and Thu 2 May are its two working days (not Fri 3 May)
    assert working_deadline(bangkok(2024, 4, 30, 16, 30), 2, H2567) == bangkok(2024, 5, 2, 16, 30)
    # the Royal Ploughing Ceremony (Fri 10 May 2567) is a government holiday: offices are closed
    assert H2567[date(2024, 5, 10)] == "วันพืชมงคล"
    assert working_deadline(bangkok(2024, 5, 9, 9), 2, H2567) == bangkok(2024, 5, 14, 9)


def test_the_shipped_2567_list_is_the_librarys_public_and_government_days_without_labour_day():
    """Cross-check with the `holidays` package (Thailand 2024): its public and government holidays,
    less National Children's Day (a Saturday) and National Labour Day (not a government holiday)."""
    import holidays

    library = holidays.country_holidays("TH", years=2024, categories=("public", "government"))
    expected = {d for d in library if d not in (date(2024, 1, 13), date(2024, 5, 1))}
    assert set(H2567) == expected


@pytest.mark.parametrize("year", [2025, 2026])  # years whose ploughing day the library knows
def test_years_from_the_library_leave_labour_day_a_working_day(year):
    days = holidays_between(date(year, 1, 1), date(year, 12, 31), [SHIPPED])
    assert date(year, 5, 1) not in days and date(year, 1, 1) in days
    assert not any("แรงงาน" in name or "วันเด็ก" in name for name in days.values())
    assert any(name == "วันพืชมงคล" for name in days.values())  # a government-office holiday


def test_two_working_days_from_a_friday_end_on_tuesday_at_the_same_time():
    assert working_deadline(bangkok(2024, 3, 1, 10), 2, H2567) == bangkok(2024, 3, 5, 10)


def test_a_request_made_on_saturday_counts_from_monday():
    assert working_deadline(bangkok(2024, 3, 2, 10), 2, H2567) == bangkok(2024, 3, 6, 0)


def test_songkran_week_is_skipped():
    # Wed 10 Apr 2567 09.00: Wed, Thu 11 count; Fri 12 (bridge) to Tue 16 are off; Wed 17 finishes it
    assert working_deadline(bangkok(2024, 4, 10, 9), 2, H2567) == bangkok(2024, 4, 12, 9) + timedelta(days=5)
    assert working_deadline(bangkok(2024, 4, 10, 9), 5, H2567) == bangkok(2024, 4, 22, 9)


def test_chakri_day_in_lieu_monday_is_not_a_working_day():
    assert not is_working_day(date(2024, 4, 8), H2567)
    assert working_deadline(bangkok(2024, 4, 5, 16, 30), 2, H2567) == bangkok(2024, 4, 10, 16, 30)


def test_working_days_between_agrees_with_the_deadline():
    start = bangkok(2024, 4, 10, 9)
    assert working_days_between(start, working_deadline(start, 5, H2567), H2567) == pytest.approx(5)
    assert working_days_between(start, start - timedelta(hours=1), H2567) == 0


def test_years_without_a_file_come_from_the_holidays_library():
    days = holidays_between(date(2026, 12, 1), date(2026, 12, 31), [SHIPPED])
    assert date(2026, 12, 7) in days and date(2026, 12, 10) in days  # Father's Day in lieu; Constitution Day
    assert date(2026, 12, 8) not in days


def test_extra_days_are_added(tmp_path):
    extra = holidays_between(date(2024, 3, 1), date(2024, 3, 31), [SHIPPED], [date(2024, 3, 4)])
    assert list(extra) == [date(2024, 3, 4)]


def test_a_configured_file_replaces_the_library_for_its_year(tmp_path):
    own = tmp_path / "th-2569.csv"
    own.write_text("# the office's list\ndate,name\n2026-12-08,วันหยุดราชการพิเศษ\n", encoding="utf-8")
    days = holidays_between(date(2026, 12, 1), date(2026, 12, 31), [SHIPPED, own])
    assert list(days) == [date(2026, 12, 8)]


def test_naive_instants_are_refused():
    from datetime import datetime
    with pytest.raises(ValueError):
        working_deadline(datetime(2024, 3, 1, 10), 2, H2567)
