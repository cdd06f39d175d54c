"""A synthetic DMC area export (Thai headers of the sample) of any size, as CSV or XLSX bytes."""

from __future__ import annotations

import csv
import io
import random

from domain.ids import national_id_check_digit
from domain.roster_file import HEADERS

GRADES = ["ม.1", "ม.2", "ม.3", "ม.4", "ม.5", "ม.6"]
FIRST = ["สมชาย", "สมหญิง", "ปิยะ", "อรทัย", "ธนพล", "กมลชนก", "วรวุฒิ", "ศิริพร", "ณัฐวุฒิ", "พิมพ์ลดา"]
LAST = ["ใจดี", "ศรีสุข", "บุญมา", "ทองคำ", "แก้วมณี", "พลอยงาม", "คำมูล", "ภูมิสะอาด"]


def school_codes(schools: int) -> list[str]:
    return [f"{1044400000 + i:010d}" for i in range(schools)]


def rows(total: int, schools: int, seed: int = 2566) -> list[list[str]]:
    rng = random.Random(seed)
    codes = school_codes(schools)
    out = [list(HEADERS)]
    for n in range(total):
        first12 = f"1{n:011d}"
        sid = first12 + str(national_id_check_digit(first12))
        code = codes[n % schools]
        out.append([code, f"โรงเรียน {code[-3:]}", sid, rng.choice(GRADES), str(rng.randint(1, 8)), str(n),
                    rng.choice("ชญ"), "เด็กชาย", rng.choice(FIRST), rng.choice(LAST),
                    f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2550, 2560)}", "ใช่"])
    return out


def to_csv(table: list[list[str]], encoding: str = "utf-8-sig") -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(table)
    return buf.getvalue().encode(encoding)


def to_xlsx(table: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()  # shared strings, as Excel writes them (write-only mode writes slow inline strings)
    sheet = book.active
    for row in table:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
