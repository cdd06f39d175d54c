"""The district officer's work queue (issue 17): what waits for the area, oldest first, and a page per item.

Each page reads the database only; each form sends the API's own function (the routers' `decide_correction`,
`post_comment`, `decide_request`, `resolve_case`, `extend_round_deadline`), so the rules and refusals are the
API's; a refusal comes back as the same page with the reason beside the field it is about. Officers of an
area see their area's items (a duplicate claim: the holder's district until it opens the case, issue 15);
administrators see every area.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import func, select

from api.case_views import case_view
from api.deps import EngineDep, NowDep, SettingsDep, TemporalDep, require_role
from api.downloads import Sha256, evidence_download
from api.routers import dropouts as dropout_api
from api.routers import duplicates as duplicate_api
from api.routers import id_corrections as correction_api
from api.routers.rounds import extend_round_deadline
from api.schemas import ExtensionIn
from api.viewer import PageUser, PageUserDep, require_page_csrf
from db.engine import session_scope
from db.models import DropoutMessage, DropoutRequest, DuplicateCase, IdCorrection, InboundMessage, School, \
    SchoolRound, Student
from db.monitoring import latest_round
from domain.refusals import Refusal, invalid
from intake.email_parsing.message import message_text
from web import waiting
from web.app import PageRoute, path_of, remember
from web.forms import CsrfForm
from web.live_pages import queue_live
from web.rendering import page

router = APIRouter(route_class=PageRoute, tags=["workbench"])
Text = Annotated[str, Form(max_length=4000)]
Ref = Annotated[str, Path(max_length=40)]
PER_KIND = 500  # an area's queue: a few hundred at most; more waits for the next page load
KINDS = ("id_correction", "dropout", "duplicate", "late")


@dataclass
class Item:
    kind: str  # id_correction | dropout | duplicate | late
    ref: str
    href: str
    since: datetime  # when it started waiting (received, asked, opened, the missed cutoff)
    school_code: str | None
    school_name: str | None
    detail: str = ""  # the claim's state for a duplicate ("claimed" / "open" / "at_district")


def _officer(request: Request, page_user: PageUser) -> None:
    remember(request, page_user)
    require_role(page_user.user, "district", "admin", what_th="ดูงานของเขตพื้นที่", what_en="see an area's work queue")


async def _evidence(engine, find, *args) -> Response:
    """An evidence file through the router's own check of who may see it (`find`), as the API serves it."""
    def load():
        with session_scope(engine) as session:
            return find(session, *args)

    return evidence_download(await asyncio.to_thread(load))


def queue_items(session, user, round_id: str, now: datetime) -> list[Item]:
    """Everything that waits for the officer's area (every area for an administrator), longest waiting first."""
    area = user.area if user.role == "district" else None
    rid = quote(round_id, safe="")
    names = dict(session.execute(select(School.code, School.name).where(School.area == area)).all()) if area else {}
    items: list[Item] = []
    stmt = (waiting.id_corrections([IdCorrection.id, IdCorrection.school_code, InboundMessage.received_at],
                                   round_id, area)
            .join(InboundMessage, InboundMessage.sha256 == IdCorrection.message_sha))
    for ref, school, since in session.execute(stmt.order_by(InboundMessage.received_at).limit(PER_KIND)):
        items.append(Item("id_correction", ref, f"/queue/id-corrections/{quote(ref, safe='')}", since, school,
                          None))
    # a consultation waits for the district since the school's last word (the request, or its answer)
    asked = (select(DropoutMessage.request_id, func.max(DropoutMessage.at).label("at"))
             .where(DropoutMessage.side == "school", DropoutMessage.posted)
             .group_by(DropoutMessage.request_id).subquery())
    stmt = (waiting.dropouts([DropoutRequest.id, DropoutRequest.school_code,
                              func.coalesce(asked.c.at, DropoutRequest.requested_at)], round_id, area)
            .outerjoin(asked, asked.c.request_id == DropoutRequest.id))
    for ref, school, since in session.execute(stmt.limit(PER_KIND)):
        items.append(Item("dropout", ref, f"/queue/rounds/{rid}/dropouts/{quote(ref, safe='')}", since, school,
                          None))
    stmt = waiting.duplicates([DuplicateCase.id, DuplicateCase.holder_school, DuplicateCase.opened_at,
                               DuplicateCase.status], round_id, area)
    for ref, school, since, status in session.execute(stmt.order_by(DuplicateCase.opened_at).limit(PER_KIND)):
        items.append(Item("duplicate", ref, f"/queue/rounds/{rid}/duplicates/{quote(ref, safe='')}", since, school,
                          None, detail=status))
    stmt = waiting.late_schools([SchoolRound.school_code, SchoolRound.cutoff_at], round_id, area, now)
    for school, since in session.execute(stmt.order_by(SchoolRound.cutoff_at).limit(PER_KIND)):
        items.append(Item("late", school, f"/queue/rounds/{rid}/extensions?school={school}", since, school,
                          None))
    # the schools' names in one query (an administrator's queue spans every area; a claimant may be of another)
    missing = {i.school_code for i in items if i.school_code and i.school_code not in names}
    for start in range(0, len(missing), 500):
        chunk = sorted(missing)[start:start + 500]
        names.update(session.execute(select(School.code, School.name).where(School.code.in_(chunk))).all())
    for item in items:
        item.school_name = names.get(item.school_code) if item.school_code else None
    return sorted(items, key=lambda i: i.since)


def _chosen_round(session, round_id: str | None) -> str | None:
    if round_id:
        return round_id
    found = latest_round(session)
    return found.id if found else None


@router.get("/queue", operation_id="workbench_queue", include_in_schema=False)
async def workbench_queue(request: Request, page_user: PageUserDep, engine: EngineDep, now: NowDep,
                          round: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    _officer(request, page_user)
    user = page_user.user

    def load():
        with session_scope(engine) as session:
            rid = _chosen_round(session, round)
            # an officer's own area follows changes (read before the items); an administrator's every-area list does not
            live = queue_live(session, rid, user.area, now, f"/queue?round={quote(rid, safe='')}") \
                if rid and user.role == "district" and user.area else None
            return rid, queue_items(session, user, rid, now) if rid else [], live

    rid, items, live = await asyncio.to_thread(load)
    counts = {kind: sum(1 for i in items if i.kind == kind) for kind in KINDS}
    return page(request, "district/queue.html", user=user, csrf_token=page_user.csrf_token, round_id=rid,
                area=user.area if user.role == "district" else None, items=items, counts=counts, now=now, live=live)


# --- ID corrections (R4) -------------------------------------------------------------------------------------

def _correction_page(request, page_user, engine, ref: str, problem: Refusal | None = None,
                     problem_for: str | None = None, form: dict | None = None) -> Response:
    user = page_user.user
    with session_scope(engine) as session:
        detail = correction_api.correction_detail(session, user, ref)
        row = session.get(IdCorrection, ref)
        student = session.get(Student, row.student_pk) if row.student_pk else None
        message = correction_api.correction_message(session, user, ref)
        subject, text = message_text(message.raw)
        received_at = message.received_at
    return page(request, "district/id_correction.html", user=user, csrf_token=page_user.csrf_token, item=detail,
                evidence_files=[(e.get("filename"), e["sha256"], e.get("content_type")) for e in detail.evidence],
                student=student, subject=subject, text=text, received_at=received_at, problem=problem,
                problem_for=problem_for,
                form=form or {"approve": "", "reason": ""}, status=problem.status if problem else 200)


@router.get("/queue/id-corrections/{ref}", operation_id="workbench_id_correction", include_in_schema=False)
async def workbench_id_correction(request: Request, ref: Ref, page_user: PageUserDep, engine: EngineDep) -> Response:
    _officer(request, page_user)
    return await asyncio.to_thread(_correction_page, request, page_user, engine, ref)


@router.get("/queue/id-corrections/{ref}/evidence/{sha256}", operation_id="workbench_id_correction_evidence",
            include_in_schema=False)
async def workbench_id_correction_evidence(request: Request, ref: Ref, sha256: Sha256, page_user: PageUserDep,
                                           engine: EngineDep) -> Response:
    _officer(request, page_user)
    return await _evidence(engine, correction_api.correction_evidence, page_user.user, ref, sha256)


@router.post("/queue/id-corrections/{ref}/decision", operation_id="workbench_decide_id_correction",
             include_in_schema=False)
async def workbench_decide_id_correction(request: Request, ref: Ref, page_user: PageUserDep, engine: EngineDep,
                                         client: TemporalDep, approve: Annotated[Literal["yes", "no"], Form()],
                                         reason: Text = "", csrf_token: CsrfForm = None) -> Response:
    _officer(request, page_user)
    require_page_csrf(page_user, csrf_token)
    try:
        await correction_api.decide_correction(engine, client, page_user.user, ref, approve == "yes",
                                               reason.strip() or None, task_queue=request.app.state.settings.task_queue)
    except Refusal as problem:
        where = "reason" if problem.code == "reason_required" else "decision"
        return await asyncio.to_thread(_correction_page, request, page_user, engine, ref, problem, where,
                                       {"approve": approve, "reason": reason})
    return RedirectResponse(f"/queue/id-corrections/{quote(ref, safe='')}", status_code=303)


# --- dropout consultations (R8) ------------------------------------------------------------------------------

def _dropout_page(request, page_user, engine, round_id: str, request_id: str, problem: Refusal | None = None,
                  problem_for: str | None = None, form: dict | None = None) -> Response:
    with session_scope(engine) as session:
        item = dropout_api.dropout_view(session, page_user.user, round_id, request_id)
    return page(request, "district/dropout.html", user=page_user.user, csrf_token=page_user.csrf_token, item=item,
                problem=problem, problem_for=problem_for, form=form or {"text": "", "approve": "", "reason": ""},
                status=problem.status if problem else 200)


DROPOUT = "/queue/rounds/{round_id}/dropouts/{request_id}"


@router.get(DROPOUT, operation_id="workbench_dropout", include_in_schema=False)
async def workbench_dropout(request: Request, round_id: Ref, request_id: Ref, page_user: PageUserDep,
                            engine: EngineDep) -> Response:
    _officer(request, page_user)
    return await asyncio.to_thread(_dropout_page, request, page_user, engine, round_id, request_id)


@router.get(DROPOUT + "/evidence/{sha256}", operation_id="workbench_dropout_evidence", include_in_schema=False)
async def workbench_dropout_evidence(request: Request, round_id: Ref, request_id: Ref, sha256: Sha256,
                                     page_user: PageUserDep, engine: EngineDep) -> Response:
    _officer(request, page_user)
    return await _evidence(engine, dropout_api.dropout_evidence, page_user.user, round_id, request_id, sha256)


def _back_to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.post(DROPOUT + "/comments", operation_id="workbench_comment_dropout", include_in_schema=False)
async def workbench_comment_dropout(request: Request, round_id: Ref, request_id: Ref, page_user: PageUserDep,
                                    engine: EngineDep, client: TemporalDep, now: NowDep, text: Text = "",
                                    csrf_token: CsrfForm = None) -> Response:
    _officer(request, page_user)
    require_page_csrf(page_user, csrf_token)
    try:
        await dropout_api.post_comment(engine, client, page_user.user, now, round_id, request_id, text, None, None)
    except Refusal as problem:
        return await asyncio.to_thread(_dropout_page, request, page_user, engine, round_id, request_id, problem,
                                       "text", {"text": text, "approve": "", "reason": ""})
    return _back_to(path_of(DROPOUT, round_id=round_id, request_id=request_id))


@router.post(DROPOUT + "/decision", operation_id="workbench_decide_dropout", include_in_schema=False)
async def workbench_decide_dropout(request: Request, round_id: Ref, request_id: Ref, page_user: PageUserDep,
                                   engine: EngineDep, client: TemporalDep, now: NowDep,
                                   approve: Annotated[Literal["yes", "no"], Form()], reason: Text = "",
                                   csrf_token: CsrfForm = None) -> Response:
    _officer(request, page_user)
    require_page_csrf(page_user, csrf_token)
    try:
        await dropout_api.decide_request(engine, client, page_user.user, now, round_id, request_id, approve == "yes",
                                         reason)
    except Refusal as problem:
        where = "reason" if problem.code == "reason_required" else "decision"
        return await asyncio.to_thread(_dropout_page, request, page_user, engine, round_id, request_id, problem,
                                       where, {"text": "", "approve": approve, "reason": reason})
    return _back_to(path_of(DROPOUT, round_id=round_id, request_id=request_id))


# --- duplicate cases (R3) ------------------------------------------------------------------------------------

DUPLICATE = "/queue/rounds/{round_id}/duplicates/{case_id}"
DUPLICATE_FIELD = {"decision_incomplete": "keep_school", "reason_required": "note"}


def _duplicate_page(request, page_user, engine, round_id: str, case_id: str, problem: Refusal | None = None,
                    problem_for: str | None = None, form: dict | None = None) -> Response:
    with session_scope(engine) as session:
        case = case_view(session, page_user.user, round_id, case_id)
        schools = {code: getattr(session.get(School, code), "name", code)
                   for code in (case.holder_school, case.claimant_school, *case.declarations) if code}
        row = session.get(DuplicateCase, case_id)
        opened_at = row.opened_at
        # the holder's side only (case_view hides the holder and the student from the claimant's)
        student = session.get(Student, row.student_pk) if case.holder_school else None
    base = path_of(DUPLICATE, round_id=round_id, case_id=case_id)
    return page(request, "district/duplicate.html", user=page_user.user, csrf_token=page_user.csrf_token, case=case,
                base=base, opened_at=opened_at,
                schools=schools, student=student, problem=problem, problem_for=problem_for,
                form=form or {"action": "", "keep_school": "", "note": ""}, status=problem.status if problem else 200)


@router.get(DUPLICATE, operation_id="workbench_duplicate", include_in_schema=False)
async def workbench_duplicate(request: Request, round_id: Ref, case_id: Ref, page_user: PageUserDep,
                              engine: EngineDep) -> Response:
    _officer(request, page_user)
    return await asyncio.to_thread(_duplicate_page, request, page_user, engine, round_id, case_id)


@router.get(DUPLICATE + "/evidence/{sha256}", operation_id="workbench_duplicate_evidence", include_in_schema=False)
async def workbench_duplicate_evidence(request: Request, round_id: Ref, case_id: Ref, sha256: Sha256,
                                       page_user: PageUserDep, engine: EngineDep) -> Response:
    _officer(request, page_user)
    return await _evidence(engine, duplicate_api.case_evidence, page_user.user, round_id, case_id, sha256)


@router.post(DUPLICATE + "/resolution", operation_id="workbench_resolve_duplicate", include_in_schema=False)
async def workbench_resolve_duplicate(request: Request, round_id: Ref, case_id: Ref, page_user: PageUserDep,
                                      engine: EngineDep, client: TemporalDep,
                                      action: Annotated[Literal["open", "dismiss", "decide"], Form()],
                                      keep_school: Annotated[str, Form(max_length=10)] = "",
                                      note: Annotated[str, Form(max_length=1000)] = "",
                                      csrf_token: CsrfForm = None) -> Response:
    _officer(request, page_user)
    require_page_csrf(page_user, csrf_token)
    try:
        await duplicate_api.resolve_case(engine, client, page_user.user, round_id, case_id, action,
                                         keep_school or None, note.strip() or None, None, None)
    except Refusal as problem:
        where = DUPLICATE_FIELD.get(problem.code, action)
        return await asyncio.to_thread(_duplicate_page, request, page_user, engine, round_id, case_id, problem, where,
                                       {"action": action, "keep_school": keep_school, "note": note})
    return _back_to(path_of(DUPLICATE, round_id=round_id, case_id=case_id))


# --- deadline extensions and the late list -------------------------------------------------------------------

EXTENSIONS = "/queue/rounds/{round_id}/extensions"
EXTENSION_FIELD = {"extension_not_later": "cutoff", "extension_in_past": "cutoff", "extension_before_window": "cutoff",
                   "cutoff_invalid": "cutoff", "reason_required": "reason"}


def _extension_page(request, page_user, engine, now, round_id: str, problem: Refusal | None = None,
                    problem_for: str | None = None, form: dict | None = None, done: str | None = None) -> Response:
    user = page_user.user
    with session_scope(engine) as session:
        stmt = (select(SchoolRound, School.name).join(School, School.code == SchoolRound.school_code)
                .where(SchoolRound.round_id == round_id).order_by(SchoolRound.school_code))
        if user.role == "district":
            stmt = stmt.where(SchoolRound.area == user.area)
        schools = [(row, name) for row, name in session.execute(stmt.limit(2000))]
    late = sorted(((r, n) for r, n in schools if r.certified_at is None and r.cutoff_at <= now),
                  key=lambda pair: pair[0].cutoff_at)
    return page(request, "district/extensions.html", user=user, csrf_token=page_user.csrf_token, round_id=round_id,
                schools=schools, late=late, area=user.area if user.role == "district" else None, now=now,
                problem=problem, problem_for=problem_for, done=done,
                form=form or {"target": request.query_params.get("school", ""), "date": "", "time": "16:30",
                              "reason": ""}, status=problem.status if problem else 200)


@router.get(EXTENSIONS, operation_id="workbench_extensions", include_in_schema=False)
async def workbench_extensions(request: Request, round_id: Ref, page_user: PageUserDep, engine: EngineDep,
                               now: NowDep, done: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    _officer(request, page_user)
    return await asyncio.to_thread(_extension_page, request, page_user, engine, now, round_id, done=done)


@router.post(EXTENSIONS, operation_id="workbench_extend_deadline", include_in_schema=False)
async def workbench_extend_deadline(request: Request, round_id: Ref, page_user: PageUserDep, engine: EngineDep,
                                    client: TemporalDep, settings: SettingsDep, now: NowDep,
                                    target: Annotated[str, Form(max_length=130)] = "",
                                    date: Annotated[str, Form(max_length=10)] = "",
                                    time: Annotated[str, Form(max_length=5)] = "",
                                    reason: Text = "", csrf_token: CsrfForm = None) -> Response:
    """`target`: a school's code, or `area` (the officer's whole area); the date and time are Bangkok time."""
    _officer(request, page_user)
    require_page_csrf(page_user, csrf_token)
    user = page_user.user
    form = {"target": target, "date": date, "time": time, "reason": reason}
    try:
        if not reason.strip():
            raise invalid("reason_required", "ต้องระบุเหตุผลของการขยายเวลา", "Give the reason for the extension")
        try:  # naive: Bangkok time (ExtensionIn reads it so, a Buddhist-Era year too)
            body = ExtensionIn(cutoff_at=f"{date}T{time}", reason=reason.strip(),
                               **({"area": user.area} if target == "area" else {"school_code": target or None}))
        except ValidationError:
            raise invalid("cutoff_invalid", "วันและเวลาปิดระบบใหม่ไม่ถูกต้อง", "The new closing date and time are not valid"
                          ) from None
        await extend_round_deadline(engine, client, settings, user, round_id, body, now)
    except Refusal as problem:
        return await asyncio.to_thread(_extension_page, request, page_user, engine, now, round_id, problem,
                                       EXTENSION_FIELD.get(problem.code, "target"), form)
    return _back_to(path_of(EXTENSIONS, round_id=round_id) + "?done=extended")
