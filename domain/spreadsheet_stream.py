"""An uploaded spreadsheet (CSV or XLSX), read row by row in bounded memory.

An upload is untrusted (issue 15, finding 2: a 1.5 KB workbook with cells at A1 and XFD1048576 made the
old reader, python-calamine, allocate a dense 512 GiB grid and abort the API). Here nothing is sized from
what the file declares: a sheet's `<dimension>` is never read, and each cap is checked while streaming,
before what it bounds is allocated:

- the zip: its entries are counted before the central directory is read, and each member's declared
  size, the total and the compression ratio are checked before anything is inflated (zipfile never
  inflates past a member's declared size);
- XLSX parts are streamed through expat, never built as trees: a cell's or a shared string's text is
  counted as expat hands it over, a DOCTYPE (entity tricks) is refused, shared strings are counted;
- every cell with a value is placed by its own reference, and refused beyond the column cap or row cap
  before its row is built; empty (styled) cells are skipped;
- CSV lines are read with a length bound per record, then the same caps apply.

Rows come out as `(row number as a spreadsheet shows it, cells)`; rows without any value are skipped.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from xml.parsers import expat

from openpyxl.styles.numbers import is_date_format
from openpyxl.utils.cell import get_column_letter
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

from domain.refusals import Refusal, invalid, refusal

MiB = 1024 * 1024
MAX_BYTES = 50 * MiB  # an upload (the API refuses larger bodies before reading them: DMCFLOW_MAX_UPLOAD_BYTES)
# Zip structure: an XLSX from Excel has 10 to 30 parts; deflate's own ceiling is about 1,000:1, and a
# 60,000-row sheet deflates about 12:1, so 200:1 on a part of a megabyte or more is a bomb, not a sheet.
ZIP_MAX_MEMBERS = 1000
ZIP_MAX_RATIO = 200
ZIP_RATIO_FROM = MiB
XLSX_MAX_STYLES = 65_536  # Excel's own ceiling is 64,000 cell formats; styles past it are never dates here
CHUNK = 256 * 1024  # XML fed to expat at a time: rows found in it are handed on before the next chunk


@dataclass(frozen=True)
class FileLimits:
    """Caps on one uploaded file (settings DMCFLOW_UPLOAD_MAX_*). A whole area's DMC export is about
    60,000 rows of 12 columns, whose XLSX unpacks to about 45 MB."""

    max_rows: int = 200_000  # data rows, the header not counted
    max_columns: int = 64
    max_cell_chars: int = 4096
    max_unpacked_bytes: int = 256 * MiB  # an XLSX's parts, as the zip declares them

    @classmethod
    def from_settings(cls, settings) -> FileLimits:
        """`settings`: a dmcflow.settings.Settings (not imported: the domain stays free of configuration)."""
        return cls(max_rows=settings.upload_max_rows, max_columns=settings.upload_max_columns,
                   max_cell_chars=settings.upload_max_cell_chars,
                   max_unpacked_bytes=settings.upload_max_unpacked_bytes)

    @property
    def max_shared_strings(self) -> int:
        # distinct texts of a workbook: a DMC export has two or three per row (ID, student number, date)
        return (self.max_rows + 1) * 8


# --- refusals: the limit named, never the cell's content (it may be a national ID) ----------------------

def too_many_rows(limits: FileLimits, row: int) -> Refusal:
    return refusal("file_too_many_rows",
                   f"ไฟล์มีข้อมูลเกิน {limits.max_rows:,} แถว (พบข้อมูลที่แถว {row:,}) ให้แบ่งเป็นหลายไฟล์",
                   f"The file has more than {limits.max_rows:,} rows of data (data found at row {row:,}); "
                   f"split it into several files", 413)


def too_many_columns(limits: FileLimits, row: int, column: int) -> Refusal:
    where = f"{get_column_letter(column)}{row}" if column <= 16384 else f"row {row:,}, column {column:,}"
    return refusal("file_too_many_columns",
                   f"ไฟล์มีข้อมูลเกิน {limits.max_columns} คอลัมน์ (พบข้อมูลที่ {where})",
                   f"The file has data beyond {limits.max_columns} columns (at {where})", 413)


def cell_too_large(limits: FileLimits, where: str) -> Refusal:
    return refusal("file_cell_too_large",
                   f"ข้อความในช่อง {where} ยาวเกิน {limits.max_cell_chars:,} ตัวอักษร",
                   f"The text in {where} is longer than {limits.max_cell_chars:,} characters", 413)


def row_too_long(limits: FileLimits, row: int) -> Refusal:
    return refusal("file_row_too_long",
                   f"แถวที่ {row:,} ของไฟล์ CSV ยาวเกินกำหนด ({limits.max_columns} คอลัมน์ "
                   f"คอลัมน์ละไม่เกิน {limits.max_cell_chars:,} ตัวอักษร)",
                   f"Row {row:,} of the CSV file is too long ({limits.max_columns} columns of at most "
                   f"{limits.max_cell_chars:,} characters each)", 413)


def _unpacks_too_large(limits: FileLimits) -> Refusal:
    mb = limits.max_unpacked_bytes // MiB
    return refusal("file_too_large", f"ไฟล์ XLSX เมื่อขยายแล้วใหญ่เกิน {mb} MB",
                   f"The XLSX file unpacks to more than {mb} MB", 413)


def unreadable(detail: str) -> Refusal:
    return invalid("file_unreadable", "อ่านไฟล์ XLSX ไม่ได้ ไฟล์อาจเสียหาย", f"The XLSX file cannot be read ({detail})")


# --- the zip, before anything is inflated -----------------------------------------------------------------

def open_zip(data: bytes, limits: FileLimits) -> zipfile.ZipFile:
    # Every central-directory entry starts with this signature, so its count bounds the entries before
    # zipfile builds an object for each (a 50 MB upload could declare a million of them).
    if data.count(b"PK\x01\x02") > ZIP_MAX_MEMBERS:
        raise refusal("file_too_many_parts", f"ไฟล์ XLSX มีส่วนประกอบเกิน {ZIP_MAX_MEMBERS:,} ส่วน",
                      f"The XLSX file has more than {ZIP_MAX_MEMBERS:,} parts", 413)
    archive = zipfile.ZipFile(io.BytesIO(data))
    members = archive.infolist()
    if sum(m.file_size for m in members) > limits.max_unpacked_bytes:
        raise _unpacks_too_large(limits)
    for m in members:
        if m.file_size >= ZIP_RATIO_FROM and m.file_size > ZIP_MAX_RATIO * max(m.compress_size, 1):
            raise refusal("file_compression_ratio",
                          f"ไฟล์ XLSX บีบอัดผิดปกติ: มีส่วนที่ขยายได้เกิน {ZIP_MAX_RATIO} เท่า",
                          f"The XLSX file is compressed abnormally: a part expands more than {ZIP_MAX_RATIO} times",
                          413)
    return archive


# --- XLSX parts through expat ----------------------------------------------------------------------------

MAIN_NS = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main", "http://purl.oclc.org/ooxml/spreadsheetml/main")


def _parser() -> expat.XMLParserType:
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True

    def no_doctype(*_):  # OOXML parts never have one; entity expansion is the classic XML bomb
        raise unreadable("DOCTYPE")

    parser.StartDoctypeDeclHandler = no_doctype
    return parser


def _stream(archive: zipfile.ZipFile, name: str, parser: expat.XMLParserType) -> Iterator[None]:
    """Feeds a part to `parser` a chunk at a time; yields after each chunk so the caller can hand on rows."""
    with archive.open(name) as part:
        while chunk := part.read(CHUNK):
            parser.Parse(chunk, False)
            yield
    parser.Parse(b"", True)
    yield


def _scan(archive: zipfile.ZipFile, name: str, on_start: Callable[[str, dict], None]) -> None:
    """A small part (relationships, workbook, styles): each element's local name and attributes."""
    parser = _parser()
    parser.StartElementHandler = lambda tag, attrs: on_start(tag.rpartition("}")[2], attrs)
    for _ in _stream(archive, name, parser):
        pass


def _attr(attrs: dict, local: str) -> str | None:
    """An attribute by local name, whatever its namespace (r:id is transitional or strict)."""
    for key, value in attrs.items():
        if key.rpartition("}")[2] == local:
            return value
    return None


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type's last segment, target path in the zip) of `part`'s relationships."""
    folder, base = posixpath.split(part)
    rels: dict[str, tuple[str, str]] = {}

    def on(tag: str, attrs: dict) -> None:
        if tag == "Relationship" and attrs.get("TargetMode") != "External" and attrs.get("Target"):
            target = attrs["Target"]
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
            rels[attrs.get("Id", "")] = (attrs.get("Type", "").rpartition("/")[2], path)

    _scan(archive, posixpath.join(folder, "_rels", base + ".rels"), on)
    return rels


@dataclass
class _Workbook:
    sheet: str
    shared_strings: str | None
    styles: str | None
    epoch: datetime


def _workbook(archive: zipfile.ZipFile) -> _Workbook:
    """The first sheet (as calamine's index 0 and Excel's first tab), and the parts its cells refer to."""
    book = next((path for kind, path in _relationships(archive, "").values() if kind == "officeDocument"),
                "xl/workbook.xml")
    sheets: list[str] = []
    epoch = [CALENDAR_WINDOWS_1900]

    def on(tag: str, attrs: dict) -> None:
        if tag == "sheet":
            sheets.append(_attr(attrs, "id") or "")
        elif tag == "workbookPr" and attrs.get("date1904", "").lower() in ("1", "true"):
            epoch[0] = CALENDAR_MAC_1904

    _scan(archive, book, on)
    rels = _relationships(archive, book)
    if not sheets or sheets[0] not in rels:
        raise unreadable("no sheet")
    by_kind = {kind: path for kind, path in rels.values()}
    return _Workbook(sheet=rels[sheets[0]][1], shared_strings=by_kind.get("sharedStrings"),
                     styles=by_kind.get("styles"), epoch=epoch[0])


# Built-in number formats that are dates (ECMA-376 18.8.30, and the East Asian and Thai ids Excel uses,
# as calamine recognises them); custom formats are judged by openpyxl.
BUILTIN_DATE_FORMATS = {*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59), *range(71, 82)}


def _date_styles(archive: zipfile.ZipFile, styles: str | None) -> frozenset[str]:
    """The `s` values (cell format indexes, as text) whose number format shows a date."""
    if styles is None or styles not in archive.namelist():
        return frozenset()
    custom: dict[str, str] = {}
    formats: list[str] = []
    in_cell_xfs = [False]

    def on(tag: str, attrs: dict) -> None:
        if tag == "numFmt":
            custom[attrs.get("numFmtId", "")] = attrs.get("formatCode", "")
        elif tag == "cellXfs":
            in_cell_xfs[0] = True
        elif tag == "cellStyleXfs" or tag == "dxfs":
            in_cell_xfs[0] = False
        elif tag == "xf" and in_cell_xfs[0] and len(formats) < XLSX_MAX_STYLES:
            formats.append(attrs.get("numFmtId", "0"))

    _scan(archive, styles, on)

    def is_date(fmt: str) -> bool:
        if fmt in custom:
            return is_date_format(custom[fmt])
        return fmt.isdigit() and int(fmt) in BUILTIN_DATE_FORMATS

    return frozenset(str(i) for i, fmt in enumerate(formats) if is_date(fmt))


_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")  # OOXML writes control characters in text as _xHHHH_


def _unescape(text: str) -> str:
    if "_x" in text:
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text.replace("\x00", "")


# Element kinds of sharedStrings and sheet XML (small ints: the handlers run for every element)
ROW, CELL, VALUE, TEXT, INLINE, PHONETIC, STRING = range(1, 8)
KINDS = {f"{ns}}}{name}": kind for ns in MAIN_NS for name, kind in
         (("row", ROW), ("c", CELL), ("v", VALUE), ("t", TEXT), ("is", INLINE), ("rPh", PHONETIC), ("si", STRING))}


def _shared_strings(archive: zipfile.ZipFile, part: str | None, limits: FileLimits) -> list[str]:
    if part is None or part not in archive.namelist():
        return []
    strings: list[str] = []
    most, cap = limits.max_shared_strings, limits.max_cell_chars
    kind_of = KINDS.get
    pieces: list[str] = []
    size = phonetic = 0  # <rPh> runs hold a reading aid, not the text
    collecting = False

    def start(tag: str, _attrs: dict) -> None:
        nonlocal collecting, phonetic
        kind = kind_of(tag)
        if kind == TEXT:
            collecting = not phonetic
        elif kind == PHONETIC:
            phonetic += 1

    def data(text: str) -> None:
        nonlocal size
        if collecting:
            pieces.append(text)
            size += len(text)
            if size > cap:
                raise cell_too_large(limits, "a shared string (sharedStrings)")

    def end(tag: str) -> None:
        nonlocal collecting, phonetic, size
        kind = kind_of(tag)
        if kind == TEXT:
            collecting = False
        elif kind == STRING:
            if len(strings) >= most:
                raise refusal("file_too_large", f"ไฟล์ XLSX มีข้อความต่างกันเกิน {most:,} ข้อความ",
                              f"The XLSX file has more than {most:,} distinct texts", 413)
            text = "".join(pieces)
            strings.append(_unescape(text) if "_x" in text or "\x00" in text else text)
            pieces.clear()
            size = 0
        elif kind == PHONETIC:
            phonetic -= 1

    parser = _parser()
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, data
    for _ in _stream(archive, part, parser):
        pass
    return strings


_COLUMNS: dict[str, int] = {}  # "AB" -> 28: references repeat on every row


def _column(letters: str) -> int:
    number = _COLUMNS.get(letters)
    if number is None:
        if not letters or len(letters) > 3 or not letters.isascii() or not letters.isupper():
            raise unreadable("cell reference")
        number = 0
        for ch in letters:
            number = number * 26 + ord(ch) - 64
        if number <= 16384 and len(_COLUMNS) < 20_000:
            _COLUMNS[letters] = number
    return number


def _number_text(raw: str, date_style: bool, epoch: datetime) -> str:
    try:
        value = float(raw)
    except ValueError:
        return raw
    if date_style and value >= 1:
        try:
            return thai_date(from_excel(value, epoch))
        except (ValueError, OverflowError):
            pass
    if value.is_integer():
        return str(int(value))  # a 13-digit ID typed as a number
    return str(value)


def thai_date(value: date) -> str:
    """A date cell as DMC writes dates: dd/mm/yyyy in the Buddhist era."""
    return f"{value.day:02d}/{value.month:02d}/{value.year + 543}"


def _cell_value(kind: str | None, raw: str, shared: list[str], date_style: bool, epoch: datetime) -> str:
    if kind == "s":
        return shared[int(raw)] if raw else ""
    if kind is None or kind == "n":
        return _number_text(raw, date_style, epoch) if raw else ""
    if kind == "inlineStr" or kind == "str" or kind == "e":
        return _unescape(raw) if "_x" in raw or "\x00" in raw else raw
    if kind == "b":
        return "" if not raw else ("True" if raw.strip() in ("1", "true") else "False")
    if kind == "d":
        return thai_date(date.fromisoformat(raw.strip()[:10])) if raw else ""
    raise unreadable("cell type")


def xlsx_rows(data: bytes, limits: FileLimits) -> Iterator[tuple[int, list[str]]]:
    archive = open_zip(data, limits)
    book = _workbook(archive)
    shared = _shared_strings(archive, book.shared_strings, limits)
    dates = _date_styles(archive, book.styles)
    epoch, max_columns, last_row, cap = book.epoch, limits.max_columns, limits.max_rows + 1, limits.max_cell_chars
    # The handlers below run for every element of a sheet (about 2 million for 60,000 rows): they are kept
    # flat, with the common cases inline, because they are most of the time an import takes to read.
    kind_of, value_of, known_column, join = KINDS.get, _cell_value, _COLUMNS.get, "".join
    ready: list[tuple[int, list[str]]] = []
    count = 0
    # the row being read, and the cell being read in it; a cell's text is counted as expat hands it over
    row = column = size = inline = phonetic = 0
    cells: dict[int, str] = {}
    cell_type = style = ref = None
    pieces: list[str] = []
    collecting = False

    def start(tag: str, attrs: dict) -> None:
        nonlocal row, cells, column, cell_type, style, ref, inline, phonetic, collecting, size
        kind = kind_of(tag)
        if kind == CELL:
            ref = attrs.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                column = known_column(letters) or _column(letters)
            else:
                column += 1
            cell_type, style = attrs.get("t"), attrs.get("s")
            pieces.clear()
            size = 0
        elif kind == VALUE:
            collecting = True
        elif kind == TEXT:
            collecting = inline and not phonetic
        elif kind == INLINE:
            inline += 1
        elif kind == ROW:
            r = attrs.get("r")
            row = int(r) if r else row + 1
            cells, column = {}, 0
        elif kind == PHONETIC:
            phonetic += 1

    def data(text: str) -> None:
        nonlocal size
        if collecting:
            pieces.append(text)
            size += len(text)
            if size > cap:
                raise cell_too_large(limits, ref or f"{get_column_letter(min(column, 16384))}{row}")

    def end(tag: str) -> None:
        nonlocal cells, inline, phonetic, count, collecting
        kind = kind_of(tag)
        if kind == VALUE or kind == TEXT:
            collecting = False
        elif kind == CELL:
            raw = join(pieces)
            if cell_type == "s":
                value = shared[int(raw)] if raw else ""
            elif cell_type == "inlineStr" and "_x" not in raw and "\x00" not in raw:
                value = raw
            else:
                value = value_of(cell_type, raw, shared, style in dates, epoch)
            if value:
                if column > max_columns:
                    raise too_many_columns(limits, row, column)
                if row > last_row:
                    raise too_many_rows(limits, row)
                cells[column] = value
        elif kind == INLINE:
            inline -= 1
        elif kind == ROW:
            if cells:
                count += 1
                if count > last_row:  # the same row number over and over
                    raise too_many_rows(limits, row)
                line = [""] * max(cells)
                for at, value in cells.items():
                    line[at - 1] = value
                ready.append((row, line))
                cells = {}
        elif kind == PHONETIC:
            phonetic -= 1

    parser = _parser()
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, data
    for _ in _stream(archive, book.sheet, parser):
        yield from ready
        ready.clear()


# --- CSV -------------------------------------------------------------------------------------------------

def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM) first; a file that is not valid UTF-8 is Thai Windows/TIS-620."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # windows-874 is a superset of TIS-620, so one codec covers both.
        return data.decode("cp874", errors="strict")


def csv_rows(data: bytes, limits: FileLimits) -> Iterator[tuple[int, list[str]]]:
    if b"\x00" in data:  # UTF-16, a binary file, or NUL in a cell: never a DMC export
        raise invalid("file_type", "ไฟล์ต้องเป็น CSV หรือ XLSX", "The file must be CSV or XLSX")
    try:
        text = decode_csv(data)
    except UnicodeDecodeError as exc:
        raise invalid("file_encoding", "อ่านตัวอักษรในไฟล์ไม่ได้ ให้บันทึกเป็น CSV UTF-8",
                      "The file's characters cannot be read; save it as CSV UTF-8") from exc
    source = io.StringIO(text, newline="")
    # A record (one row, maybe over several lines in quotes) may hold every column at the cell cap, quoted.
    budget = limits.max_columns * (limits.max_cell_chars + 3) + 2
    used = 0
    number = 0

    def lines() -> Iterator[str]:
        nonlocal used
        while line := source.readline(budget + 1):  # never more than the budget read into one string
            used += len(line)
            if used > budget:
                raise row_too_long(limits, number + 1)
            yield line

    reader = csv.reader(lines())
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):  # csv's own cap (128 KiB), below the budget
                raise cell_too_large(limits, f"row {number + 1:,}") from exc
            raise invalid("file_unreadable", "รูปแบบ CSV ไม่ถูกต้อง", f"The CSV is malformed ({exc})") from exc
        if cells is None:
            return
        number += 1
        used = 0
        while cells and not cells[-1].strip():
            cells.pop()
        if not cells:
            continue
        if number > limits.max_rows + 1:
            raise too_many_rows(limits, number)
        if len(cells) > limits.max_columns:
            raise too_many_columns(limits, number, len(cells))
        for at, cell in enumerate(cells, start=1):
            if len(cell) > limits.max_cell_chars:
                raise cell_too_large(limits, f"{get_column_letter(at)}{number}")
        yield number, cells


# --- either ----------------------------------------------------------------------------------------------

def is_xlsx(data: bytes, filename: str) -> bool:
    return data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx")


def spreadsheet_rows(data: bytes, filename: str = "", limits: FileLimits = FileLimits()) -> Iterator[tuple[int, list[str]]]:
    """The rows that hold a value, each as (its row number, its cells up to its last value); a Refusal
    (4xx, with a code) for a file that is not a readable spreadsheet or passes a cap, raised as soon as it
    is found: a caller that acts on rows should read them all first."""
    if len(data) > MAX_BYTES:
        raise refusal("file_too_large", f"ไฟล์ใหญ่เกิน {MAX_BYTES // MiB} MB",
                      f"The file is larger than {MAX_BYTES // MiB} MB", 413)
    if not is_xlsx(data, filename):
        yield from csv_rows(data, limits)
        return
    try:
        yield from xlsx_rows(data, limits)
    except Refusal:
        raise
    # An uploaded workbook is untrusted: broken XML (ExpatError), missing parts (KeyError), bad values
    # (ValueError, IndexError), a broken zip (BadZipFile, zlib.error, EOFError)... whatever fails, the file
    # is unreadable.
    except Exception as exc:  # noqa: BLE001
        raise unreadable(type(exc).__name__) from exc
