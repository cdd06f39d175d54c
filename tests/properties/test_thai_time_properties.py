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
            be_text = naive.replace(year=naive.year + 543).isoformat() if naive.year + 543 <= 9999 else None
            if be_text:
                assert parse_local(be_text) == instant
                assert parse_local(be_text.translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))) == instant
