"""Which days government offices are closed, for working-day deadlines (dropout consultations).

Schools and area offices keep the cabinet's government holidays (วันหยุดราชการ), which are not quite
Thailand's public holidays: National Labour Day (1 May) closes banks and private firms, not government
offices, and the Royal Ploughing Ceremony closes government offices only.

A year covered by a configured holiday file (DMCFLOW_HOLIDAY_FILES; 2567 is shipped) takes the file's
list as it stands: the office's own, reviewed list wins. Any other year takes the `holidays` library's
public and government holidays for Thailand, in-lieu and bridge days included, without the days that
are no day off for government offices. DMCFLOW_EXTRA_HOLIDAYS adds days the cabinet announces late.
"""

from __future__ import annotations

import csv
from datetime import date
from functools import lru_cache
from pathlib import Path

import holidays
from holidays.constants import GOVERNMENT, PUBLIC

SHIPPED = Path(__file__).parent / "calendars" / "th-holidays-2567.csv"


@lru_cache(maxsize=16)
def _read_file(path: str) -> dict[date, str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = csv.DictReader(line for line in f if line.strip() and not line.startswith("#"))
        return {date.fromisoformat(r["date"].strip()): (r.get("name") or "").strip() for r in rows}


# Listed by the library as public holidays, yet government offices work: Children's Day is a Saturday
# observance; Labour Day (and its in-lieu day) is for the private and financial sectors.
NOT_OFFICE_HOLIDAYS = ("วันเด็กแห่งชาติ", "วันแรงงานแห่งชาติ")


@lru_cache(maxsize=64)
def _library_year(year: int) -> dict[date, str]:
    days = holidays.country_holidays("TH", years=year, language="th", categories=(PUBLIC, GOVERNMENT))
    found = {}
    for day in days:
        # a day may carry several names ("; "): it stays off if any of them closes government offices
        names = [n for n in days.get_list(day) if not any(skip in n for skip in NOT_OFFICE_HOLIDAYS)]
        if names:
            found[day] = "; ".join(names)
    return found


def holidays_between(start: date, end: date, files: list[Path], extra: list[date] = ()) -> dict[date, str]:
    """Holidays from `start` to `end` inclusive, with their Thai names."""
    listed: dict[date, str] = {}
    for path in files:
        listed.update(_read_file(str(path)))
    file_years = {d.year for d in listed}
    found: dict[date, str] = {}
    for year in range(start.year, end.year + 1):
        source = listed if year in file_years else _library_year(year)
        found.update({d: n for d, n in source.items() if d.year == year})
    found.update({d: found.get(d, "วันหยุดพิเศษ") for d in extra})
    return {d: n for d, n in sorted(found.items()) if start <= d <= end}
