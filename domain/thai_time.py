"""Asia/Bangkok time without zoneinfo, and the Thai government date style.

Thailand has no daylight saving, so a fixed UTC+7 offset is exact. It also works inside Temporal's
workflow sandbox, where `zoneinfo` objects are restricted proxies.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

BANGKOK = timezone(timedelta(hours=7), "Asia/Bangkok")

THAI_MONTHS_ABBR = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)
THAI_DIGITS = "๐๑๒๓๔๕๖๗๘๙"
_TO_ARABIC = str.maketrans(THAI_DIGITS, "0123456789")
_TO_THAI = str.maketrans("0123456789", THAI_DIGITS)
BE_OFFSET = 543


def arabic_digits(text: str) -> str:
    return text.translate(_TO_ARABIC)


def thai_digits(text: str) -> str:
    return text.translate(_TO_THAI)


def require_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instant must be timezone-aware")
    return instant


def to_bangkok(instant: datetime) -> datetime:
    return require_aware(instant).astimezone(BANGKOK)


def bangkok(year_ce: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A Bangkok wall-clock time as an aware instant."""
    return datetime(year_ce, month, day, hour, minute, second, tzinfo=BANGKOK)


def parse_local(text: str) -> datetime:
    """ISO text; a naive one means Thai local time (what officers type), an offset is kept.
    A Buddhist-Era year (2567-04-30T16:30) is read as BE."""
    text = arabic_digits(text.strip())
    # The year is converted before parsing: 29 Feb 2024 is 2567-02-29, and 2567 is no leap year.
    if text[:4].isascii() and text[:4].isdigit() and int(text[:4]) > 2400:
        text = f"{int(text[:4]) - BE_OFFSET:04d}{text[4:]}"
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=BANGKOK) if value.tzinfo is None else value


def as_bangkok_input(value: datetime) -> datetime:
    """Naive datetimes arriving from users are Thai local time; aware ones are kept as they are.
    A Buddhist-Era year (2567) is read as BE, as `parse_local` does."""
    if value.year > 2400:
        value = value.replace(year=value.year - BE_OFFSET)
    return value.replace(tzinfo=BANGKOK) if value.tzinfo is None else value


def thai_date(day: date, *, digits: str = "arabic") -> str:
    """`30 เม.ย. 2567`."""
    text = f"{day.day} {THAI_MONTHS_ABBR[day.month - 1]} {day.year + BE_OFFSET}"
    return thai_digits(text) if digits == "thai" else text


def thai_datetime(instant: datetime, *, digits: str = "arabic") -> str:
    """`30 เม.ย. 2567 16.30 น.`: the Thai government style, always in Bangkok time."""
    local = to_bangkok(instant)
    text = f"{thai_date(local.date())} {local.hour:02d}.{local.minute:02d} น."
    return thai_digits(text) if digits == "thai" else text


def english_datetime(instant: datetime) -> str:
    """`30 Apr 2024 16:30 (Bangkok)`, for the English line under the Thai one."""
    return to_bangkok(instant).strftime("%d %b %Y %H:%M") + " (Bangkok)"


def thai_duration(delta: timedelta) -> str:
    return _thai_minutes(max(0, int(delta.total_seconds() // 60)))


@lru_cache(maxsize=4096)  # a dashboard says it for every school of an area, most sharing their cutoff
def _thai_minutes(minutes: int) -> str:
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} วัน")
    if hours:
        parts.append(f"{hours} ชั่วโมง")
    if mins or not parts:
        parts.append(f"{mins} นาที")
    return " ".join(parts)
