"""Reading a DMC-style roster export (CSV in UTF-8 / UTF-8-BOM / TIS-620 / windows-874, or XLSX).

Pure: bytes in, normalised rows and per-row issues out. What the rows mean for the database (which
school, already active elsewhere) is decided by the caller.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date

from domain.grades import normalise_grade
from domain.ids import normalise_name, normalise_school_code, normalise_student_id
from domain.refusals import Refusal, invalid, refusal
from domain.thai_time import arabic_digits

# Thai headers of the DMC export, as in samples/roster-phase3-2566.csv.
HEADERS = {
    "รหัสโรงเรียน": "school_code",
    "ชื่อโรงเรียน": "school_name",
    "เลขประจำตัวประชาชน": "student_id",
    "ชั้น": "grade",
    "ห้อง": "classroom",
    "เลขประจำตัวนักเรียน": "student_no",
    "เพศ": "gender",
    "คำนำหน้าชื่อ": "prefix",
    "ชื่อ": "first_name",
    "นามสกุล": "last_name",
    "วันเกิด": "birth_date",
    "สอบปลายภาค": "sat_final_exam",
}
REQUIRED = ("school_code", "student_id", "grade", "first_name", "last_name", "sat_final_exam")
HEADER_OF = {v: k for k, v in HEADERS.items()}
YES = {"ใช่", "y", "yes", "true", "1", "สอบ"}
NO = {"ไม่ใช่", "n", "no", "false", "0", "ไม่สอบ"}
MAX_BYTES = 50 * 1024 * 1024
# A whole area's 60,000-row export unpacks to about 45 MB; a small zip that unpacks to gigabytes is a bomb.
MAX_XLSX_UNPACKED = 256 * 1024 * 1024


@dataclass
class RowIssue:
    row: int  # 1-based as a spreadsheet shows it, the header being row 1
    column: str  # the Thai header
    value: str
    code: str
    message_th: str
    message_en: str


@dataclass
class RosterRow:
    row: int
    school_code: str
    student_id: str
    grade: str
    first_name: str
    last_name: str
    sat_final_exam: bool
    classroom: str = ""
    student_no: str = ""
    gender: str = ""
    prefix: str = ""
    birth_date: date | None = None


@dataclass
class RosterFile:
    rows: list[RosterRow] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    total_rows: int = 0


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM) first; a file that is not valid UTF-8 is Thai Windows/TIS-620."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # windows-874 is a superset of TIS-620, so one codec covers both.
        return data.decode("cp874", errors="strict")


def _xlsx_rows(data: bytes) -> list[list[str]]:
    # python-calamine (Rust) reads a 60,000-row export in about a second; openpyxl took twenty.
    from python_calamine import CalamineWorkbook

    # Checked before anything is unpacked. The declared sizes are enough: the reader stops at them.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_XLSX_UNPACKED:
            raise refusal("file_too_large", f"ไฟล์ XLSX เมื่อขยายแล้วใหญ่เกิน {MAX_XLSX_UNPACKED // (1024 * 1024)} MB",
                          f"The XLSX file unpacks to more than {MAX_XLSX_UNPACKED // (1024 * 1024)} MB", 413)

    sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
    return [["" if v is None else _cell_text(v) for v in row] for row in sheet.to_python(skip_empty_area=False)]


def _cell_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a 13-digit ID typed as a number
    if isinstance(value, date):
        return f"{value.day:02d}/{value.month:02d}/{value.year + 543}"
    return str(value).replace("\x00", "")


def read_table(data: bytes, filename: str = "") -> list[list[str]]:
    if len(data) > MAX_BYTES:
        raise refusal("file_too_large", f"ไฟล์ใหญ่เกิน {MAX_BYTES // (1024 * 1024)} MB",
                      f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB", 413)
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx"):
        try:
            return _xlsx_rows(data)
        except Refusal:
            raise
        # An uploaded workbook is untrusted: broken XML (ParseError), missing parts (KeyError), bad values
        # (TypeError/ValueError), no sheet (IndexError)... whatever fails, the file is unreadable.
        except Exception as exc:  # noqa: BLE001
            raise invalid("file_unreadable", "อ่านไฟล์ XLSX ไม่ได้ ไฟล์อาจเสียหาย",
                          f"The XLSX file cannot be read ({type(exc).__name__})") from exc
    if b"\x00" in data:  # UTF-16, a binary file, or NUL in a cell: never a DMC export
        raise invalid("file_type", "ไฟล์ต้องเป็น CSV หรือ XLSX", "The file must be CSV or XLSX")
    try:
        text = decode_csv(data)
    except UnicodeDecodeError as exc:
        raise invalid("file_encoding", "อ่านตัวอักษรในไฟล์ไม่ได้ ให้บันทึกเป็น CSV UTF-8",
                      "The file's characters cannot be read; save it as CSV UTF-8") from exc
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise invalid("file_unreadable", "รูปแบบ CSV ไม่ถูกต้อง", f"The CSV is malformed ({exc})") from exc


def parse_birth_date(raw: str) -> date:
    """DMC writes dd/mm/yyyy in the Buddhist era."""
    day, month, year = (int(p) for p in arabic_digits(raw).strip().replace("-", "/").split("/"))
    return date(year - 543 if year > 2400 else year, month, day)


def _issue(row: int, key: str, value: str, refusal: Refusal) -> RowIssue:
    return RowIssue(row, HEADER_OF.get(key, key), value, refusal.code, refusal.message_th, refusal.message_en)


def parse_roster(data: bytes, filename: str = "") -> RosterFile:
    table = read_table(data, filename)
    result = RosterFile()
    if not table:
        raise invalid("file_empty", "ไฟล์ว่าง", "The file is empty")
    header = [h.strip().lstrip("\ufeff") for h in table[0]]
    columns = {HEADERS[h]: i for i, h in enumerate(header) if h in HEADERS}
    missing = [HEADER_OF[k] for k in REQUIRED if k not in columns]
    if missing:
        raise invalid("file_headers", f"ไม่พบหัวคอลัมน์: {', '.join(missing)}",
                      f"Missing column headers: {', '.join(missing)}")
    seen: dict[str, int] = {}
    for index, cells in enumerate(table[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        result.total_rows += 1
        raw = {k: (cells[i].strip() if i < len(cells) else "") for k, i in columns.items()}
        row = _parse_row(index, raw, result.issues)
        if row is None:
            continue
        if row.student_id in seen:
            result.issues.append(_issue(index, "student_id", raw["student_id"], invalid(
                "duplicate_in_file", f"เลขนี้ซ้ำกับแถวที่ {seen[row.student_id]} ในไฟล์เดียวกัน",
                f"Same ID as row {seen[row.student_id]} of this file")))
            continue
        seen[row.student_id] = index
        result.rows.append(row)
    return result


def _parse_row(index: int, raw: dict[str, str], issues: list[RowIssue]) -> RosterRow | None:
    before = len(issues)

    def take(key: str, parse):
        try:
            return parse(raw.get(key, ""))
        except Refusal as refusal:
            issues.append(_issue(index, key, raw.get(key, ""), refusal))
        return None

    for key in REQUIRED:
        if not raw.get(key):
            issues.append(_issue(index, key, "", invalid("required", "ต้องกรอกช่องนี้", "This column is required")))
    if len(issues) > before:
        return None
    if raw["student_id"].isdigit() and len(raw["student_id"]) == 12:
        raw["student_id"] = raw["student_id"].zfill(13)  # a 0-led ID typed as a number in a spreadsheet
    school = take("school_code", normalise_school_code)
    student = take("student_id", normalise_student_id)
    grade = take("grade", normalise_grade)
    sat = raw["sat_final_exam"].strip().lower()
    if sat not in YES | NO:
        issues.append(_issue(index, "sat_final_exam", raw["sat_final_exam"],
                             invalid("sat_final_exam_value", "ช่องสอบปลายภาคต้องเป็น ใช่ หรือ ไม่ใช่",
                                     "The final-exam column must be ใช่ or ไม่ใช่")))
    elif sat in NO:
        issues.append(_issue(index, "sat_final_exam", raw["sat_final_exam"], invalid(
            "r2_no_final_exam",
            "นำเข้าไม่ได้: ทะเบียนต้องมีเฉพาะนักเรียนที่สอบปลายภาคปีการศึกษา 2566 ที่โรงเรียนนี้ (ข้อ 2)",
            "Not imported: the roster holds only students who sat the AY 2566 final exam at this school (R2)")))
    birth = None
    if raw.get("birth_date"):
        try:
            birth = parse_birth_date(raw["birth_date"])
        except (ValueError, TypeError):
            issues.append(_issue(index, "birth_date", raw["birth_date"], invalid(
                "birth_date_format", "วันเกิดต้องเป็น วว/ดด/ปปปป (พ.ศ.)", "Birth date must be dd/mm/yyyy (BE)")))
    if len(issues) > before:
        return None
    return RosterRow(
        row=index, school_code=school, student_id=student, grade=grade,
        first_name=normalise_name(raw["first_name"]), last_name=normalise_name(raw["last_name"]),
        sat_final_exam=True, classroom=raw.get("classroom", ""), student_no=raw.get("student_no", ""),
        gender=raw.get("gender", ""), prefix=normalise_name(raw.get("prefix", "")), birth_date=birth,
    )
