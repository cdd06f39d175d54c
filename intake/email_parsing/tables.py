"""Tables turned into label lines: an HTML table's cells (collected by html_text) or rows pasted from a
spreadsheet into a plain-text mail (tab-separated). Two shapes are common:

- a header row of labels, then one row per request: each data row becomes one block;
- rows of `label | value` (or `no. | label | value`, or pairs side by side): `label: value` lines.
"""

from __future__ import annotations

from domain.correction_requests import LABELS, Field
from intake.email_parsing.labels import exact_label

Cell = list[str]  # a table cell's text, as lines


def _cell_label(cell: Cell) -> Field | None:
    return exact_label(cell[0]) if len(cell) == 1 else None


def table_lines(rows: list[list[Cell]]) -> list[str]:
    """A table as label lines, in either shape. Other cells keep their text, so a label typed inside a cell
    (`ชั้น: ม.1`) still counts."""
    rows = [r for r in rows if any(r)]
    if rows and _is_header_row(rows[0]):
        header = [_cell_label(c) for c in rows[0]]
        lines: list[str] = []
        for row in rows[1:]:  # a header row alone is the empty template: nothing
            # Every column is written, even empty: the repeated labels are what separate the blocks.
            lines += [f"{LABELS[f][0]}: {' '.join(c)}" for f, c in zip(header, row, strict=False) if f]
        return lines
    return [line for row in rows for line in _row_lines(row)]


def _is_header_row(row: list[Cell]) -> bool:
    """Mostly labels (a `ลำดับ` column may sit among them); `label | value | label | value` is not."""
    labels = sum(1 for c in row if _cell_label(c))
    return labels >= 2 and 2 * labels > sum(1 for c in row if c)


def _row_lines(row: list[Cell]) -> list[str]:
    """Each label cell takes the cells after it, up to the next label cell, as its value."""
    lines: list[str] = []
    label: Field | None = None
    values: list[str] = []
    for cell in row:
        found = _cell_label(cell)
        if found:
            if label:
                lines.append(f"{LABELS[label][0]}: {' '.join(values)}")
            label, values = found, []
        elif label:
            values += cell
        else:
            lines += cell  # text before any label (a row number, a remark)
    if label:
        lines.append(f"{LABELS[label][0]}: {' '.join(values)}")
    return lines


def tab_tables(lines: list[str]) -> list[str]:
    """Rows pasted from a spreadsheet into a plain-text mail: a tab-separated header row of labels, then
    one tab-separated row per request, read like the HTML header-row table."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        header = [[c.strip()] if c.strip() else [] for c in lines[i].split("\t")]
        if "\t" in lines[i] and _is_header_row(header):
            rows = [header]
            while i + 1 < len(lines) and "\t" in lines[i + 1]:
                i += 1
                rows.append([[c.strip()] if c.strip() else [] for c in lines[i].split("\t")])
            out += table_lines(rows)
        else:
            out.append(lines[i])
        i += 1
    return out
