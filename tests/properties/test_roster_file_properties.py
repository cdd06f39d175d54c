"""Roster files under any input: rows with per-row issues, or one Refusal that says why; never a crash."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

from hypothesis import event, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.utils.exceptions import IllegalCharacterError

from domain.refusals import Refusal
from domain.roster_file import HEADERS, parse_roster
from tests.hypothesis_profiles import examples
from tests.properties.email_strategies import id_values

FILE_CODES = {"file_too_large", "file_unreadable", "file_type", "file_encoding", "file_empty", "file_headers",
              # the caps of domain/spreadsheet_limits.py (a flipped byte can declare a huge zip member)
              "file_too_many_rows", "file_too_many_columns", "file_cell_too_large", "file_row_too_long",
              "file_too_many_parts", "file_compression_ratio"}
HEADER_NAMES = list(HEADERS)

cells = st.one_of(
    id_values, st.text(max_size=20), st.sampled_from(["ใช่", "ไม่ใช่", "ม.1", "ป.๖", "อ.4", "1044449001",
                                                       "31/02/2555", "01/01/0", "=HYPERLINK(\"x\")", "\ufeff"]),
)
headers = st.one_of(st.permutations(HEADER_NAMES), st.lists(st.sampled_from(HEADER_NAMES + ["", "อื่น"]), max_size=14))


GOOD = {"รหัสโรงเรียน": "1044449001", "ชื่อโรงเรียน": "โรงเรียน", "เลขประจำตัวประชาชน": "1449900000018", "ชั้น": "ม.1",
        "ห้อง": "1", "เลขประจำตัวนักเรียน": "1", "เพศ": "ช", "คำนำหน้าชื่อ": "เด็กชาย", "ชื่อ": "ทดสอบ",
        "นามสกุล": "ระบบ", "วันเกิด": "01/01/2555", "สอบปลายภาค": "ใช่"}


@st.composite
def table_rows(draw, header: list[str]) -> list:
    """A good row with a few cells replaced: most rows get as far as the rules."""
    row = [GOOD.get(h, "") for h in header]
    for _ in range(draw(st.integers(0, 3))):
        if row:
            row[draw(st.integers(0, len(row) - 1))] = draw(cells)
    return row + draw(st.lists(cells, max_size=2))


@st.composite
def csv_files(draw) -> bytes:
    header = draw(headers)
    rows = draw(st.lists(table_rows(header), max_size=8))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    quote = draw(st.booleans())

    def line(values):
        return sep.join(f'"{v}"' if quote else v for v in values)

    text = "\n".join([line(header)] + [line(r) for r in rows])
    codec = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp874", "utf-16", "latin-1"]))
    data = text.encode(codec, errors="replace")
    if draw(st.integers(0, 4)) == 0:  # cut in the middle of a character or a quoted field
        data = data[:draw(st.integers(0, len(data)))]
    return data


xlsx_values = st.one_of(cells, st.integers(-10**15, 10**15), st.floats(allow_nan=True, allow_infinity=True),
                        st.booleans(), st.none(), st.dates(min_value=date(1900, 3, 1)),
                        st.datetimes(min_value=datetime(1900, 3, 1)))


@st.composite
def xlsx_files(draw) -> bytes:
    book = Workbook()
    sheet = book.active
    header = draw(headers)
    sheet.append(header)
    for row in draw(st.lists(st.one_of(table_rows(header), st.lists(xlsx_values, max_size=14)), max_size=6)):
        try:
            sheet.append(row)
        except (ValueError, TypeError, IllegalCharacterError):  # openpyxl refuses some values: not our concern
            continue
    out = io.BytesIO()
    book.save(out)
    data = out.getvalue()
    damage = draw(st.sampled_from(["none", "none", "flip", "truncate", "drop_member"]))
    # Positions are drawn independently of the length: openpyxl stamps the save time, so the same workbook
    # is not always the same number of bytes, and Hypothesis needs the same draws to make the same example.
    if damage == "flip":
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 6))):
            buf[draw(st.integers(0, 10**9)) % len(buf)] = draw(st.integers(0, 255))
        data = bytes(buf)
    elif damage == "truncate":
        data = data[:draw(st.integers(0, 10**9)) % (len(data) + 1)]
    elif damage == "drop_member":
        source = zipfile.ZipFile(io.BytesIO(data))
        names = source.namelist()
        dropped = draw(st.sampled_from(names))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            for name in names:
                if name != dropped:
                    target.writestr(name, source.read(name))
        data = out.getvalue()
    return data


def check(data: bytes, filename: str) -> None:
    try:
        parsed = parse_roster(data, filename)
    except Refusal as refusal:
        event(f"refused: {refusal.code}")
        assert refusal.code in FILE_CODES, refusal.code
        assert 400 <= refusal.status < 500 and refusal.message_th and refusal.message_en
        return
    event(f"rows: {min(len(parsed.rows), 2)}, issues: {min(len(parsed.issues), 2)}")
    assert len(parsed.rows) <= parsed.total_rows
    for row in parsed.rows:
        assert row.sat_final_exam and row.student_id and row.grade and len(row.school_code) == 10
    for issue in parsed.issues:
        assert issue.code and issue.message_th and issue.message_en and issue.row >= 2


@settings(max_examples=examples(200))
@given(data=st.one_of(st.binary(max_size=2000), csv_files()), filename=st.sampled_from(["r.csv", "r.xlsx", "", "r"]))
def test_any_bytes_as_a_roster_give_rows_or_a_refusal(data, filename):
    check(data, filename)


@settings(max_examples=examples(60))
@given(data=xlsx_files(), filename=st.sampled_from(["r.xlsx", "r.csv", ""]))
def test_any_workbook_whole_or_damaged_gives_rows_or_a_refusal(data, filename):
    check(data, filename)


def test_a_nul_anywhere_in_a_csv_refuses_the_file():
    """Found on PostgreSQL (which cannot store NUL): only the first 4 KB used to be looked at."""
    good = ("รหัสโรงเรียน,เลขประจำตัวประชาชน,ชั้น,ชื่อ,นามสกุล,สอบปลายภาค\n"
            + "1044449001,1449900000018,ม.1,ทดสอบ,ระบบ,ใช่\n" * 200).encode()
    try:
        parse_roster(good + b"1044449001,1449900000026,\xe0\xb8\xa1.1,a\x00b,c,yes\n", "r.csv")
    except Refusal as refusal:
        assert refusal.code == "file_type"
    else:
        raise AssertionError("a NUL past the first 4 KB was let through")
