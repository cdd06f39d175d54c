"""The roster's import: the DMC export (CSV or XLSX) through the API's own `import_roster_file`, its progress
streamed into the page while it runs (web/import_progress.py), and the row-by-row report with its CSV."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from typing import Annotated

from fastapi import APIRouter, File, Request, Response, UploadFile

from api.deps import EngineDep, SettingsDep, TemporalDep
from api.routers import roster as roster_api
from api.schemas import BatchReport
from api.viewer import PageUser, PageUserDep, require_page_csrf
from db.engine import session_scope
from domain.refusals import Refusal
from domain.spreadsheet_cells import csv_cell
from web import import_progress
from web.app import PageRoute, path_of, remember
from web.forms import CsrfForm
from web.rendering import page
from web.roster_pages.common import NOT_A_FORM_MATTER, ROSTER, ROUND_LIMIT, SCHOOL_LIMIT, school_and_round

router = APIRouter(route_class=PageRoute, tags=["workbench"])
REPORT_COLUMNS = ("row", "column", "value", "code", "message_th", "message_en")


def report_csv(report: BatchReport) -> bytes:
    """The row-by-row report as a CSV for Excel (UTF-8 with BOM); a cell a spreadsheet would run stays text."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(["แถว (row)", "คอลัมน์ (column)", "ค่า (value)", "รหัส (code)", "เหตุผล", "reason"])
    for issue in report.issues:
        writer.writerow([csv_cell(issue.get(key, "") if issue.get(key) is not None else "") for key in REPORT_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _import_page(request: Request, page_user: PageUser, engine, school_code: str, round_id: str,
                 report: BatchReport | None = None, problem: Refusal | None = None, filename: str = "",
                 streaming: bool = False) -> Response:
    with session_scope(engine) as session:
        school, found = school_and_round(session, page_user, school_code, round_id)
        session.expunge_all()
    download = None
    if report is not None and report.issues:
        download = "data:text/csv;charset=utf-8;base64," + base64.b64encode(report_csv(report)).decode()
    return page(request, "roster/import.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round=found, report=report, download=download, filename=filename, problem=problem, streaming=streaming,
                base=path_of(ROSTER, school_code=school.code, round_id=round_id),
                status=problem.status if problem else 200)


@router.get(ROSTER + "/import", operation_id="roster_import_page", include_in_schema=False)
async def roster_import_page(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                             page_user: PageUserDep, engine: EngineDep) -> Response:
    remember(request, page_user)
    return await asyncio.to_thread(_import_page, request, page_user, engine, school_code, round_id)


@router.post(ROSTER + "/import", operation_id="roster_import_upload", include_in_schema=False)
async def roster_import_upload(request: Request, school_code: SCHOOL_LIMIT, round_id: ROUND_LIMIT,
                               page_user: PageUserDep, engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                               file: Annotated[UploadFile, File()], csrf_token: CsrfForm = None) -> Response:
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    await asyncio.to_thread(_import_page, request, page_user, engine, school_code, round_id)  # the scope, first

    def shown(report: BatchReport | None = None, problem: Refusal | None = None, streaming: bool = False) -> Response:
        return _import_page(request, page_user, engine, school_code, round_id, report, problem, file.filename or "",
                            streaming=streaming)

    async def run(progress) -> BatchReport:
        return await roster_api.import_roster_file(engine, client, settings, page_user.user, round_id, file, progress)

    # a long import streams its progress into the page as it goes (web/import_progress.py)
    return await import_progress.answer(request, run, shown, keep=lambda problem: problem.code not in NOT_A_FORM_MATTER)
