"""The administrator's pages: rounds (create, start and watch the start's progress, extend the whole round),
areas and schools (list with search, a school's page, add and edit).

Each form sends what the JSON API does through the very same functions (api/routers/rounds.py
`create_round_row`, `extend_round_deadline`, `operation_progress`; dmcflow/round_ops.py `start_round`;
api/routers/schools.py `save_school`); a refusal comes back as the same page with the reason beside the
field it is about. Lists read the database only; a round's page asks its one running operation for its
progress (one describe and one query per load), and while it runs a small script reloads that part.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import func, or_
from sqlmodel import select

from api.deps import EngineDep, NowDep, SessionDep, SettingsDep, TemporalDep, require_role
from api.routers.rounds import create_round_row, extend_round_deadline, operation_progress
from api.routers.schools import save_school
from api.schemas import ExtensionIn, RoundIn, SchoolIn
from api.viewer import PageUser, PageUserDep, require_page_csrf
from api.views import round_view, school_round_view
from db.engine import session_scope
from db.models import Area, Round, School, SchoolEmail, SchoolRound
from dmcflow import round_ops
from domain.ids import normalise_school_code
from domain.refusals import Refusal, invalid, not_found
from domain.rounds import RoundPolicy
from domain.thai_time import thai_date
from web.app import PageRoute, remember
from web.forms import CsrfForm
from web.rendering import page, page_language
from workflows.ids import fanout_id

router = APIRouter(route_class=PageRoute, tags=["workbench"])
RoundId = Annotated[str, Path(max_length=40)]
SchoolCode = Annotated[str, Path(max_length=20)]
Text = Annotated[str, Form(max_length=200)]
LIST_SIZE = 100
ROUND_FIELDS = ("id", "academic_year", "opens_at", "confirm_from", "cutoff_at", "final_exam_on", "reminders",
                "escalate", "late_grace_days")
SCHOOL_FIELDS = ("code", "name", "area", "emails")
# the field a refusal of a rule is about (the rest go beside the form's button)
FIELD_OF = {"round_exists": "id", "school_code_format": "code", "extension_not_later": "cutoff_at",
            "extension_before_window": "cutoff_at", "extension_in_past": "cutoff_at"}


def _admin(request: Request, page_user: PageUser, csrf_token: str | None = None, *, posted: bool = False) -> None:
    remember(request, page_user)
    if posted:
        require_page_csrf(page_user, csrf_token)  # before anything else: another site's form learns nothing
    require_role(page_user.user, "admin", what_th="จัดการรอบและโรงเรียน (เฉพาะผู้ดูแลระบบ)",
                 what_en="manage rounds and schools (administrators only)")


def _field_problem(exc: ValidationError, fields: tuple[str, ...], fallback: str) -> tuple[Refusal, str]:
    """A form's value that does not parse: the refusal, beside the field it is about."""
    error = exc.errors()[0]
    where = next((str(p) for p in error.get("loc", ()) if str(p) in fields), fallback)
    return invalid("form_invalid", f"ค่าในช่องนี้ไม่ถูกต้อง ({error.get('msg', '')})",
                   f"This field's value is not valid ({error.get('msg', '')})"), where


def _rule_field(problem: Refusal, fallback: str) -> str:
    """Which field a rule's refusal is about: its code, or the validation error it came from (a round's order)."""
    if problem.code in FIELD_OF:
        return FIELD_OF[problem.code]
    cause = problem.__cause__
    if isinstance(cause, ValidationError):
        error = cause.errors()[0]
        text = f"{error.get('loc', ())} {error.get('msg', '')}"
        for name in ("final_exam_on", "academic_year", "round id", "confirm_from"):
            if name in text:
                return {"round id": "id", "confirm_from": "cutoff_at"}.get(name, name)
    return fallback


# --- rounds --------------------------------------------------------------------------------------------

def _rounds_page(request: Request, page_user: PageUser, engine, *, form: dict | None = None,
                 problem: Refusal | None = None, problem_for: str | None = None) -> Response:
    with session_scope(engine) as session:
        started = dict(session.exec(select(SchoolRound.round_id, func.count()).group_by(SchoolRound.round_id)).all())
        rounds = [(r, started.get(r.id, 0)) for r in
                  session.exec(select(Round).order_by(Round.created_at.desc()).limit(LIST_SIZE)).all()]
        schools = session.exec(select(func.count()).select_from(School)).one()
    return page(request, "admin/rounds.html", user=page_user.user, csrf_token=page_user.csrf_token,
                rounds=rounds, schools=schools,
                form=form or {"reminders": "4:30, 1:00", "escalate": "on", "late_grace_days": "30"},
                problem=problem, problem_for=problem_for, status=problem.status if problem else 200)


@router.get("/admin/rounds", operation_id="admin_rounds_page", include_in_schema=False)
async def admin_rounds_page(request: Request, page_user: PageUserDep, engine: EngineDep) -> Response:
    _admin(request, page_user)
    return await asyncio.to_thread(_rounds_page, request, page_user, engine)


class Beside(Exception):
    """A refusal and the form field it is shown beside."""

    def __init__(self, problem: Refusal, field: str) -> None:
        super().__init__(problem.code)
        self.problem, self.field = problem, field


def _round_in(form: dict) -> RoundIn:
    """The create form's fields as the API's body; the reminders are typed as hours:minutes before the cutoff."""
    if not form["late_grace_days"].isdigit():
        raise Beside(invalid("form_invalid", "ระบุจำนวนวันเป็นตัวเลข", "Give a whole number of days"), "late_grace_days")
    try:
        policy = RoundPolicy(reminders_before_cutoff=[f"{part.strip()}:00" for part in form["reminders"].split(",")
                                                      if part.strip()],
                             escalate_at_cutoff=bool(form["escalate"]),
                             late_grace=timedelta(days=int(form["late_grace_days"])))
    except ValidationError as exc:
        raise Beside(_field_problem(exc, (), "reminders")[0], "reminders") from None
    return RoundIn(id=form["id"], academic_year=form["academic_year"], opens_at=form["opens_at"],
                   confirm_from=form["confirm_from"], cutoff_at=form["cutoff_at"],
                   final_exam_on=form["final_exam_on"] or None, policy=policy)


@router.post("/admin/rounds", operation_id="admin_create_round_page", include_in_schema=False)
async def admin_create_round_page(
        request: Request, page_user: PageUserDep, engine: EngineDep, csrf_token: CsrfForm = None,
        id: Annotated[str, Form(max_length=40)] = "", academic_year: Annotated[str, Form(max_length=8)] = "",
        opens_at: Annotated[str, Form(max_length=30)] = "", confirm_from: Annotated[str, Form(max_length=30)] = "",
        cutoff_at: Annotated[str, Form(max_length=30)] = "", final_exam_on: Annotated[str, Form(max_length=20)] = "",
        reminders: Annotated[str, Form(max_length=200)] = "", escalate: Annotated[str, Form(max_length=5)] = "",
        late_grace_days: Annotated[str, Form(max_length=4)] = "") -> Response:
    _admin(request, page_user, csrf_token, posted=True)
    form = dict(id=id.strip(), academic_year=academic_year.strip(), opens_at=opens_at, confirm_from=confirm_from,
                cutoff_at=cutoff_at, final_exam_on=final_exam_on, reminders=reminders, escalate=escalate,
                late_grace_days=late_grace_days.strip())

    def create() -> None:
        body = _round_in(form)
        with session_scope(engine) as session:
            create_round_row(session, body)

    try:
        await asyncio.to_thread(create)
    except (ValidationError, Beside, Refusal) as exc:
        if isinstance(exc, ValidationError):
            problem, where = _field_problem(exc, ROUND_FIELDS, "id")
        elif isinstance(exc, Beside):
            problem, where = exc.problem, exc.field
        else:
            problem, where = exc, _rule_field(exc, "cutoff_at")
        return await asyncio.to_thread(_rounds_page, request, page_user, engine, form=form, problem=problem,
                                       problem_for=where)
    return RedirectResponse(f"/admin/rounds/{quote(form['id'], safe='')}", status_code=303)


def round_progress(session, row: Round, operation: str | None) -> dict:
    """A round's start or whole-round extension as the projection shows it: two counts, never a workflow query.
    Started: the schools with their row (visible in the dashboard; each row is written just before its
    workflow starts) of all schools. Extended: the schools whose cutoff reached the round's new one, or that
    had certified (they refuse an extension), of all started."""
    visible = session.exec(select(func.count()).select_from(SchoolRound).where(SchoolRound.round_id == row.id)).one()
    schools = session.exec(select(func.count()).select_from(School)).one()
    src = f"/admin/rounds/{quote(row.id, safe='')}/progress" + (f"?{urlencode({'operation': operation})}"
                                                                 if operation else "")
    if operation and operation.startswith(fanout_id(row.id, "extend")):
        waiting = session.exec(select(func.count()).select_from(SchoolRound).where(
            SchoolRound.round_id == row.id, SchoolRound.certified_at.is_(None),
            SchoolRound.cutoff_at < row.cutoff_at)).one()
        return {"kind": "extend", "done": visible - waiting, "n": visible, "finished": waiting == 0,
                "visible": visible, "schools": schools, "src": src}
    return {"kind": "start", "done": visible, "n": schools, "finished": visible >= schools, "visible": visible,
            "schools": schools, "src": src}


def _round_facts(engine, round_id: str, operation: str | None):
    with session_scope(engine) as session:
        row = session.get(Round, round_id)
        if row is None:
            raise not_found("รอบ", "round", round_id)
        return round_view(session, row), round_progress(session, row, operation) if row.started_at else None


async def _round_page(request: Request, page_user: PageUser, engine, client, round_id: str, operation: str | None,
                      *, extended: bool = False, form: dict | None = None, problem: Refusal | None = None,
                      problem_for: str | None = None) -> Response:
    facts, progress = await asyncio.to_thread(_round_facts, engine, round_id, operation)
    if progress is not None and not progress["finished"]:
        # Once per page load (the live part reads the projection only): a start whose schools never all appear
        # (a school skipped, a failed run) is told by its operation's own end.
        try:
            ran = await operation_progress(client, page_user.user, round_id, operation or fanout_id(round_id, "start"))
            progress["finished"] = bool(ran.get("finished")) or ran.get("status") not in ("running", "unknown")
        except Refusal:
            pass  # not an operation of this round: the projection's counts alone
    lang_th = page_language(request) == "th"
    exam_day = (thai_date(facts.final_exam_on) if lang_th else facts.final_exam_on.strftime("%-d %B %Y")) \
        if facts.final_exam_on else ""
    return page(request, "admin/round.html", user=page_user.user, csrf_token=page_user.csrf_token, round=facts,
                progress=progress, operation=operation, extended=extended, exam_day=exam_day,
                form=form or {"cutoff_at": "", "reason": ""},
                problem=problem, problem_for=problem_for, status=problem.status if problem else 200)


@router.get("/admin/rounds/{round_id}", operation_id="admin_round_page", include_in_schema=False)
async def admin_round_page(request: Request, round_id: RoundId, page_user: PageUserDep, engine: EngineDep,
                           client: TemporalDep,
                           operation: Annotated[str | None, Query(max_length=120)] = None,
                           extended: Annotated[str | None, Query(max_length=2)] = None) -> Response:
    _admin(request, page_user)
    return await _round_page(request, page_user, engine, client, round_id, operation, extended=extended == "1")


@router.get("/admin/rounds/{round_id}/progress", operation_id="admin_round_progress_part", include_in_schema=False)
def admin_round_progress_part(request: Request, round_id: RoundId, page_user: PageUserDep, session: SessionDep,
                              operation: Annotated[str | None, Query(max_length=120)] = None) -> Response:
    """The progress part of the round's page alone, polled by its script while the start or extension runs:
    two counts of the projection per poll, however large the round (a fan-out's query would cost the
    workflow a task each time). Short polling, not the SSE feed: one or two administrators watch it, and
    a stateless GET survives an API restart or a proxy that holds streams back."""
    _admin(request, page_user)
    row = session.get(Round, round_id)
    if row is None:
        raise not_found("รอบ", "round", round_id)
    return page(request, "admin/round_progress.html", user=page_user.user, progress=round_progress(session, row, operation))


@router.post("/admin/rounds/{round_id}/start", operation_id="admin_start_round_page", include_in_schema=False)
async def admin_start_round_page(request: Request, round_id: RoundId, page_user: PageUserDep, engine: EngineDep,
                                 client: TemporalDep, settings: SettingsDep, csrf_token: CsrfForm = None) -> Response:
    _admin(request, page_user, csrf_token, posted=True)
    operation, _ = await round_ops.start_round(engine, client, settings, round_id)
    return RedirectResponse(f"/admin/rounds/{quote(round_id, safe='')}?{urlencode({'operation': operation})}",
                            status_code=303)


@router.post("/admin/rounds/{round_id}/extend", operation_id="admin_extend_round_page", include_in_schema=False)
async def admin_extend_round_page(request: Request, round_id: RoundId, page_user: PageUserDep, engine: EngineDep,
                                  client: TemporalDep, settings: SettingsDep, now: NowDep,
                                  csrf_token: CsrfForm = None, cutoff_at: Annotated[str, Form(max_length=30)] = "",
                                  reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    _admin(request, page_user, csrf_token, posted=True)
    form = {"cutoff_at": cutoff_at, "reason": reason}
    try:
        body = ExtensionIn(cutoff_at=cutoff_at, reason=reason.strip())  # no school, no area: the whole round
    except ValidationError as exc:
        problem, where = _field_problem(exc, ("cutoff_at", "reason"), "cutoff_at")
        return await _round_page(request, page_user, engine, client, round_id, None, form=form, problem=problem,
                                 problem_for=where)
    try:
        done = await extend_round_deadline(engine, client, settings, page_user.user, round_id, body, now)
    except Refusal as problem:
        if problem.code == "not_found":
            raise
        return await _round_page(request, page_user, engine, client, round_id, None, form=form, problem=problem,
                                 problem_for=FIELD_OF.get(problem.code, "extend"))
    return RedirectResponse(f"/admin/rounds/{quote(round_id, safe='')}?"
                            f"{urlencode({'operation': done.operation_id or '', 'extended': '1'})}", status_code=303)


# --- areas and schools ---------------------------------------------------------------------------------

def _schools_page(request: Request, page_user: PageUser, engine, q: str, area: str, *, form: dict | None = None,
                  problem: Refusal | None = None, problem_for: str | None = None) -> Response:
    with session_scope(engine) as session:
        areas = session.exec(select(Area.name, func.count(School.code)).join(School, School.area == Area.name,
                                                                            isouter=True)
                             .group_by(Area.name).order_by(Area.name)).all()
        found = select(School).order_by(School.area, School.code).limit(LIST_SIZE + 1)
        if q.strip():
            pattern = f"%{q.strip()}%"
            found = found.where(or_(School.code.like(pattern), School.name.ilike(pattern)))
        if area:
            found = found.where(School.area == area)
        schools = session.exec(found).all()
    return page(request, "admin/schools.html", user=page_user.user, csrf_token=page_user.csrf_token, areas=areas,
                schools=schools[:LIST_SIZE], more=len(schools) > LIST_SIZE, q=q, area=area,
                form=form or {"code": "", "name": "", "area": area, "emails": ""}, problem=problem,
                problem_for=problem_for, status=problem.status if problem else 200)


@router.get("/admin/schools", operation_id="admin_schools_page", include_in_schema=False)
async def admin_schools_page(request: Request, page_user: PageUserDep, engine: EngineDep,
                             q: Annotated[str, Query(max_length=120)] = "",
                             area: Annotated[str, Query(max_length=120)] = "") -> Response:
    _admin(request, page_user)
    return await asyncio.to_thread(_schools_page, request, page_user, engine, q, area)


def _school_in(form: dict) -> SchoolIn:
    emails = [e.strip() for e in form["emails"].replace(",", "\n").splitlines() if e.strip()]
    return SchoolIn(name=form["name"], area=form["area"], emails=emails)


def _save(engine, form: dict) -> str:
    body = _school_in(form)
    with session_scope(engine) as session:
        return save_school(session, form["code"], body).code


def _school_page(request: Request, page_user: PageUser, engine, now, code: str, *, form: dict | None = None,
                 notice: str | None = None, problem: Refusal | None = None, problem_for: str | None = None) -> Response:
    code = normalise_school_code(code)
    with session_scope(engine) as session:
        school = session.get(School, code)
        if school is None:
            raise not_found("โรงเรียน", "school", code)
        emails = sorted(session.exec(select(SchoolEmail.email).where(SchoolEmail.school_code == code)).all())
        round_ids = session.exec(select(SchoolRound.round_id).join(Round, Round.id == SchoolRound.round_id)
                                 .where(SchoolRound.school_code == code)
                                 .order_by(Round.created_at.desc()).limit(20)).all()
        rounds = [school_round_view(session, rid, school, now) for rid in round_ids]
        session.expunge(school)
    return page(request, "admin/school.html", user=page_user.user, csrf_token=page_user.csrf_token, school=school,
                emails=emails, rounds=rounds, notice=notice == "saved",
                form=form or {"code": code, "name": school.name, "area": school.area, "emails": "\n".join(emails)},
                problem=problem, problem_for=problem_for, status=problem.status if problem else 200)


@router.get("/admin/schools/{code}", operation_id="admin_school_page", include_in_schema=False)
async def admin_school_page(request: Request, code: SchoolCode, page_user: PageUserDep, engine: EngineDep,
                            now: NowDep, notice: Annotated[str | None, Query(max_length=10)] = None) -> Response:
    _admin(request, page_user)
    return await asyncio.to_thread(_school_page, request, page_user, engine, now, code, notice=notice)


@router.post("/admin/schools", operation_id="admin_save_school_page", include_in_schema=False)
async def admin_save_school_page(request: Request, page_user: PageUserDep, engine: EngineDep, now: NowDep,
                                 csrf_token: CsrfForm = None, code: Annotated[str, Form(max_length=20)] = "",
                                 name: Text = "", area: Annotated[str, Form(max_length=120)] = "",
                                 emails: Annotated[str, Form(max_length=6000)] = "",
                                 editing: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Add a school (the list's form) or edit one (its page's form, `editing`): the API's upsert."""
    _admin(request, page_user, csrf_token, posted=True)
    form = {"code": code.strip(), "name": name, "area": area, "emails": emails}
    try:
        saved = await asyncio.to_thread(_save, engine, form)
    except (ValidationError, Refusal) as exc:
        if isinstance(exc, ValidationError):
            problem, where = _field_problem(exc, SCHOOL_FIELDS, "name")
        else:
            problem, where = exc, FIELD_OF.get(exc.code, "code")
        if editing:
            return await asyncio.to_thread(_school_page, request, page_user, engine, now, form["code"], form=form,
                                           problem=problem, problem_for=where)
        return await asyncio.to_thread(_schools_page, request, page_user, engine, "", "", form=form, problem=problem,
                                       problem_for=where)
    return RedirectResponse(f"/admin/schools/{saved}?notice=saved", status_code=303)
