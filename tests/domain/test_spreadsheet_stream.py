"""Uploaded spreadsheets are read row by row within caps (issue 15, finding 2): each cap is a 413 naming
the limit, found while streaming, before what it bounds is allocated; what a file merely declares (a
<dimension>, a zip member's size) sizes nothing."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest

from domain.refusals import Refusal
from domain.spreadsheet_limits import ZIP_MAX_MEMBERS, FileLimits
from domain.spreadsheet_stream import spreadsheet_rows
from tests.handmade_xlsx import (MAIN, cell, column_letter, rows_xml, shared_strings_bomb, shared_strings_xml,
                                 sheet_xml, sparse_far_cell, table_workbook, workbook)

SMALL = FileLimits(max_rows=3, max_columns=4, max_cell_chars=10, max_unpacked_bytes=1024 * 1024)


def rows(data: bytes, name: str = "f.xlsx", limits: FileLimits = FileLimits()) -> list[tuple[int, list[str]]]:
    return list(spreadsheet_rows(data, name, limits))


def refused(data: bytes, name: str = "f.xlsx", limits: FileLimits = FileLimits()) -> Refusal:
    with pytest.raises(Refusal) as exc:
        rows(data, name, limits)
    assert exc.value.message_th and exc.value.message_en and 400 <= exc.value.status < 500
    return exc.value


def csv(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


# --- the finding: far cells and declared sizes allocate nothing ------------------------------------------

def test_a_cell_at_xfd1048576_is_refused_at_once_with_the_column_limit():
    tracemalloc.start()
    try:
        refusal = refused(sparse_far_cell())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (refusal.code, refusal.status) == ("file_too_many_columns", 413)
    assert "64 columns" in refusal.message_en and "XFD1048576" in refusal.message_en and "64" in refusal.message_th
    assert peak < 4 * 1024 * 1024  # the old reader asked for 512 GiB


def test_a_value_far_down_the_sheet_is_refused_with_the_row_limit():
    far_row = workbook(sheet_xml(rows_xml([["header"]]) + f'<row r="1048576">{cell("A1048576", "x")}</row>'))
    refusal = refused(far_row)
    assert refusal.code == "file_too_many_rows" and "200,000" in refusal.message_en and "1,048,576" in refusal.message_en


def test_a_declared_dimension_is_not_believed():
    table = [["a", "b"], ["1", "2"]]
    assert rows(table_workbook(table, dimension="A1:XFD1048576")) == rows(table_workbook(table)) == \
        [(1, ["a", "b"]), (2, ["1", "2"])]


def test_empty_styled_cells_far_away_hold_no_data_and_are_skipped():
    sheet = sheet_xml('<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="XFD1" s="1"/></row>'
                      '<row r="1048576" s="1"><c r="B1048576" s="1"/></row>')
    assert rows(workbook(sheet)) == [(1, ["a"])]


def test_the_same_row_number_over_and_over_counts_every_time():
    sheet = sheet_xml("".join(f'<row r="2">{cell("A2", "x")}</row>' for _ in range(5)))
    assert refused(workbook(sheet), limits=SMALL).code == "file_too_many_rows"


# --- each cap, just under and just over ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_rows_up_to_the_cap_are_read_and_one_more_is_refused(kind):
    def file(n: int) -> bytes:
        table = [["h"]] + [[str(i)] for i in range(n)]
        return csv([r[0] for r in table]) if kind == "csv" else table_workbook(table)

    name = f"f.{kind}"
    assert len(rows(file(3), name, SMALL)) == 4  # the header and three rows
    refusal = refused(file(4), name, SMALL)
    assert refusal.code == "file_too_many_rows" and "3 rows" in refusal.message_en


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_columns_up_to_the_cap_are_read_and_one_more_is_refused(kind):
    def file(n: int) -> bytes:
        row = [f"c{i}" for i in range(n)]
        return csv([",".join(row)]) if kind == "csv" else table_workbook([row])

    name = f"f.{kind}"
    assert rows(file(4), name, SMALL) == [(1, ["c0", "c1", "c2", "c3"])]
    refusal = refused(file(5), name, SMALL)
    assert refusal.code == "file_too_many_columns" and "E1" in refusal.message_en


def test_trailing_empty_csv_columns_are_not_data():
    # a spreadsheet's CSV export of a sheet whose formatting reaches far to the right; within the line budget
    limits = FileLimits(max_columns=4, max_cell_chars=200)
    assert rows(csv(["a,b" + "," * 500, "c,d,,,"]), "f.csv", limits) == [(1, ["a", "b"]), (2, ["c", "d"])]


@pytest.mark.parametrize("kind", ["csv", "xlsx inline", "xlsx shared"])
def test_a_cell_up_to_the_cap_is_read_and_a_longer_one_is_refused(kind):
    def file(text: str) -> bytes:
        if kind == "csv":
            return csv(["h", text])
        if kind == "xlsx inline":
            return table_workbook([["h"], [text]])
        return workbook(sheet_xml('<row r="2"><c r="A2" t="s"><v>0</v></c></row>'), shared_strings_xml([text]))

    name = "f.csv" if kind == "csv" else "f.xlsx"
    assert rows(file("ฮ" * 10), name, SMALL)[-1] == (2, ["ฮ" * 10])
    refusal = refused(file("ฮ" * 11), name, SMALL)
    assert refusal.code == "file_cell_too_large" and "10 characters" in refusal.message_en
    assert "ฮ" not in refusal.message_en + refusal.message_th  # never the content (it may be an ID)


def test_a_csv_record_past_its_length_budget_is_refused_before_it_is_parsed():
    limits = FileLimits(max_columns=4, max_cell_chars=10)  # a record of at most 4 x (10 + 3) + 2 characters
    assert refused(b"a," * 100_000, "f.csv", limits).code == "file_row_too_long"
    across_lines = b'"' + b"x\n" * 100 + b'"\n'  # a quoted cell spread over many short lines
    assert refused(across_lines, "f.csv", limits).code == "file_row_too_long"


def test_a_csv_cell_past_the_csv_module_limit_is_a_cell_refusal():
    refusal = refused(b'"' + b"x" * 200_000 + b'"\n', "f.csv", FileLimits(max_columns=64, max_cell_chars=4096))
    assert refusal.code == "file_cell_too_large"


# --- the zip, checked before anything is inflated ----------------------------------------------------------

def test_a_shared_strings_zip_bomb_is_refused_by_its_compression_ratio():
    bomb = shared_strings_bomb(megabytes=20)
    assert len(bomb) < 200_000
    refusal = refused(bomb)
    assert refusal.code == "file_compression_ratio" and "200 times" in refusal.message_en


def test_a_workbook_that_unpacks_past_the_cap_is_refused():
    big = table_workbook([["h"]] + [[f"{i:08d}" * 50] for i in range(3000)])  # about 1.3 MB of sheet XML
    assert refused(big, limits=SMALL).code == "file_too_large"


def test_a_zip_of_too_many_parts_is_refused_before_its_directory_is_read():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i in range(ZIP_MAX_MEMBERS + 1):
            z.writestr(f"x/{i}", b"")
    refusal = refused(out.getvalue())
    assert refusal.code == "file_too_many_parts" and "1,000" in refusal.message_en


def test_too_many_shared_strings_are_refused_as_they_are_counted():
    limits = FileLimits(max_rows=1)  # (1 + 1) x 8 = 16 distinct texts
    sheet = sheet_xml('<row r="1"><c r="A1" t="s"><v>15</v></c></row>')
    assert rows(workbook(sheet, shared_strings_xml([str(i) for i in range(16)])), limits=limits) == [(1, ["15"])]
    over = workbook(sheet, shared_strings_xml([str(i) for i in range(17)]))
    assert refused(over, limits=limits).code == "file_too_large"


def test_xml_entity_tricks_are_refused():
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
              f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol2;</t></is></c>'
              '</row></sheetData></worksheet>')
    assert refused(workbook(laughs)).code == "file_unreadable"


# --- streaming: rows come out as the sheet is read --------------------------------------------------------

def test_rows_are_handed_on_before_the_rest_of_the_sheet_is_read():
    table = [["h"]] + [[f"{i:06d}"] for i in range(20_000)]
    good = table_workbook(table)
    stream = spreadsheet_rows(good, "f.xlsx")
    assert next(stream) == (1, ["h"])
    # a sheet whose end is broken: the first rows are still read, then the whole file is refused
    broken = workbook(sheet_xml(rows_xml(table))[:-40])
    stream = spreadsheet_rows(broken, "f.xlsx")
    assert next(stream) == (1, ["h"])
    with pytest.raises(Refusal) as exc:
        list(stream)
    assert exc.value.code == "file_unreadable"


# --- what the reader understands of a workbook ------------------------------------------------------------

def test_shared_strings_rich_text_escapes_booleans_and_iso_dates():
    strings = (f'<sst xmlns="{MAIN}"><si><t>plain</t></si>'
               '<si><r><rPr><b/></rPr><t>ปวี</t></r><r><t>ณา</t></r><rPh><t>reading aid</t></rPh></si>'
               '<si><t>a_x000D_b</t></si></sst>')
    sheet = sheet_xml('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c>'
                      '<c r="D1" t="b"><v>1</v></c><c r="E1" t="d"><v>2012-02-02T00:00:00</v></c>'
                      '<c r="F1" t="str"><f>A1</f><v>plain</v></c><c r="G1"><v>1.449900000018E12</v></c></row>')
    assert rows(workbook(sheet, strings)) == [
        (1, ["plain", "ปวีณา", "a\rb", "True", "02/02/2555", "plain", "1449900000018"])]


def test_cells_and_rows_without_references_follow_the_previous_one():
    sheet = sheet_xml('<row><c><v>1</v></c><c t="inlineStr"><is><t>b</t></is></c></row>'
                      f'<row r="3"><c r="{column_letter(3)}3"><v>3</v></c><c><v>4</v></c></row><row><c><v>5</v></c></row>')
    assert rows(workbook(sheet)) == [(1, ["1", "b"]), (3, ["", "", "3", "4"]), (4, ["5"])]


def test_the_strict_ooxml_namespace_reads_the_same():
    strict = sheet_xml(rows_xml([["a", 1]])).replace(MAIN, "http://purl.oclc.org/ooxml/spreadsheetml/main")
    assert rows(workbook(strict)) == [(1, ["a", "1"])]
