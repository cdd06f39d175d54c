"""Reading a DMC roster export: CSV in the encodings Thai schools produce, XLSX, and bad files."""

from __future__ import annotations

import csv
import io
import random
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from domain.refusals import Refusal
from domain.roster_file import HEADERS, RosterFile, parse_birth_date, parse_roster

ID_HEADER = "เลขประจำตัวประชาชน"
EXAM_HEADER = "สอบปลายภาค"
HEADER_ROW = list(HEADERS)  # the sample's column order


def sample_text(sample_roster_bytes: bytes) -> str:
    return sample_roster_bytes.decode("utf-8-sig")


def sample_table(sample_roster_bytes: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(sample_text(sample_roster_bytes))))


def to_csv(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def row(student_id: str, *, grade: str = "ม.1", exam: str = "ใช่", birth: str = "02/02/2555",
        first: str = "ปวีณา", last: str = "พลอยงาม", school: str = "1044449001") -> list[str]:
    return [school, "โรงเรียนตัวอย่างวิทยา", student_id, grade, "1", "10001", "ช", "เด็กชาย", first, last, birth, exam]


def to_xlsx(rows: list[list[object]], tmp_path: Path, name: str = "roster.xlsx") -> bytes:
    book = Workbook()
    sheet = book.active
    for values in rows:
        sheet.append(values)
    path = tmp_path / name
    book.save(path)
    return path.read_bytes()


def issue_summary(parsed: RosterFile) -> list[tuple[int, str, str, str]]:
    return [(i.row, i.column, i.value, i.code) for i in parsed.issues]


# --- the shared sample -----------------------------------------------------------------------------

def test_sample_parses_14_rows_and_refuses_the_two_who_did_not_sit_the_exam(sample_roster_bytes):
    parsed = parse_roster(sample_roster_bytes, "roster-phase3-2566.csv")
    assert parsed.total_rows == 16
    assert len(parsed.rows) == 14
    # rows as a spreadsheet numbers them (header = row 1): the 7th and 15th students
    assert issue_summary(parsed) == [(8, EXAM_HEADER, "ไม่ใช่", "r2_no_final_exam"),
                                     (16, EXAM_HEADER, "ไม่ใช่", "r2_no_final_exam")]
    for issue in parsed.issues:
        assert "2566" in issue.message_th and issue.message_en
    refused_ids = {"1449900000077", "1449910000151"}
    assert refused_ids.isdisjoint(r.student_id for r in parsed.rows)
    assert all(r.sat_final_exam for r in parsed.rows)


def test_sample_rows_are_normalised(sample_roster_bytes):
    parsed = parse_roster(sample_roster_bytes, "roster-phase3-2566.csv")
    first = parsed.rows[0]
    assert (first.row, first.school_code, first.student_id, first.grade) == (2, "1044449001", "1449900000018", "ม.1")
    assert (first.prefix, first.first_name, first.last_name) == ("เด็กชาย", "ปวีณา", "พลอยงาม")
    assert first.birth_date == date(2012, 2, 2)  # 02/02/2555 BE
    gcodes = [r for r in parsed.rows if r.student_id.startswith("G")]
    assert [g.student_id for g in gcodes] == ["G664400000008", "G664400000016"]
    assert {r.school_code for r in parsed.rows} == {"1044449001", "1044449002"}
    assert parsed.rows[-1].birth_date == date(2011, 5, 17)  # 17/05/2554 BE


@pytest.mark.parametrize("encoding", ["utf-8", "cp874", "tis-620"])
def test_same_content_in_other_encodings_parses_identically(sample_roster_bytes, encoding):
    reference = parse_roster(sample_roster_bytes, "roster.csv")
    data = sample_text(sample_roster_bytes).encode(encoding)
    assert not data.startswith(b"\xef\xbb\xbf")
    if encoding != "utf-8":
        assert data != sample_text(sample_roster_bytes).encode("utf-8")  # really a different byte encoding
    assert parse_roster(data, "roster.csv") == reference


def test_crlf_line_endings_parse_identically(sample_roster_bytes):
    reference = parse_roster(sample_roster_bytes, "roster.csv")
    crlf = sample_roster_bytes.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert parse_roster(crlf, "roster.csv") == reference


def test_xlsx_parses_identically_with_ids_and_codes_typed_as_numbers(sample_roster_bytes, tmp_path):
    reference = parse_roster(sample_roster_bytes, "roster.csv")
    table = sample_table(sample_roster_bytes)
    typed: list[list[object]] = [table[0]]
    for cells in table[1:]:
        values: list[object] = list(cells)
        values[0] = int(cells[0])  # school code as a number
        if cells[2].isdigit():
            values[2] = int(cells[2])  # a 13-digit national ID typed as a number, as Excel does
        values[4] = int(cells[4])  # classroom
        values[5] = int(cells[5])  # student number
        typed.append(values)
    data = to_xlsx(typed, tmp_path)
    # the workbook really holds numbers, not text
    sheet = load_workbook(io.BytesIO(data)).active
    assert isinstance(sheet["C2"].value, int) and isinstance(sheet["A2"].value, int)
    assert parse_roster(data, "roster.xlsx") == reference
    assert parse_roster(data, "") == reference  # recognised by its content, not only its name


def test_xlsx_id_stored_in_scientific_notation(tmp_path):
    # Some spreadsheet tools store a number typed into a cell as "1.449900000018E12" in the sheet XML;
    # it is read back as a float and must still give the 13-digit ID, not "1449900000018.0".
    data = to_xlsx([HEADER_ROW, [1044449001, "x", 1449900000018, "ม.1", 1, 10001, "ช", "เด็กชาย",
                                 "ปวีณา", "พลอยงาม", "02/02/2555", "ใช่"]], tmp_path)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                assert b"<v>1449900000018</v>" in content
                content = content.replace(b"<v>1449900000018</v>", b"<v>1.449900000018E12</v>")
                content = content.replace(b"<v>10001</v>", b"<v>10001.0</v>")
            dst.writestr(item, content)
    sheet = load_workbook(io.BytesIO(out.getvalue()), read_only=True).worksheets[0]
    assert isinstance(next(sheet.iter_rows(min_row=2, values_only=True))[2], float)
    parsed = parse_roster(out.getvalue(), "roster.xlsx")
    assert parsed.issues == []
    [r] = parsed.rows
    assert (r.school_code, r.student_id, r.student_no) == ("1044449001", "1449900000018", "10001")


def test_xlsx_birth_dates_as_date_cells(sample_roster_bytes, tmp_path):
    reference = parse_roster(sample_roster_bytes, "roster.csv")
    table = sample_table(sample_roster_bytes)
    typed: list[list[object]] = [table[0]]
    for cells in table[1:]:
        values: list[object] = list(cells)
        birth = parse_birth_date(cells[10])
        values[10] = datetime(birth.year, birth.month, birth.day)
        typed.append(values)
    assert parse_roster(to_xlsx(typed, tmp_path), "roster.xlsx") == reference


# --- headers -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("dropped", [ID_HEADER, EXAM_HEADER, "ชั้น", "นามสกุล"])
def test_missing_required_header_refuses_the_file_and_names_it(sample_roster_bytes, dropped):
    table = sample_table(sample_roster_bytes)
    at = table[0].index(dropped)
    data = to_csv([[c for i, c in enumerate(r) if i != at] for r in table])
    with pytest.raises(Refusal) as exc:
        parse_roster(data, "roster.csv")
    assert exc.value.code == "file_headers"
    assert dropped in exc.value.message_th


def test_english_headers_are_not_mistaken_for_a_roster():
    data = to_csv([["school_code", "student_id", "grade"], ["1044449001", "1449900000018", "ม.1"]])
    with pytest.raises(Refusal) as exc:
        parse_roster(data, "roster.csv")
    assert exc.value.code == "file_headers"


def test_optional_columns_may_be_missing_and_columns_may_be_reordered():
    header = [EXAM_HEADER, "นามสกุล", "ชื่อ", "ชั้น", ID_HEADER, "รหัสโรงเรียน"]
    parsed = parse_roster(to_csv([header, ["ใช่", "พลอยงาม", "ปวีณา", "ม.1", "1449900000018", "1044449001"]]))
    assert parsed.issues == []
    [r] = parsed.rows
    assert (r.student_id, r.first_name, r.last_name, r.birth_date) == ("1449900000018", "ปวีณา", "พลอยงาม", None)


# --- per-row issues ------------------------------------------------------------------------------

def test_bad_check_digit_gives_an_issue_with_the_thai_header_and_the_value():
    data = to_csv([HEADER_ROW, row("1449900000018"), row("1-4499-00000-01-9"), row("1449900000026")])
    parsed = parse_roster(data, "roster.csv")
    assert [r.student_id for r in parsed.rows] == ["1449900000018", "1449900000026"]
    [issue] = parsed.issues
    assert (issue.row, issue.column, issue.value, issue.code) == (3, ID_HEADER, "1-4499-00000-01-9",
                                                                  "national_id_check_digit")
    assert issue.message_th and issue.message_en
    assert parsed.total_rows == 3


def test_duplicate_id_within_the_file_points_at_the_first_row():
    data = to_csv([HEADER_ROW, row("1449900000018"), row("1449900000026"), row("1-4499-00000-01-8", grade="ม.2")])
    parsed = parse_roster(data, "roster.csv")
    assert [r.student_id for r in parsed.rows] == ["1449900000018", "1449900000026"]
    [issue] = parsed.issues
    assert (issue.row, issue.column, issue.value, issue.code) == (4, ID_HEADER, "1-4499-00000-01-8",
                                                                  "duplicate_in_file")
    assert "2" in issue.message_th and "row 2" in issue.message_en


def test_thai_digits_in_ids_school_codes_and_dates():
    data = to_csv([HEADER_ROW, row("๑-๔๔๙๙-๐๐๐๐๐-๐๑-๘", school="๑๐๔๔๔๔๙๐๐๑", grade="ม.๓", birth="๐๒/๐๒/๒๕๕๕"),
                   row("G๖๖๔๔๐๐๐๐๐๐๐๘")])
    parsed = parse_roster(data, "roster.csv")
    assert parsed.issues == []
    assert [r.student_id for r in parsed.rows] == ["1449900000018", "G664400000008"]
    assert parsed.rows[0].school_code == "1044449001"
    assert parsed.rows[0].grade == "ม.3"
    assert parsed.rows[0].birth_date == date(2012, 2, 2)


def test_thai_digit_id_duplicates_its_arabic_twin():
    data = to_csv([HEADER_ROW, row("1449900000018"), row("๑๔๔๙๙๐๐๐๐๐๐๑๘")])
    parsed = parse_roster(data, "roster.csv")
    assert len(parsed.rows) == 1
    assert [i.code for i in parsed.issues] == ["duplicate_in_file"]


@pytest.mark.parametrize("raw,expected", [
    ("02/02/2555", date(2012, 2, 2)),
    ("29/02/2555", date(2012, 2, 29)),   # 2555 BE = 2012 CE, a leap year: convert the year before checking the day
    ("๑๗/๐๕/๒๕๕๔", date(2011, 5, 17)),
    ("17-05-2554", date(2011, 5, 17)),
    ("1/1/2560", date(2017, 1, 1)),
    ("02/02/2012", date(2012, 2, 2)),    # a year typed in CE is not moved 543 years back
])
def test_birth_dates_are_buddhist_era(raw, expected):
    assert parse_birth_date(raw) == expected
    parsed = parse_roster(to_csv([HEADER_ROW, row("1449900000018", birth=raw)]))
    assert parsed.issues == [] and parsed.rows[0].birth_date == expected


@pytest.mark.parametrize("raw", ["31/02/2555", "2555-02-02", "02/2555", "สองกุมภา", "29/02/2556"])
def test_bad_birth_dates_are_row_issues(raw):
    parsed = parse_roster(to_csv([HEADER_ROW, row("1449900000018", birth=raw)]))
    assert parsed.rows == []
    assert issue_summary(parsed) == [(2, "วันเกิด", raw, "birth_date_format")]


def test_blank_required_cells_and_bad_values_are_reported_per_column():
    data = to_csv([
        HEADER_ROW,
        row("", first=""),
        row("1449900000018", grade="ม.7"),
        row("1449900000026", exam="อาจจะ"),
        row("1449900000034", school="10444490"),
        [""] * 12,  # a blank line is skipped, not counted
        row("1449900000042", exam="สอบ"),
    ])
    parsed = parse_roster(data, "roster.csv")
    assert issue_summary(parsed) == [
        (2, ID_HEADER, "", "required"),
        (2, "ชื่อ", "", "required"),
        (3, "ชั้น", "ม.7", "grade_format"),
        (4, EXAM_HEADER, "อาจจะ", "sat_final_exam_value"),
        (5, "รหัสโรงเรียน", "10444490", "school_code_format"),
    ]
    assert [r.row for r in parsed.rows] == [7]
    assert parsed.total_rows == 5


def test_names_in_the_file_are_nfc_and_trimmed():
    parsed = parse_roster(to_csv([HEADER_ROW, row("1449900000018", first="  ป\u0e48\u0e39  ", last=" ทองดี ")]))
    assert parsed.rows[0].first_name == "ป\u0e39\u0e48"
    assert parsed.rows[0].last_name == "ทองดี"


# --- bad files: a refusal with a code, never an unhandled exception ------------------------------

def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _broken_xlsx(tmp_path: Path) -> bytes:
    """A real workbook whose sheet XML has been cut in half."""
    good = to_xlsx([HEADER_ROW, row("1449900000018")], tmp_path, "good.xlsx")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                content = content[: len(content) // 2]
            dst.writestr(item, content)
    return out.getvalue()


BAD_FILES = {
    "empty": lambda tmp: b"",
    "only a BOM": lambda tmp: b"\xef\xbb\xbf",
    "random bytes": lambda tmp: random.Random(3).randbytes(4096),
    "random bytes without NUL": lambda tmp: random.Random(5).randbytes(4096).replace(b"\x00", b"\x01"),
    "PNG": lambda tmp: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "PDF": lambda tmp: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" + bytes(range(128, 256)),
    "UTF-16 text": lambda tmp: "รหัสโรงเรียน,ชื่อ\n".encode("utf-16"),
    "zip that is not a workbook": lambda tmp: _zip({"readme.txt": "hello"}),
    "zip with broken XML": lambda tmp: _zip({"[Content_Types].xml": "<Types", "xl/workbook.xml": "<<"}),
    "workbook with a truncated sheet": _broken_xlsx,
    "truncated zip": lambda tmp: b"PK\x03\x04" + b"\x14\x00" * 20,
    "CSV named .xlsx": lambda tmp: to_csv([HEADER_ROW, row("1449900000018")]),
    "plain text": lambda tmp: b"hello, this is not a roster\n",
    "unterminated quote": lambda tmp: ("\"" + "ก" * 200_000).encode("utf-8"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_are_refused_with_a_code(kind, tmp_path):
    data = BAD_FILES[kind](tmp_path)
    name = "roster.xlsx" if kind == "CSV named .xlsx" else "upload"
    with pytest.raises(Refusal) as exc:
        parse_roster(data, name)
    refusal = exc.value
    # an unterminated quote runs to the end of the file: one cell longer than any cell may be (413)
    expected = {"file_cell_too_large": 413} if kind == "unterminated quote" else dict.fromkeys(
        ("file_empty", "file_type", "file_encoding", "file_unreadable", "file_headers"), 422)
    assert refusal.code in expected, refusal.code
    assert refusal.message_th and refusal.message_en and refusal.status == expected[refusal.code]


def test_xlsx_zero_led_id_typed_as_a_number_keeps_its_leading_zero(tmp_path):
    from domain.ids import national_id_check_digit

    first12 = "044990000001"
    zero_led = first12 + str(national_id_check_digit(first12))
    data = to_xlsx([HEADER_ROW, [1044449001, "x", int(zero_led), "ม.1", 1, 10001, "ช", "เด็กชาย",
                                 "ปวีณา", "พลอยงาม", "02/02/2555", "ใช่"]], tmp_path)
    parsed = parse_roster(data, "roster.xlsx")
    assert parsed.issues == []
    assert parsed.rows[0].student_id == zero_led
