"""Roster changes: a DMC export import and end-of-year records. Both are staged in the database and
applied by the school's workflow, which serialises them with confirmation (a confirmed roster is frozen)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from sqlmodel import select

from api.deps import EngineDep, SettingsDep, TemporalDep, UserDep, require_role, school_in_scope
from api.errors import ERROR_RESPONSES
from api.roster_batches import apply_batch, apply_staged, stage_batches
from api.schemas import BatchReport
from db.engine import session_scope
from db.models import Round, School
from db.roster_changes import import_payload
from domain.end_of_year import EndOfYearBatch
from domain.refusals import Refusal, invalid, not_found
from domain.roster_file import HEADER_OF, RosterRow, parse_roster
from domain.spreadsheet_limits import MAX_BYTES, FileLimits

router = APIRouter(prefix="/rounds/{round_id}", tags=["roster"], responses=ERROR_RESPONSES)


@router.post("/students/import", operation_id="import_students", response_model=BatchReport,
             summary="Import a DMC export (CSV UTF-8/BOM/TIS-620/windows-874 or XLSX), rule by rule, row by row")
async def import_students(round_id: str, user: UserDep, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                          file: Annotated[UploadFile, File(description="the DMC export")]) -> BatchReport:
    return await import_roster_file(engine, client, settings, user, round_id, file)


async def import_roster_file(engine, client, settings, user, round_id: str, file: UploadFile,
                             progress: Callable[..., None] | None = None) -> BatchReport:
    """The import of a DMC export, for the API and the workbench's import page alike (one path). `progress`, if
    given, hears of the file read (`read`: rows, schools) and of each school's rows applied (`school`: done, schools)."""
    tell = progress or (lambda *_args, **_kw: None)
    require_role(user, "staff", "admin", what_th="นำเข้าข้อมูลนักเรียน", what_en="import students")
    data = await file.read(MAX_BYTES + 1)
    # streamed within the upload caps (DMCFLOW_UPLOAD_MAX_*): a hostile file is a 413, never the process's memory
    parsed = await asyncio.to_thread(parse_roster, data, file.filename or "", FileLimits.from_settings(settings))
    report = BatchReport(total_rows=parsed.total_rows, issues=[i.__dict__ for i in parsed.issues])

    def group() -> tuple[dict[str, list[RosterRow]], dict[str, str]]:
        with session_scope(engine) as session:
            if session.get(Round, round_id) is None:
                raise not_found("รอบ", "round", round_id)
            known = set(session.exec(select(School.code).where(School.code.in_({r.school_code for r in parsed.rows}))))
        groups: dict[str, list[RosterRow]] = defaultdict(list)
        for r in parsed.rows:
            if r.school_code not in known:
                report.issues.append({"row": r.row, "column": HEADER_OF["school_code"], "value": r.school_code,
                                      "code": "unknown_school", "message_th": "ไม่พบรหัสโรงเรียนนี้ในระบบ",
                                      "message_en": "No school has this code"})
            elif user.role == "staff" and r.school_code != user.school_code:
                report.issues.append({"row": r.row, "column": HEADER_OF["school_code"], "value": r.school_code,
                                      "code": "other_school", "message_th": "นำเข้าได้เฉพาะนักเรียนของโรงเรียนตนเอง",
                                      "message_en": "Staff may import their own school's students only"})
            else:
                groups[r.school_code].append(r)
        # each school's rows staged here, off the event loop, in one transaction (60,000 rows take a while)
        return groups, stage_batches(engine, user, round_id, "import",
                                     {code: import_payload(rs) for code, rs in sorted(groups.items())})

    groups, batch_ids = await asyncio.to_thread(group)
    tell("read", rows=parsed.total_rows, schools=len(groups))
    finished = 0

    async def one_school(code: str, rows: list[RosterRow]):
        nonlocal finished
        async with parallel:
            try:
                return code, rows, await apply_staged(engine, client, user, round_id, code, batch_ids[code],
                                                      "import"), None
            except Refusal as r:
                return code, rows, None, r
            finally:
                finished += 1
                tell("school", done=finished, schools=len(groups))

    parallel = asyncio.Semaphore(8)  # schools are independent workflows: an area export goes school by school, 8 at once
    for code, rows, applied, refused in await asyncio.gather(*(one_school(c, rs) for c, rs in sorted(groups.items()))):
        if refused is not None:
            report.issues.extend({"row": row.row, "column": HEADER_OF["school_code"], "value": code, **refused.as_dict()}
                                 for row in rows)
            continue
        outcome, detail = applied
        report.applied += outcome.applied
        report.unchanged += outcome.unchanged
        report.issues.extend(detail.get("issues", []))
        if len(groups) == 1:
            report.gate = outcome.gate.summary()
    report.refused = len(report.issues)
    report.issues.sort(key=lambda i: (i.get("row") or 0, i.get("column", "")))
    return report


@router.post("/schools/{school_code}/end-of-year", operation_id="record_end_of_year", response_model=BatchReport,
             summary="Record end-of-year data: menu 3.2.2, then 3.2.2.1, then 3.2.2.2 (R10)")
async def record_end_of_year(round_id: str, school_code: str, body: EndOfYearBatch, user: UserDep,
                             engine: EngineDep, client: TemporalDep) -> BatchReport:
    require_role(user, "staff", what_th="บันทึกข้อมูลสิ้นปี", what_en="record end-of-year data")

    def scope() -> None:
        with session_scope(engine) as session:
            school_in_scope(session, user, school_code)

    await asyncio.to_thread(scope)
    if len(body.records) == 0:
        raise invalid("records_required", "ต้องมีรายการอย่างน้อยหนึ่งรายการ", "At least one record is required")
    outcome, detail = await apply_batch(engine, client, user, round_id, school_code, "end_of_year",
                                   body.model_dump(mode="json"), step=body.step)
    return BatchReport(total_rows=len(body.records), applied=outcome.applied, unchanged=outcome.unchanged,
                       refused=outcome.refused, issues=detail.get("issues", []), gate=outcome.gate.summary())
