"""The school's cases, for its staff (issue 17): dropout requests (R8), duplicate cases (R3), ID corrections (R4).

Each form sends the API's own function (api/routers/dropouts.py `request_dropout`, `post_comment`,
`withdraw_dropout`; api/routers/duplicates.py `resolve_case`), and each list is the API's own (`list_dropouts`,
`list_duplicates`, `list_id_corrections`), so what a school may see is what the API shows it: the claimant of a
duplicate sees its own claim and nothing of the holder (issue 15). ID corrections come by email only (R4): the
page lists the school's requests and their state, with the address to mail and a template to copy.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile

from api.deps import EngineDep, NowDep, SettingsDep, TemporalDep
from api.downloads import Sha256, evidence_download
from api.routers import dropouts as dropout_api
from api.routers import duplicates as duplicate_api
from api.routers.id_corrections import list_id_corrections
from api.viewer import PageUser, PageUserDep
from db.engine import session_scope
from db.evidence import MAX_EVIDENCE_BYTES
from domain.dropouts import REASONS
from domain.refusals import Refusal, invalid, not_found
from web.app import PageRoute, path_of, remember
from web.rendering import page
from web.round_work_pages import OFF_LIMITS, WORK, staff_form, staff_school, students_by_class

router = APIRouter(route_class=PageRoute, tags=["workbench"])
CASES = WORK + "/cases"
Ref = Annotated[str, Path(max_length=40)]
NOTICES = ("requested", "replied", "withdrawn", "declared")
# the field of the new-request form a refusal is about (the others are shown beside the button)
NEW_FIELD = {"dropout_reason_unknown": "reason", "details_required": "details", "not_found": "student",
             "dropout_already_requested": "student", "evidence_too_large": "evidence", "evidence_type": "evidence"}
# what a school writes to the district's intake (../shared/docs/id-correction-email.md): one block per student
ID_TEMPLATE = ("รหัสโรงเรียน: {school}\nชื่อ-นามสกุล: \nชั้น: \nเลขประจำตัวประชาชนเดิม: \n"
               "เลขประจำตัวประชาชนใหม่: \nเหตุผล: \n")


def _upload(form, name: str) -> UploadFile | None:
    found = form.get(name)
    return found if isinstance(found, UploadFile) and found.filename else None


def _text(form, name: str) -> str:
    found = form.get(name)
    return found if isinstance(found, str) else ""


# --- the list: dropouts, duplicates, ID corrections ------------------------------------------------------------

async def _cases_page(request: Request, page_user: PageUser, engine, settings, round_id: str, school_code: str, *,
                      problem: Refusal | None = None, problem_for: str | None = None, form: dict | None = None,
                      notice: str | None = None, case_id: str | None = None) -> Response:
    user = page_user.user

    def load():  # one session: the scope, the new request's list of students (class by class), the API's lists
        with session_scope(engine) as session:
            school = staff_school(session, page_user, school_code, round_id)
            return (school, students_by_class(session, school_code),
                    dropout_api.list_dropouts(round_id, user, session, school=school_code),
                    duplicate_api.list_duplicates(round_id, user, session),
                    list_id_corrections(user, session, school=school_code))

    school, students, requests, duplicates, mailed = await asyncio.to_thread(load)
    # the API answers instants as JSON ({"iso", "th"}): the page reads them in its own language
    corrections = [(c, datetime.fromisoformat(c.received_at["iso"])) for c in mailed if c.round_id in (None, round_id)]
    return page(request, "work/cases.html", user=user, csrf_token=page_user.csrf_token, school=school,
                round_id=round_id, students=students, requests=requests, duplicates=duplicates,
                corrections=corrections, reasons=REASONS, intake_address=settings.intake_address,
                id_template=ID_TEMPLATE.format(school=school.code), problem=problem, problem_for=problem_for,
                case_id=case_id, notice=notice if notice in NOTICES else None,
                form={"student": "", "reason": "", "details": "", "note": "", **(form or {})},
                base=path_of(WORK, school_code=school_code, round_id=round_id),
                status=problem.status if problem else 200)


@router.get(CASES, operation_id="workbench_cases", include_in_schema=False)
async def workbench_cases(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                          engine: EngineDep, settings: SettingsDep,
                          notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    remember(request, page_user)
    return await _cases_page(request, page_user, engine, settings, round_id, school_code, notice=notice)


def _done(school_code: str, round_id: str, notice: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(path_of(CASES, school_code=school_code, round_id=round_id) + "?"
                            + urlencode({"notice": notice}) + anchor, status_code=303)


@router.post(CASES + "/dropouts", operation_id="workbench_request_dropout", include_in_schema=False)
async def workbench_request_dropout(request: Request, school_code: str, round_id: str, page_user: PageUserDep,
                                    engine: EngineDep, client: TemporalDep, settings: SettingsDep,
                                    now: NowDep) -> Response:
    """R8: a new request, with one of the ministry's 16 reasons and evidence: the API's `request_dropout`."""
    form = await staff_form(request, page_user, engine, school_code, round_id)
    sent = {name: _text(form, name) for name in ("student", "reason", "details")}
    try:
        await dropout_api.request_dropout(round_id, school_code, page_user.user, engine, client, settings, now,
                                          sent["student"], sent["reason"], sent["details"], _upload(form, "evidence"))
    except Refusal as problem:
        if problem.code == "forbidden":
            raise
        return await _cases_page(request, page_user, engine, settings, round_id, school_code, problem=problem,
                                 problem_for=NEW_FIELD.get(problem.code, "new"), form=sent)
    return _done(school_code, round_id, "requested", "#dropouts-h")


# --- one dropout request: its thread, a reply, withdrawal ----------------------------------------------------------

DROPOUT = CASES + "/dropouts/{request_id}"


def _dropout_page(request: Request, page_user: PageUser, engine, round_id: str, school_code: str, request_id: str,
                  problem: Refusal | None = None, problem_for: str | None = None, form: dict | None = None,
                  notice: str | None = None) -> Response:
    with session_scope(engine) as session:
        school = staff_school(session, page_user, school_code, round_id)
        item = dropout_api.dropout_view(session, page_user.user, round_id, request_id)
    return page(request, "work/dropout.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                round_id=round_id, item=item, problem=problem, problem_for=problem_for,
                form=form or {"text": "", "reason": ""}, notice=notice if notice in NOTICES else None,
                here=path_of(DROPOUT, school_code=school_code, round_id=round_id, request_id=request_id),
                cases=path_of(CASES, school_code=school_code, round_id=round_id),
                status=problem.status if problem else 200)


@router.get(DROPOUT, operation_id="workbench_school_dropout", include_in_schema=False)
async def workbench_school_dropout(request: Request, school_code: str, round_id: str, request_id: Ref,
                                   page_user: PageUserDep, engine: EngineDep,
                                   notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    remember(request, page_user)
    return await asyncio.to_thread(_dropout_page, request, page_user, engine, round_id, school_code, request_id,
                                   notice=notice)


@router.get(DROPOUT + "/evidence/{sha256}", operation_id="workbench_school_dropout_evidence", include_in_schema=False)
async def workbench_school_dropout_evidence(request: Request, school_code: str, round_id: str, request_id: Ref,
                                            sha256: Sha256, page_user: PageUserDep, engine: EngineDep) -> Response:
    remember(request, page_user)

    def load():
        with session_scope(engine) as session:
            staff_school(session, page_user, school_code, round_id)
            item = dropout_api.dropout_view(session, page_user.user, round_id, request_id)
            if item.school_code != school_code:  # the path names the school: it must be the request's
                raise not_found("คำขอออกกลางคัน", "dropout request", request_id)
            return dropout_api.dropout_evidence(session, page_user.user, round_id, request_id, sha256)

    return evidence_download(await asyncio.to_thread(load))


def _back(school_code: str, round_id: str, request_id: str, notice: str) -> RedirectResponse:
    return RedirectResponse(path_of(DROPOUT, school_code=school_code, round_id=round_id, request_id=request_id)
                            + "?" + urlencode({"notice": notice}), status_code=303)


@router.post(DROPOUT + "/comments", operation_id="workbench_reply_dropout", include_in_schema=False)
async def workbench_reply_dropout(request: Request, school_code: str, round_id: str, request_id: Ref,
                                  page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                                  now: NowDep) -> Response:
    """The school's answer (or note) in the thread, with evidence: the API's `post_comment`."""
    form = await staff_form(request, page_user, engine, school_code, round_id)
    text, evidence = _text(form, "text"), _upload(form, "evidence")
    try:
        data = await evidence.read(MAX_EVIDENCE_BYTES + 1) if evidence else None
        await dropout_api.post_comment(engine, client, page_user.user, now, round_id, request_id, text, data,
                                       evidence.filename if evidence else None)
    except Refusal as problem:
        if problem.code in OFF_LIMITS:
            raise
        return await asyncio.to_thread(_dropout_page, request, page_user, engine, round_id, school_code, request_id,
                                       problem, "text", {"text": text, "reason": ""})
    return _back(school_code, round_id, request_id, "replied")


@router.post(DROPOUT + "/withdrawal", operation_id="workbench_withdraw_dropout", include_in_schema=False)
async def workbench_withdraw_dropout(request: Request, school_code: str, round_id: str, request_id: Ref,
                                     page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                                     now: NowDep) -> Response:
    form = await staff_form(request, page_user, engine, school_code, round_id)
    reason = _text(form, "reason")
    try:
        if not reason.strip():  # the API's model refuses an empty reason before its route: the route's own words
            raise invalid("reason_required", "ต้องระบุเหตุผลที่ถอนคำขอ",
                                      "Give the reason for withdrawing the request")
        await dropout_api.withdraw_dropout(round_id, request_id, dropout_api.WithdrawalIn(reason=reason[:2000]),
                                           page_user.user, engine, client, now)
    except Refusal as problem:
        if problem.code in OFF_LIMITS:
            raise
        return await asyncio.to_thread(_dropout_page, request, page_user, engine, round_id, school_code, request_id,
                                       problem, "reason", {"text": "", "reason": reason})
    return _back(school_code, round_id, request_id, "withdrawn")


# --- duplicate cases: present (with evidence) or absent -----------------------------------------------------------

DUPLICATE = CASES + "/duplicates/{case_id}"


@router.post(DUPLICATE, operation_id="workbench_declare_duplicate", include_in_schema=False)
async def workbench_declare_duplicate(request: Request, school_code: str, round_id: str, case_id: Ref,
                                      page_user: PageUserDep, engine: EngineDep, client: TemporalDep,
                                      settings: SettingsDep) -> Response:
    """The school's declaration: the API's `resolve_case` with `present` or `absent`."""
    form = await staff_form(request, page_user, engine, school_code, round_id)
    action, note, evidence = _text(form, "action"), _text(form, "note"), _upload(form, "evidence")
    try:
        if action not in ("present", "absent"):
            raise invalid("action_invalid", "เลือกว่านักเรียนอยู่ที่โรงเรียน หรือไม่อยู่",
                                      "Choose whether the student is at the school or not")
        data = await evidence.read(MAX_EVIDENCE_BYTES + 1) if evidence else None
        await duplicate_api.resolve_case(engine, client, page_user.user, round_id, case_id, action,
                                         None, note.strip()[:1000] or None, data, evidence.filename if evidence else None)
    except Refusal as problem:
        if problem.code in OFF_LIMITS:
            raise
        return await _cases_page(request, page_user, engine, settings, round_id, school_code, problem=problem,
                                 problem_for="duplicate", case_id=case_id, form={"note": note})
    return _done(school_code, round_id, "declared", "#duplicates-h")


@router.get(DUPLICATE + "/evidence/{sha256}", operation_id="workbench_school_duplicate_evidence",
            include_in_schema=False)
async def workbench_school_duplicate_evidence(request: Request, school_code: str, round_id: str, case_id: Ref,
                                              sha256: Sha256, page_user: PageUserDep, engine: EngineDep) -> Response:
    remember(request, page_user)

    def load():
        with session_scope(engine) as session:
            staff_school(session, page_user, school_code, round_id)
            return duplicate_api.case_evidence(session, page_user.user, round_id, case_id, sha256)

    return evidence_download(await asyncio.to_thread(load))
