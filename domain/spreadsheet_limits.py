"""The caps on an uploaded spreadsheet (CSV or XLSX) and the refusals that name them.

Each cap is checked while the file is streamed, before what it bounds is allocated (domain/spreadsheet_stream.py
reads the rows, domain/xlsx_parts.py a workbook's zip and XML parts); a refusal names the limit, never the cell's
content (it may be a national ID).
"""

from __future__ import annotations

from dataclasses import dataclass

from openpyxl.utils.cell import get_column_letter

from domain.refusals import Refusal, invalid, refusal

MiB = 1024 * 1024
MAX_BYTES = 50 * MiB  # an upload (the API refuses larger bodies before reading them: DMCFLOW_MAX_UPLOAD_BYTES)
# Zip structure: an XLSX from Excel has 10 to 30 parts; deflate's own ceiling is about 1,000:1, and a
# 60,000-row sheet deflates about 12:1, so 200:1 on a part of a megabyte or more is a bomb, not a sheet.
ZIP_MAX_MEMBERS = 1000
ZIP_MAX_RATIO = 200
ZIP_RATIO_FROM = MiB


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


def unpacks_too_large(limits: FileLimits) -> Refusal:
    mb = limits.max_unpacked_bytes // MiB
    return refusal("file_too_large", f"ไฟล์ XLSX เมื่อขยายแล้วใหญ่เกิน {mb} MB",
                   f"The XLSX file unpacks to more than {mb} MB", 413)


def unreadable(detail: str) -> Refusal:
    return invalid("file_unreadable", "อ่านไฟล์ XLSX ไม่ได้ ไฟล์อาจเสียหาย", f"The XLSX file cannot be read ({detail})")
