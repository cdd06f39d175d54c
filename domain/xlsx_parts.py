"""An XLSX upload's package, within the caps of domain/spreadsheet_limits.py: the zip checked before anything is
inflated, and its parts (relationships, workbook, styles, shared strings) streamed through expat, never built as
trees. The first sheet's rows are read by domain/spreadsheet_stream.py with the same parser.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from xml.parsers import expat

from openpyxl.styles.numbers import is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900

from domain.refusals import refusal
from domain.spreadsheet_limits import (
    ZIP_MAX_MEMBERS, ZIP_MAX_RATIO, ZIP_RATIO_FROM, FileLimits, cell_too_large, unpacks_too_large, unreadable,
)

XLSX_MAX_STYLES = 65_536  # Excel's own ceiling is 64,000 cell formats; styles past it are never dates here
CHUNK = 256 * 1024  # XML fed to expat at a time: rows found in it are handed on before the next chunk


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
        raise unpacks_too_large(limits)
    for m in members:
        if m.file_size >= ZIP_RATIO_FROM and m.file_size > ZIP_MAX_RATIO * max(m.compress_size, 1):
            raise refusal("file_compression_ratio",
                          f"ไฟล์ XLSX บีบอัดผิดปกติ: มีส่วนที่ขยายได้เกิน {ZIP_MAX_RATIO} เท่า",
                          f"The XLSX file is compressed abnormally: a part expands more than {ZIP_MAX_RATIO} times",
                          413)
    return archive


# --- XLSX parts through expat ----------------------------------------------------------------------------

MAIN_NS = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main", "http://purl.oclc.org/ooxml/spreadsheetml/main")


def xml_parser() -> expat.XMLParserType:
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True

    def no_doctype(*_):  # OOXML parts never have one; entity expansion is the classic XML bomb
        raise unreadable("DOCTYPE")

    parser.StartDoctypeDeclHandler = no_doctype
    return parser


def stream_part(archive: zipfile.ZipFile, name: str, parser: expat.XMLParserType) -> Iterator[None]:
    """Feeds a part to `parser` a chunk at a time; yields after each chunk so the caller can hand on rows."""
    with archive.open(name) as part:
        while chunk := part.read(CHUNK):
            parser.Parse(chunk, False)
            yield
    parser.Parse(b"", True)
    yield


def _scan(archive: zipfile.ZipFile, name: str, on_start: Callable[[str, dict], None]) -> None:
    """A small part (relationships, workbook, styles): each element's local name and attributes."""
    parser = xml_parser()
    parser.StartElementHandler = lambda tag, attrs: on_start(tag.rpartition("}")[2], attrs)
    for _ in stream_part(archive, name, parser):
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
class Workbook:
    """The parts a workbook's first sheet needs, and its date epoch (1900 or 1904)."""

    sheet: str
    shared_strings: str | None
    styles: str | None
    epoch: datetime


def workbook(archive: zipfile.ZipFile) -> Workbook:
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
    return Workbook(sheet=rels[sheets[0]][1], shared_strings=by_kind.get("sharedStrings"),
                    styles=by_kind.get("styles"), epoch=epoch[0])


# Built-in number formats that are dates (ECMA-376 18.8.30, and the East Asian and Thai ids Excel uses,
# as calamine recognises them); custom formats are judged by openpyxl.
BUILTIN_DATE_FORMATS = {*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59), *range(71, 82)}


def date_styles(archive: zipfile.ZipFile, styles: str | None) -> frozenset[str]:
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


def unescape(text: str) -> str:
    if "_x" in text:
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text.replace("\x00", "")


# Element kinds of sharedStrings and sheet XML (small ints: the handlers run for every element)
ROW, CELL, VALUE, TEXT, INLINE, PHONETIC, STRING = range(1, 8)
KINDS = {f"{ns}}}{name}": kind for ns in MAIN_NS for name, kind in
         (("row", ROW), ("c", CELL), ("v", VALUE), ("t", TEXT), ("is", INLINE), ("rPh", PHONETIC), ("si", STRING))}


def shared_strings(archive: zipfile.ZipFile, part: str | None, limits: FileLimits) -> list[str]:
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
            strings.append(unescape(text) if "_x" in text or "\x00" in text else text)
            pieces.clear()
            size = 0
        elif kind == PHONETIC:
            phonetic -= 1

    parser = xml_parser()
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, data
    for _ in stream_part(archive, part, parser):
        pass
    return strings
