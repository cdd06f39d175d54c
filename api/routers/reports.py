"""Reports to hand in: an area's schools as CSV or XLSX, and one school's evidence pack (ZIP)."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import zipfile
from datetime import datetime
from types import SimpleNamespace
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Response
from openpyxl import Workbook
from openpyxl.styles import Font

from api.dashboard_views import area_figures_now
from api.deps import EngineDep, NowDep, TemporalDep, school_in_scope
from api.errors import ERROR_RESPONSES
from api.pages import render_page
from api.routers.dashboard import check_area, school_timeline_data
from api.viewer import ViewerDep, round_row
from db import monitoring as reads
from db.engine import session_scope
from db.existence import list_marks
from domain.dropouts import REASONS
from domain.duplicates import AGENCIES
from domain.area_figures import school_status
from domain.funnel import BUCKET_LABELS, stage_label
from domain.school_timeline import ACTION_LABELS
from domain.refusals import refusal
from domain.existence import EXCEPTION_TH, MARK_TH, ExceptionKind, Mark
from domain.spreadsheet_cells import csv_cell, xlsx_cell
from domain.thai_time import thai_datetime
from workflows.ids import area_key

router = APIRouter(tags=["reports"], responses=ERROR_RESPONSES)

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORT_COLUMNS = [  # (Thai, English)
    ("รหัสโรงเรียน", "School code"), ("ชื่อโรงเรียน", "School"), ("เขตพื้นที่", "Area"), ("สถานะ", "Stage"),
    ("ความคืบหน้า", "Progress"), ("จำนวนนักเรียน", "Students"), ("บันทึกผลสิ้นปี (3.2.2)", "Results (3.2.2)"),
    ("ซ้ำชั้น", "Repeaters"), ("บันทึกสาเหตุซ้ำชั้น (3.2.2.1)", "Reasons (3.2.2.1)"), ("จบการศึกษา", "Graduates"),
    ("บันทึกการศึกษาต่อ (3.2.2.2)", "Destinations (3.2.2.2)"), ("คำขอแก้ไขเลขประจำตัวประชาชนค้าง", "Open ID corrections"),
    ("คำขอออกกลางคันค้าง", "Open dropouts"), ("เรื่องนักเรียนซ้ำซ้อนค้าง", "Open duplicates"),
    ("กำหนดส่ง", "Cutoff"), ("ยืนยันโดย", "Confirmed by"), ("ยืนยันเมื่อ", "Confirmed at"),
    ("รับรองโดย", "Certified by"), ("รับรองเมื่อ", "Certified at"), ("ความเสี่ยง", "At risk"),
]


def attachment(ascii_name: str, display_name: str | None = None) -> str:
    """`attachment` with a plain ASCII filename for every client and the Thai one (RFC 5987) beside it."""
    value = f'attachment; filename="{ascii_name}"'
    if display_name and display_name != ascii_name:
        value += f"; filename*=UTF-8''{quote(display_name, safe='')}"
    return value


def _when(value: datetime | None) -> str:
    return thai_datetime(value) if value else ""


def report_rows(engine, round_id: str, area: str, now: datetime, lang: str) -> tuple[list[str], list[list]]:
    figures, names, _ = area_figures_now(engine, round_id, area, now)
    en = lang == "en"
    header = [c[1] if en else c[0] for c in REPORT_COLUMNS]
    rows = []
    for st in figures.schools:
        s, g = st.snapshot, st.snapshot.gate
        stage_th, stage_en = stage_label(st.stage)
        rows.append([
            s.school_code, s.school_name, s.area, stage_en if en else stage_th,
            BUCKET_LABELS[st.bucket][1 if en else 0], g.students, g.results, g.repeaters, g.repeat_reasons,
            g.graduates, g.destinations, s.open_id_corrections, s.open_dropouts, s.open_duplicates,
            thai_datetime(s.cutoff_at), names.get(s.confirmed_by or "", s.confirmed_by or ""), _when(s.confirmed_at),
            names.get(s.certified_by or "", s.certified_by or ""), _when(s.certified_at),
            (st.risk.en if en else st.risk.th) if st.risk else "",
        ])
    return header, rows


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    out = io.StringIO()
    # every string quoted, and one that a spreadsheet would evaluate made text (domain/spreadsheet_cells.py)
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow([csv_cell(v) for v in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read Thai as UTF-8


def xlsx_bytes(header: list[str], rows: list[list], title: str) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    ws.freeze_panes = "C2"
    for i, width in enumerate([13, 34, 22, 20, 24] + [12] * 9 + [22, 26, 22, 26, 22, 60]):
        ws.column_dimensions[chr(ord("A") + i)].width = width
    bold = Font(bold=True)
    cells = []
    for name in header:
        cell = xlsx_cell(ws, name)
        cell.font = bold
        cells.append(cell)
    ws.append(cells)
    for row in rows:
        ws.append([xlsx_cell(ws, value) for value in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@router.get("/rounds/{round_id}/areas/{area}/report", operation_id="export_area_report", response_class=Response,
            responses={200: {"content": {"text/csv": {}, XLSX_TYPE: {}},
                             "description": "every school's stage, progress, and who confirmed and certified when"}},
            summary="An area's schools as CSV (UTF-8 with BOM) or XLSX: Thai headers (`lang=en` for English), "
                    "Thai dates (district: own area; admin)")
async def export_area_report(round_id: str, area: str, user: ViewerDep, engine: EngineDep, now: NowDep,
                             format: Literal["csv", "xlsx"] = "csv", lang: Literal["th", "en"] = "th") -> Response:
    def build() -> bytes:
        check_area(engine, user, round_id, area)
        header, rows = report_rows(engine, round_id, area, now, lang)
        if format == "csv":
            return csv_bytes(header, rows)
        return xlsx_bytes(header, rows, f"{round_id}")

    data = await asyncio.to_thread(build)
    stamp = now.strftime("%Y%m%d-%H%M")
    ascii_name = f"area-report-{round_id}-{area_key(area)}-{stamp}.{format}"
    display = f"รายงาน-{round_id}-{area}-{stamp}.{format}".replace("/", "-").replace("\\", "-").replace('"', "")
    return Response(data, media_type=CSV_TYPE if format == "csv" else XLSX_TYPE, headers={
        "Content-Disposition": attachment(ascii_name, display), "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


# --- a school's evidence pack ---------------------------------------------------------------------

IDC_STATUS = {"refused": ("ระบบปฏิเสธคำขอ", "refused at intake"), "approved": ("อนุมัติ", "approved"),
              "rejected": ("ไม่อนุมัติ", "rejected"), "expired": ("หมดเวลา (พ้นกำหนดส่ง)", "expired at the cutoff"),
              "failed": ("ดำเนินการไม่สำเร็จ", "could not be applied")}
DROPOUT_STATUS = {"approved": ("อนุมัติ", "approved"), "rejected": ("ไม่อนุมัติ", "rejected"),
                  "expired": ("หมดเวลา", "expired")}
DUPLICATE_KINDS = {"obec": ("ซ้ำซ้อนระหว่างโรงเรียนในสังกัด สพฐ.", "two OBEC schools"),
                   "affiliation": ("ซ้ำซ้อนต่างสังกัด", "another affiliation's list")}


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


def _table(header: list[str], rows: list[list]) -> bytes:
    return csv_bytes(header, rows)


def _duplicate_for(school_code: str, case, student):
    """A school's own claim on a student held elsewhere shows nothing of the holder or its record (finding 3 of
    issue 15); a claim its district dismissed is left out of the holder's pack (the holder never knew of it)."""
    if case.kind != "obec" or case.claimant_school != school_code:
        return case, student
    kept = case.outcome if case.outcome in (None, "none", school_code) else "other_school"
    decision = {"keep_school": kept, "claim_dismissed": case.decision.get("claim_dismissed", False)} \
        if case.decision else None
    return SimpleNamespace(id=case.id, kind=case.kind, student_id=case.student_id, holder_school="",
                           claimant_school=case.claimant_school, agency=None, outcome=kept, resolved_at=case.resolved_at,
                           declarations={k: v for k, v in case.declarations.items() if k == school_code},
                           decision=decision), None


def evidence_files(engine, user, round_id: str, school_code: str, now: datetime, timeline_out) -> dict[str, bytes]:
    with session_scope(engine) as session:
        spec = round_row(session, round_id)
        school = school_in_scope(session, user, school_code)
        snap = reads.school_snapshot(session, round_id, school_code)
        if snap is None:
            raise refusal("round_not_started", f"ยังไม่ได้เริ่มรอบ {round_id} ของโรงเรียนนี้",
                          f"Round {round_id} has not been started for this school", 404)
        audit = reads.school_audit(session, round_id, school_code)
        corrections = reads.decided_id_corrections(session, round_id, school_code)
        dropouts = reads.decided_dropouts(session, round_id, school_code)
        duplicates = [_duplicate_for(school_code, c, st)
                      for c, st in reads.resolved_duplicates(session, round_id, school_code)
                      if not (c.holder_school == school_code and (c.decision or {}).get("claim_dismissed"))]
        marks = list_marks(session, round_id, school_code)  # R11: every active student's existence mark
        people = {a.actor for a in audit} | {snap.confirmed_by, snap.certified_by} \
            | {c.decided_by for c in corrections} | {d.decided_by for d, _ in dropouts} \
            | {m.marked_by for _, m in marks if m}
        names = reads.user_names(session, {p for p in people if p})
    status = school_status(snap, now)

    def who(uid: str | None) -> str:
        return names.get(uid or "", uid or "")

    files: dict[str, bytes] = {}
    files["audit-trail.csv"] = _table(
        ["เวลา", "เวลา (ISO)", "ผู้ดำเนินการ", "รหัสผู้ใช้", "การดำเนินการ", "รหัสการดำเนินการ", "ก่อน", "หลัง", "เหตุผล"],
        [[thai_datetime(a.at), a.at.isoformat(), "ระบบ" if a.actor == "system" else who(a.actor), a.actor,
          ACTION_LABELS.get(a.action, (a.action,))[0], a.action, _json(a.before), _json(a.after), a.reason or ""]
         for a in audit])
    files["timeline.csv"] = _table(
        ["เวลา", "เวลา (ISO)", "ที่มา", "ผู้ดำเนินการ", "รายการ", "Event"],
        [[line.at.th, line.at.iso.isoformat(), {"audit": "บันทึกการดำเนินการ", "workflow": "ประวัติเวิร์กโฟลว์"}[line.source],
          line.actor_name or line.actor or "", line.th, line.en] for line in timeline_out.lines])
    files["id-corrections.csv"] = _table(
        ["เลขอ้างอิง", "สถานะ", "เลขประจำตัวประชาชน/รหัส G เดิม", "เลขประจำตัวประชาชนใหม่", "ชื่อนักเรียน",
         "เหตุผลของคำขอ", "ผู้พิจารณา", "เวลาพิจารณา", "เหตุผลการพิจารณา", "เหตุที่ระบบปฏิเสธ"],
        [[c.id, IDC_STATUS.get(c.status, (c.status,))[0], c.old_id or "", c.new_id or "", c.student_name or "",
          c.reason or "", who(c.decided_by), _when(c.decided_at), c.decision_reason or "", c.refusal_th or ""]
         for c in corrections])
    files["dropouts.csv"] = _table(
        ["เลขคำขอ", "สถานะ", "เลขประจำตัวประชาชน/รหัส G", "ชื่อนักเรียน", "สาเหตุ", "ยื่นเมื่อ", "ผู้พิจารณา", "เวลาพิจารณา"],
        [[d.id, DROPOUT_STATUS.get(d.status, (d.status,))[0], st.student_id if st else "",
          f"{st.prefix}{st.first_name} {st.last_name}".strip() if st else "", REASONS.get(d.reason, (d.reason,))[0],
          _when(d.requested_at), who(d.decided_by), _when(d.decided_at)] for d, st in dropouts])
    files["duplicates.csv"] = _table(
        ["เลขเรื่อง", "ประเภท", "เลขประจำตัวประชาชน/รหัส G", "ชื่อนักเรียน", "โรงเรียนที่มีชื่ออยู่", "โรงเรียนที่ขอรับ/หน่วยงาน",
         "ผล: โรงเรียนที่นักเรียนอยู่", "ปิดเรื่องเมื่อ", "คำแจ้งของโรงเรียน", "การตัดสินของเขต"],
        [[c.id, DUPLICATE_KINDS.get(c.kind, (c.kind,))[0], c.student_id,
          f"{st.prefix}{st.first_name} {st.last_name}".strip() if st else "", c.holder_school,
          c.claimant_school or AGENCIES.get(c.agency or "", (c.agency or "",))[0], c.outcome or "", _when(c.resolved_at),
          _json(c.declarations), _json(c.decision)] for c, st in duplicates])
    files["existence-marks.csv"] = _table(
        ["เลขประจำตัวประชาชน/รหัส G", "เลขประจำตัวนักเรียน", "ชื่อนักเรียน", "ชั้น", "ห้อง", "การมีตัวตน (ข้อ 11)",
         "ข้อยกเว้น", "เรื่องที่อ้างถึง", "หมายเหตุ", "ผู้บันทึก", "เวลาบันทึก"],
        [[st.student_id, st.student_no, f"{st.prefix}{st.first_name} {st.last_name}".strip(), st.grade, st.classroom,
          MARK_TH[Mark(m.mark)] if m else "ยังไม่ได้ยืนยัน",
          EXCEPTION_TH[ExceptionKind(m.exception_kind)] if m and m.exception_kind else "",
          (m.case_ref or "") if m else "", (m.note or "") if m else "", who(m.marked_by) if m else "",
          _when(m.marked_at) if m else ""] for st, m in marks])
    th, en = stage_label(status.stage)
    files["summary.html"] = render_page(
        "evidence_summary.html", school=school, round=spec, snap=snap, stage_th=th, stage_en=en,
        gate=snap.gate.summary(), confirmed_name=who(snap.confirmed_by), certified_name=who(snap.certified_by),
        counts={"audit": len(audit), "timeline": len(timeline_out.lines), "id_corrections": len(corrections),
                "dropouts": len(dropouts), "duplicates": len(duplicates), "existence": len(marks)},
        history_available=timeline_out.history_available, now=now, thai=thai_datetime).encode("utf-8")
    files["SHA256SUMS.txt"] = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                                      for name, data in sorted(files.items())).encode()
    return files


def zip_bytes(files: dict[str, bytes], folder: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(f"{folder}/{name}", data)
    return buf.getvalue()


@router.get("/rounds/{round_id}/schools/{school_code}/evidence-pack", operation_id="school_evidence_pack",
            response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "a ZIP file"}},
            summary="One school's evidence for the round (ZIP): a Thai summary, the audit trail, the timeline, "
                    "and the ID corrections, dropouts and duplicate cases decided (its staff and director, its "
                    "district, admins)")
async def school_evidence_pack(round_id: str, school_code: str, user: ViewerDep, engine: EngineDep,
                               client: TemporalDep, now: NowDep) -> Response:
    timeline_out = await school_timeline_data(engine, client, user, round_id, school_code)  # checks scope first
    files = await asyncio.to_thread(evidence_files, engine, user, round_id, school_code, now, timeline_out)
    folder = f"evidence-{round_id}-{school_code}"
    data = await asyncio.to_thread(zip_bytes, files, folder)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": attachment(f"{folder}.zip"), "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})
