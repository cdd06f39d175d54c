"""What each role's home shows, read from the projection and the case tables: never a workflow query.

A school's home is its `school_rounds` row (api/views.py's school view) and its school row; an officer's
home is a handful of counts, each one indexed query for the area (or the whole round, for admins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import func, select
from sqlmodel import Session

from api.schemas import SchoolRoundOut
from api.views import school_round_view
from db.models import Round, School, SchoolRound, User
from db.monitoring import latest_round
from web import waiting

PROFILE_FIELDS = ("phone", "address", "director_name")  # R1: what the school's basic data must hold

# Where each item of the staff's list is done. Pages not built yet point at the API's own documentation
# (the operation that does it) and are marked "coming"; later sessions replace them with their pages.
TASK_PAGES: dict[str, tuple[str, bool]] = {
    "profile": ("/school/{school}/rounds/{round}/profile", False),  # web/profile_page.py
    "roster": ("/roster", False),  # web/roster_pages/
    "menus": ("/school/{school}/rounds/{round}/end-of-year", False),  # web/round_work_pages.py
    "existence": ("/school/{school}/rounds/{round}/existence", False),
    "dropout": ("/school/{school}/rounds/{round}/cases#dropouts-h", False),  # web/case_pages.py
    "duplicate": ("/school/{school}/rounds/{round}/cases#duplicates-h", False),
    "id_correction": ("/school/{school}/rounds/{round}/cases#corrections-h", False),
}


@dataclass
class Task:
    key: str
    done: bool
    href: str
    coming: bool
    counts: dict = field(default_factory=dict)  # what the template says about it (n, done, missing fields...)
    waiting: bool = False  # cannot start yet (3.2.2.1 / 3.2.2.2 before 3.2.2 is complete)
    children: list[Task] = field(default_factory=list)


@dataclass
class SchoolHome:
    school: School
    view: SchoolRoundOut | None  # None: no round started for the school yet
    tasks: list[Task]
    confirmed_name: str | None = None


def school_round_for(session: Session, school_code: str, round_id: str | None) -> str | None:
    """The round the home shows: the one asked for, else the school's newest started round."""
    if round_id:
        return round_id
    return session.scalars(select(SchoolRound.round_id).join(Round, Round.id == SchoolRound.round_id)
                           .where(SchoolRound.school_code == school_code)
                           .order_by(Round.started_at.desc(), Round.created_at.desc()).limit(1)).first()


def _task(key: str, done: bool, link: str | None = None, **counts) -> Task:
    href, coming = TASK_PAGES[link or key]
    return Task(key=key, done=done, href=href, coming=coming, counts=counts)


def staff_tasks(school: School, view: SchoolRoundOut) -> list[Task]:
    """The staff's list in the order the letter's rules take them: R1, the roster, R10's menus, R11, cases."""
    gate = view.gate
    missing = [name for name in PROFILE_FIELDS if not (getattr(school, name) or "").strip()]
    step = gate.get("steps", {})
    done_322 = bool(step.get("3.2.2"))
    href, coming = TASK_PAGES["menus"]
    menus = Task(key="menu_322", done=done_322, href=href, coming=coming,
                 counts={"done": gate.get("results", 0), "n": gate.get("students", 0)}, children=[
        Task(key="menu_3221", done=bool(step.get("3.2.2.1")), href=href + "?step=3.2.2.1", coming=coming,
             waiting=not done_322,
             counts={"done": gate.get("repeat_reasons", 0), "n": gate.get("repeaters", 0)}),
        Task(key="menu_3222", done=bool(step.get("3.2.2.2")), href=href + "?step=3.2.2.2", coming=coming,
             waiting=not done_322,
             counts={"done": gate.get("destinations", 0), "n": gate.get("graduates", 0)}),
    ])
    decided = view.confirmed is not None or view.certified is not None
    # R11 record by record: every active student marked present or given an exception
    existence = gate.get("existence") or {}
    existence_task = _task("existence", decided or bool(existence.get("complete")), present=existence.get("present", 0),
                           exceptions=existence.get("exceptions", 0), unmarked=existence.get("unmarked", 0),
                           n=existence.get("students", gate.get("students", 0)))
    # a case that no longer holds the confirmation back (R11: its student is an exception) is listed, not "to do"
    holding = [c for c in view.blocking_cases if getattr(c, "blocks_confirmation", True)]
    cases = _task("cases", not holding, link="dropout", n=len(view.blocking_cases))
    pages = [TASK_PAGES.get(c.kind, TASK_PAGES["dropout"]) for c in view.blocking_cases]
    cases.children = [Task(key=f"case:{c.kind}", done=False, href=href, coming=coming,
                           counts={"title_th": c.title_th, "title_en": c.title_en, "ref": c.ref})
                      for c, (href, coming) in zip(view.blocking_cases, pages, strict=True)]
    tasks = [
        _task("profile", not missing, missing=missing),
        _task("roster", gate.get("students", 0) > 0, n=gate.get("students", 0)),
        menus,
        existence_task,
        cases,
    ]
    where = {"school": quote(school.code, safe=""), "round": quote(view.round_id, safe="")}
    for task in tasks:  # the pages of the round work are the school's and the round's (web/round_work_pages.py)
        for one in (task, *task.children):
            one.href = one.href.replace("{school}", where["school"]).replace("{round}", where["round"])
    return tasks


def school_home(session: Session, school: School, round_id: str | None, now: datetime) -> SchoolHome:
    chosen = school_round_for(session, school.code, round_id)
    if chosen is None:
        return SchoolHome(school=school, view=None, tasks=[])
    view = school_round_view(session, chosen, school, now)
    return SchoolHome(school=school, view=view, tasks=staff_tasks(school, view))


@dataclass
class WorkQueue:
    round_id: str | None
    area: str | None  # None: every area (an administrator)
    id_corrections: int = 0
    dropouts: int = 0
    duplicates: int = 0
    late_schools: int = 0


def work_queue(session: Session, user: User, now: datetime) -> WorkQueue:
    """What waits for the district (its own area) or an administrator (every area) in the newest round."""
    chosen = latest_round(session)
    area = user.area if user.role == "district" else None
    queue = WorkQueue(round_id=chosen.id if chosen else None, area=area)
    if chosen is None:
        return queue
    rid, count = chosen.id, [func.count()]  # each kind as the queue lists it (web/waiting.py)
    queue.id_corrections = session.scalar(waiting.id_corrections(count, rid, area)) or 0
    queue.dropouts = session.scalar(waiting.dropouts(count, rid, area)) or 0
    queue.duplicates = session.scalar(waiting.duplicates(count, rid, area)) or 0
    queue.late_schools = session.scalar(waiting.late_schools(count, rid, area, now)) or 0
    return queue
