"""Cells of the CSV and XLSX files dmcflow writes: text that a spreadsheet would run as a formula stays text.

School names, user names, reasons and email-supplied text reach reports and evidence packs. Excel and
LibreOffice evaluate a cell that begins with `=`, `+`, `-` or `@` (and, after trimming, one that begins with
a tab or carriage return), so `=HYPERLINK(...)` typed as a school's name would become a live formula on a
district officer's machine (CWE-1236). Only strings are touched: a number written as a number (-5) is a
numeric cell, never a formula.
"""

from __future__ import annotations

from typing import Any

from openpyxl.cell import WriteOnlyCell

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_like(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def csv_cell(value: Any) -> Any:
    """CSV has no cell types: the usual defence (OWASP) is a leading apostrophe, which spreadsheets show as
    text. A phone number `+66 …` then reads `'+66 …`: visible, but never evaluated."""
    return "'" + value if formula_like(value) else value


def xlsx_cell(sheet, value: Any) -> WriteOnlyCell:
    """XLSX has cell types: openpyxl stores a string beginning with `=` as a formula unless the type is forced
    to string, which keeps the text exactly as written (no apostrophe needed)."""
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    return cell
