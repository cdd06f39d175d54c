"""The workbench's words in Thai and English, side by side, and how times read in each language.

A dict, not Babel/gettext: two languages and a few hundred phrases, where gettext would add a compile step
(.po to .mo) or binary files in the repository and an extraction tool, for no gain. Keeping each Thai phrase
beside its English one lets a reviewer read both at once, and a test checks that no key lacks either.
The phrases live by the pages that say them, one module per group (shell, homes, roster, round_work, cases,
district_queue, admin, accounts), each a `PHRASES` dict; `MESSAGES` is all of them, and a key may stand in
one module only (the test reads every module's keys and fails on a second one).
Dates and times always read in Bangkok time (domain/thai_time.py), whatever the browser's or server's zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from domain.thai_time import english_datetime, thai_datetime, thai_duration, to_bangkok
from web.i18n import accounts, admin, cases, district_queue, homes, roster, round_work, shell

LANGS = ("th", "en")
GROUPS = (shell, homes, roster, round_work, cases, district_queue, admin, accounts)
MESSAGES: dict[str, tuple[str, str]] = {key: phrase for group in GROUPS for key, phrase in group.PHRASES.items()}

ROLE_KEYS = {"staff": "role_staff", "director": "role_director", "district": "role_district", "admin": "role_admin"}


def language(chosen: str | None) -> str:
    return "en" if chosen == "en" else "th"


Translator = Callable[..., str]


def translator(lang: str) -> Translator:
    index = LANGS.index(language(lang))

    def t(key: str, **values) -> str:
        text = MESSAGES[key][index]
        return text.format(**values) if values else text

    return t


def english_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in ((days, "day"), (hours, "hour")) if n]
    if mins or not parts:
        parts.append(f"{mins} minute{'' if mins == 1 else 's'}")
    return " ".join(parts)


def clock_time(instant: datetime, lang: str) -> str:
    """`16.30 น.` / `16:30`, in Bangkok time."""
    local = to_bangkok(instant)
    return f"{local.hour:02d}.{local.minute:02d} น." if language(lang) == "th" else f"{local.hour:02d}:{local.minute:02d}"


def when(instant: datetime, lang: str) -> str:
    return thai_datetime(instant) if language(lang) == "th" else english_datetime(instant)


def time_left(now: datetime, cutoff: datetime, lang: str) -> str:
    """`เหลือ 3 ชั่วโมง 20 นาที ก่อนปิดระบบ 16.30 น.`: what a clerk reads at the top of the home page."""
    t = translator(lang)
    if now >= cutoff:
        return t("left_none")
    delta = cutoff - now
    words = thai_duration(delta) if language(lang) == "th" else english_duration(delta)
    return t("left", words=words, time=clock_time(cutoff, lang))
