"""domain.spreadsheet_cells: which cells are made inert, and what stays as it is."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook

from domain.spreadsheet_cells import csv_cell, formula_like, xlsx_cell


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_each_formula_start_is_neutralised_in_csv(start):
    text = start + "cmd|' /C calc'!A0"
    assert formula_like(text)
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["โรงเรียนตัวอย่างวิทยา", "28 พ.ย. 2569 16.30 น.", "1044449001", "", "a=b", " =x",
                                   -5, 3.5, 0, None, True])
def test_ordinary_cells_and_numbers_are_left_alone(value):
    assert not formula_like(value)
    assert csv_cell(value) == value  # -5 written as a number is a numeric cell, never a formula


def test_a_phone_number_as_text_is_kept_but_inert():
    assert csv_cell("+66 81 234 5678") == "'+66 81 234 5678"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t"])
def test_xlsx_strings_stay_strings_with_their_exact_text(start):
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("s")
    text = start + "SUM(1,2)"
    ws.append([xlsx_cell(ws, text), xlsx_cell(ws, -5), xlsx_cell(ws, "ชื่อ")])
    buf = io.BytesIO()
    wb.save(buf)
    row = next(load_workbook(io.BytesIO(buf.getvalue())).active.iter_rows())
    assert [(c.value, c.data_type) for c in row] == [(text, "s"), (-5, "n"), ("ชื่อ", "s")]
