"""Bangkok instants and the Thai government date style (domain.md, "Dates and language")."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from domain.thai_time import (
    BANGKOK,
    arabic_digits,
    bangkok,
    english_datetime,
    parse_local,
    thai_date,
    thai_datetime,
    thai_digits,
    thai_duration,
    to_bangkok,
)

CUTOFF_UTC = datetime(2024, 4, 30, 9, 30, tzinfo=timezone.utc)  # 30 Apr 2567 16.30 น. in Bangkok


def test_cutoff_in_thai_government_style(process_tz):
    assert thai_datetime(CUTOFF_UTC) == "30 เม.ย. 2567 16.30 น."


def test_cutoff_with_thai_digits(process_tz):
    assert thai_datetime(CUTOFF_UTC, digits="thai") == "๓๐ เม.ย. ๒๕๖๗ ๑๖.๓๐ น."
    assert thai_date(date(2024, 4, 30), digits="thai") == "๓๐ เม.ย. ๒๕๖๗"


def test_same_instant_from_any_offset_prints_the_same(process_tz):
    new_york = CUTOFF_UTC.astimezone(timezone(timedelta(hours=-4)))  # 05:30 the same morning
    assert new_york.hour == 5
    assert thai_datetime(new_york) == "30 เม.ย. 2567 16.30 น."
    assert english_datetime(new_york) == "30 Apr 2024 16:30 (Bangkok)"


def test_bangkok_date_rolls_over_before_utc_does(process_tz):
    # 17:00 UTC on 30 Apr is already 00.00 on 1 May in Bangkok: the Thai date must follow Bangkok.
    assert thai_datetime(datetime(2024, 4, 30, 17, 0, tzinfo=timezone.utc)) == "1 พ.ค. 2567 00.00 น."
    # and the BE year turns with the Bangkok new year, not the UTC one
    assert thai_datetime(datetime(2023, 12, 31, 17, 5, tzinfo=timezone.utc)) == "1 ม.ค. 2567 00.05 น."


def test_minutes_are_two_digits():
    assert thai_datetime(bangkok(2024, 3, 1, 8, 5)) == "1 มี.ค. 2567 08.05 น."


@pytest.mark.parametrize("month,abbr", [(1, "ม.ค."), (2, "ก.พ."), (3, "มี.ค."), (4, "เม.ย."), (5, "พ.ค."), (6, "มิ.ย."),
                                        (7, "ก.ค."), (8, "ส.ค."), (9, "ก.ย."), (10, "ต.ค."), (11, "พ.ย."), (12, "ธ.ค.")])
def test_every_month_abbreviation(month, abbr):
    assert thai_date(date(2024, month, 10)) == f"10 {abbr} 2567"


def test_naive_instant_refused_by_to_bangkok(process_tz):
    with pytest.raises(ValueError):
        to_bangkok(datetime(2024, 4, 30, 16, 30))
    with pytest.raises(ValueError):
        thai_datetime(datetime(2024, 4, 30, 16, 30))  # never guess with the server's own timezone


def test_to_bangkok_keeps_the_instant(process_tz):
    local = to_bangkok(CUTOFF_UTC)
    assert local == CUTOFF_UTC
    assert (local.hour, local.minute) == (16, 30)
    assert local.utcoffset() == timedelta(hours=7)


def test_bangkok_constructor_is_utc_plus_seven(process_tz):
    assert bangkok(2024, 4, 30, 16, 30) == CUTOFF_UTC


def test_parse_local_naive_text_means_bangkok(process_tz):
    parsed = parse_local("2024-04-30T16:30")
    assert parsed.tzinfo is not None
    assert parsed == CUTOFF_UTC
    assert parse_local(" 2024-04-30 16:30:00 ") == CUTOFF_UTC


def test_parse_local_keeps_an_explicit_offset(process_tz):
    assert parse_local("2024-04-30T09:30:00+00:00") == CUTOFF_UTC
    assert parse_local("2024-04-30T09:30:00Z") == CUTOFF_UTC


def test_parse_local_accepts_thai_digits(process_tz):
    assert parse_local("๒๐๒๔-๐๔-๓๐T๑๖:๓๐") == CUTOFF_UTC


def test_parse_local_rejects_garbage():
    with pytest.raises(ValueError):
        parse_local("30 เม.ย. 2567")


def test_digit_conversion_round_trips():
    assert thai_digits("2567 16.30") == "๒๕๖๗ ๑๖.๓๐"
    assert arabic_digits("๒๕๖๗ ๑๖.๓๐ น.") == "2567 16.30 น."
    assert arabic_digits(thai_digits("0123456789")) == "0123456789"


def test_bangkok_has_no_daylight_saving():
    # Thailand keeps UTC+7 all year: the same wall-clock hour in January and July is the same UTC hour.
    assert bangkok(2024, 1, 15, 12).astimezone(timezone.utc).hour == 5
    assert bangkok(2024, 7, 15, 12).astimezone(timezone.utc).hour == 5
    assert BANGKOK.utcoffset(None) == timedelta(hours=7)


@pytest.mark.parametrize("delta,text", [
    (timedelta(hours=4, minutes=30), "4 ชั่วโมง 30 นาที"),
    (timedelta(days=1, hours=2), "1 วัน 2 ชั่วโมง"),
    (timedelta(minutes=59, seconds=59), "59 นาที"),
    (timedelta(0), "0 นาที"),
    (timedelta(minutes=-5), "0 นาที"),  # an overdue countdown never shows a negative time
])
def test_thai_duration(delta, text):
    assert thai_duration(delta) == text


def test_parse_local_reads_buddhist_era_years():
    from domain.thai_time import parse_local

    assert parse_local("2567-04-30T16:30") == parse_local("2024-04-30T16:30")
    assert parse_local("2567-04-30T16:30").utcoffset().total_seconds() == 7 * 3600
