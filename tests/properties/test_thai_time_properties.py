"""The calendar under any instant: Thai display and Thai input agree, in any process timezone (domain.md,
"Dates and language": the server's own timezone must never matter)."""

from __future__ import annotations

import os
import re
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.thai_time import (
    BANGKOK,
    THAI_MONTHS_ABBR,
    arabic_digits,
    english_datetime,
    parse_local,
    thai_date,
    thai_datetime,
)
from tests.hypothesis_profiles import examples

PROCESS_ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham")

# Instants in a sane range (CE 1900-2300), with any offset a real zone has (-12:00 .. +14:00).
offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.builds(lambda naive, tz: naive.replace(tzinfo=timezone.utc).astimezone(tz),
                     st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2300, 12, 30)), offsets)

THAI_DATETIME = re.compile(r"^(\d{1,2}) (\S+) (\d{4}) (\d{2})\.(\d{2}) น\.$")


@contextmanager
def process_tz(name: str):
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


def read_thai_datetime(text: str) -> datetime:
    """A clerk reading `30 เม.ย. 2567 16.30 น.` and typing it back as the ISO form officers use."""
    day, month, year_be, hour, minute = THAI_DATETIME.match(text).groups()
    month_no = THAI_MONTHS_ABBR.index(month) + 1
    return parse_local(f"{year_be}-{month_no:02d}-{int(day):02d}T{hour}:{minute}")


@settings(max_examples=examples(300))
@given(instant=instants)
def test_thai_display_reads_back_as_the_same_minute_in_every_process_timezone(instant):
    expected = instant.astimezone(BANGKOK).replace(second=0, microsecond=0)
    shown = set()
    for zone in PROCESS_ZONES:
        with process_tz(zone):
            text = thai_datetime(instant)
            assert arabic_digits(thai_datetime(instant, digits="thai")) == text
            assert read_thai_datetime(text) == expected
            shown.add((text, english_datetime(instant), thai_date(instant.astimezone(BANGKOK).date())))
    assert len(shown) == 1, shown  # the same words whatever the server's zone
    year_be = int(THAI_DATETIME.match(text).group(3))
    assert year_be == expected.year + 543


@settings(max_examples=examples(300))
@given(instant=instants)
def test_iso_input_keeps_its_offset_and_naive_input_is_bangkok(instant):
    for zone in PROCESS_ZONES:
        with process_tz(zone):
            assert parse_local(instant.isoformat()) == instant
            naive = instant.astimezone(BANGKOK).replace(tzinfo=None)
            assert parse_local(naive.isoformat()) == instant
            # the same wall clock written with a Buddhist-Era year and Thai digits
            iso = naive.isoformat()
            be_text = f"{naive.year + 543:04d}{iso[4:]}" if naive.year + 543 <= 9999 else None  # 29 Feb too
            if be_text:
                assert parse_local(be_text) == instant
                assert parse_local(be_text.translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))) == instant


# Found by the properties above, kept as plain examples.

def test_a_buddhist_era_leap_day_is_read():
    """29 Feb 2024 is 2567-02-29, and 2567 is no leap year in the Gregorian reckoning: converted first."""
    assert parse_local("2567-02-29T10:00") == datetime(2024, 2, 29, 10, 0, tzinfo=BANGKOK)
    assert parse_local("๒๕๖๗-๐๒-๒๙") == datetime(2024, 2, 29, tzinfo=BANGKOK)


def test_a_buddhist_era_year_typed_into_the_api_is_read_as_be():
    import pytest
    from pydantic import ValidationError

    from api.schemas import ExtensionIn
    from domain.rounds import RoundSpec

    extension = ExtensionIn(cutoff_at="2567-05-01T16:30:00", reason="ขยาย")
    assert extension.cutoff_at == datetime(2024, 5, 1, 16, 30, tzinfo=BANGKOK)  # not the year 2567 CE
    with pytest.raises(ValidationError):
        ExtensionIn(cutoff_at="2568-02-29T16:30:00", reason="ขยาย")  # 29 Feb 2025 does not exist: 422, not 500
    spec = RoundSpec(id="be", academic_year=2566, opens_at="2567-03-01T00:00", confirm_from="2567-04-30T08:30",
                     cutoff_at="2024-04-30T16:30")
    assert spec.opens_at == datetime(2024, 3, 1, tzinfo=BANGKOK) and spec.confirm_from.year == 2024
