"""Reading a DMC-style roster export (CSV in UTF-8 / UTF-8-BOM / TIS-620 / windows-874, or XLSX).

Pure: bytes in, normalised rows and per-row issues out. What the rows mean for the database (which
school, already active elsewhere) is decided by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from domain.grades import normalise_grade
from domain.ids import normalise_name, normalise_school_code, normalise_student_id
from domain.refusals import Refusal, invalid
from domain.spreadsheet_limits import FileLimits
from domain.spreadsheet_stream import spreadsheet_rows
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
    "ปีการศึกษาที่เข้าเรียน": "entry_academic_year",  # optional, BE: an applicant for next year is refused (R5)
}
REQUIRED = ("school_code", "student_id", "grade", "first_name", "last_name", "sat_final_exam")
HEADER_OF = {v: k for k, v in HEADERS.items()}
YES = {"ใช่", "y", "yes", "true", "1", "สอบ"}
NO = {"ไม่ใช่", "n", "no", "false", "0", "ไม่สอบ"}


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
    entry_academic_year: int | None = None  # checked against the round's year where it is applied (R5)


@dataclass
class RosterFile:
    rows: list[RosterRow] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    total_rows: int = 0


def parse_birth_date(raw: str) -> date:
    """DMC writes dd/mm/yyyy in the Buddhist era."""
    day, month, year = (int(p) for p in arabic_digits(raw).strip().replace("-", "/").split("/"))
    return date(year - 543 if year > 2400 else year, month, day)


def _issue(row: int, key: str, value: str, refusal: Refusal) -> RowIssue:
    return RowIssue(row, HEADER_OF.get(key, key), value, refusal.code, refusal.message_th, refusal.message_en)


def parse_roster(data: bytes, filename: str = "", limits: FileLimits = FileLimits()) -> RosterFile:
    """The whole file is read (streamed, within `limits`) before the caller acts on any row: a file refused
    at its last row changes nothing."""
    table = spreadsheet_rows(data, filename, limits)
    result = RosterFile()
    first = next(table, None)
    if first is None:
        raise invalid("file_empty", "ไฟล์ว่าง", "The file is empty")
    header = [h.strip().lstrip("\ufeff") for h in first[1]]
    columns = {HEADERS[h]: i for i, h in enumerate(header) if h in HEADERS}
    missing = [HEADER_OF[k] for k in REQUIRED if k not in columns]
    if missing:
        raise invalid("file_headers", f"ไม่พบหัวคอลัมน์: {', '.join(missing)}",
                      f"Missing column headers: {', '.join(missing)}")
    seen: dict[str, int] = {}
    memo: dict = {}
    for index, cells in table:  # index: the row number a spreadsheet shows
        if not "".join(cells).strip():  # no cell with a value
            continue
        result.total_rows += 1
        raw = {k: (cells[i].strip() if i < len(cells) else "") for k, i in columns.items()}
        row = _parse_row(index, raw, result.issues, memo)
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


_MISSING = object()


def _memo(memo: dict, key: str, text: str, parse):
    """`parse(text)`, or the Refusal it raised, once per file for each distinct text of a column: school
    codes, grades, prefixes, names and birth dates repeat from row to row (national IDs do not: not kept)."""
    seen = memo.get(key)
    if seen is None:
        seen = memo[key] = {}
    found = seen.get(text, _MISSING)
    if found is _MISSING:
        try:
            found = parse(text)
        except Refusal as refusal:
            found = refusal
        seen[text] = found
    return found


def _birth_date(raw: str) -> date:
    try:
        return parse_birth_date(raw)
    except (ValueError, TypeError):
        raise invalid("birth_date_format", "วันเกิดต้องเป็น วว/ดด/ปปปป (พ.ศ.)", "Birth date must be dd/mm/yyyy (BE)") from None


def _entry_year(raw: str) -> int:
    try:
        return int(arabic_digits(raw).strip())
    except ValueError:
        raise invalid("entry_year_format", "ปีการศึกษาที่เข้าเรียนต้องเป็นปี พ.ศ. เช่น 2566",
                      "The entry academic year must be a BE year such as 2566") from None


def _sat_final_exam(raw: str) -> bool:
    sat = raw.strip().lower()
    if sat in NO:
        raise invalid("r2_no_final_exam",
                      "นำเข้าไม่ได้: ทะเบียนต้องมีเฉพาะนักเรียนที่สอบปลายภาคปีการศึกษา 2566 ที่โรงเรียนนี้ (ข้อ 2)",
                      "Not imported: the roster holds only students who sat the AY 2566 final exam at this school (R2)")
    if sat not in YES:
        raise invalid("sat_final_exam_value", "ช่องสอบปลายภาคต้องเป็น ใช่ หรือ ไม่ใช่",
                      "The final-exam column must be ใช่ or ไม่ใช่")
    return True


def _parse_row(index: int, raw: dict[str, str], issues: list[RowIssue], memo: dict) -> RosterRow | None:
    before = len(issues)

    def take(key: str, parse, cached: bool = True):
        text = raw.get(key, "")
        if cached:
            value = _memo(memo, key, text, parse)
        else:
            try:
                value = parse(text)
            except Refusal as refusal:
                value = refusal
        if isinstance(value, Refusal):
            issues.append(_issue(index, key, text, value))
            return None
        return value

    for key in REQUIRED:
        if not raw.get(key):
            issues.append(_issue(index, key, "", invalid("required", "ต้องกรอกช่องนี้", "This column is required")))
    if len(issues) > before:
        return None
    if raw["student_id"].isdigit() and len(raw["student_id"]) == 12:
        raw["student_id"] = raw["student_id"].zfill(13)  # a 0-led ID typed as a number in a spreadsheet
    school = take("school_code", normalise_school_code)
    student = take("student_id", normalise_student_id, cached=False)
    grade = take("grade", normalise_grade)
    take("sat_final_exam", _sat_final_exam)
    birth = take("birth_date", _birth_date) if raw.get("birth_date") else None
    entry_year = take("entry_academic_year", _entry_year) if raw.get("entry_academic_year") else None
    if len(issues) > before:
        return None
    return RosterRow(
        row=index, school_code=school, student_id=student, grade=grade,
        first_name=take("first_name", normalise_name), last_name=take("last_name", normalise_name),
        sat_final_exam=True, classroom=raw.get("classroom", ""), student_no=raw.get("student_no", ""),
        gender=raw.get("gender", ""), prefix=take("prefix", normalise_name), birth_date=birth,
        entry_academic_year=entry_year,
    )
