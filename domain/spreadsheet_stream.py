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
from collections.abc import Iterator
from datetime import date, datetime

from openpyxl.utils.cell import get_column_letter
from openpyxl.utils.datetime import from_excel

from domain.refusals import Refusal, invalid, refusal
from domain.spreadsheet_limits import (
    MAX_BYTES, MiB, FileLimits, cell_too_large, row_too_long, too_many_columns, too_many_rows, unreadable,
)
from domain.xlsx_parts import (
    CELL, INLINE, KINDS, PHONETIC, ROW, TEXT, VALUE, date_styles, open_zip, shared_strings, stream_part, unescape,
    workbook, xml_parser,
)


# --- the first sheet of an XLSX, row by row -----------------------------------------------------------------

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
        return unescape(raw) if "_x" in raw or "\x00" in raw else raw
    if kind == "b":
        return "" if not raw else ("True" if raw.strip() in ("1", "true") else "False")
    if kind == "d":
        return thai_date(date.fromisoformat(raw.strip()[:10])) if raw else ""
    raise unreadable("cell type")


def xlsx_rows(data: bytes, limits: FileLimits) -> Iterator[tuple[int, list[str]]]:
    archive = open_zip(data, limits)
    book = workbook(archive)
    shared = shared_strings(archive, book.shared_strings, limits)
    dates = date_styles(archive, book.styles)
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

    parser = xml_parser()
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, data
    for _ in stream_part(archive, book.sheet, parser):
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
