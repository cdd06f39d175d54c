"""The authorisation matrix: every operation of the API × every kind of caller, own and other school/area.

One row per operation_id (OPS below): who may call it and how to build a request that is otherwise
valid, so that the access decision is what is tested. A new route without a row fails
`test_every_route_is_in_the_matrix`: whoever adds an endpoint declares who may call it.

Callers: anonymous, a wrong token, admin, district of the school's area / of another area, staff and
director of the school (SCHOOL), of another school in the same area (SCHOOL_2), of a school in another
area (OTHER_SCHOOL). The duplicate case is between SCHOOL and SCHOOL_2, so both schools are its parties.

A denied cell must answer 401 (no or wrong token), 403 (role) or 404 (a record outside the caller's
scope is not admitted to exist), each with a refusal body; an allowed cell must get past access
control: no 401/403, no not_found. Lists are not refused: they are filtered, so for them the row says
who sees the record. The import of a DMC export is checked row by row: another school's rows are
refused as `other_school` while the call itself succeeds.

The dashboard's pages answer a browser: the caller holds a web session of its user (the cookie carries
the session's id, never the token; a form POST carries the session's CSRF token) or, to log in, puts the
token in the form; a refusal is an HTML page showing the refusal's code and messages; a browser without a
valid session (`bad_token`: a made-up session id) is shown the login form (200), or sent to it (303, the
workbench's pages, web/), with nothing of the round in it.

Order of checks: the token is checked before anything in the body is (401 first), but roles and scope
are checked in the handlers, after FastAPI has validated the body: a signed-in caller of the wrong role
who sends a malformed body learns 422 before 403. Nothing but the body's shape (public in
/openapi.json) is learnt that way; moving the role checks into route dependencies would change that.
Bodies over the size limit and NUL characters are refused (413/422) before authentication.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi.routing import APIRoute
from sqlmodel import select

from api import live
from api.app import create_app
from api.viewer import COOKIE, CSRF_FIELD
from db import accounts
from db.directory import user_by_token
from db.engine import session_scope
from db.models import Student, utcnow
from db.web_sessions import SessionPolicy, open_session
from dmcflow.settings import Settings
from domain.thai_time import to_bangkok
from tests.api_world import DROPOUT_EVIDENCE_SHA, DROPOUT_PUPIL, EVIDENCE_SHA, World, fresh_db_url, populated_world
from tests.stack import AREA, HEADER, OTHER_AREA, OTHER_SCHOOL, READY_IDS, SCHOOL, SCHOOL_2

ACTORS = ("anonymous", "bad_token", "admin", "district", "other_district", "staff", "director", "staff2",
          "director2", "other_staff", "other_director")
SIGNED_IN = set(ACTORS) - {"anonymous", "bad_token"}
SCHOOL_SIDE = {"staff", "director"}  # of SCHOOL
AREA_SIDE = SCHOOL_SIDE | {"district", "admin"}  # who may see SCHOOL
CASE_PARTIES = {"staff", "director", "staff2", "director2"}  # SCHOOL and SCHOOL_2
WATCHERS = {"district", "admin"}  # who may watch AREA's dashboard
DENIAL_CODES = {401: {"unauthenticated"}, 403: {"forbidden"}, 404: {"not_found"}}

Request = Callable[[World], dict]


@dataclass
class Op:
    request: Request  # method, url and body of a request that is valid apart from who sends it
    allowed: set[str]  # who gets past access control
    sees: set[str] = field(default_factory=set)  # list operations: who finds the world's record in the answer
    rows_for: set[str] | None = None  # the roster import: whose rows are applied (the others' are refused)
    credential: str = "header"  # where the caller's token goes: "header" (bearer), "cookie" (the dashboard's
    # session, as a browser sends it), "form" (the login form's `token`), "password" (the login page's user name
    # and password: the token's user is given them, as `dmcflow users import` and its link would)
    page: bool = False  # a page for the browser: refusals are HTML (see `refusal_of`)
    upstream: str | None = None  # the code of "a service behind the route is down" (5xx), reached past the door


def get(path: str) -> Request:
    return lambda w: {"method": "GET", "url": path.format(w=w, school=SCHOOL)}


def post(path: str, body: Callable[[World], dict] | dict | None = None, method: str = "POST") -> Request:
    def build(w: World) -> dict:
        payload = body(w) if callable(body) else body
        return {"method": method, "url": path.format(w=w, school=SCHOOL), **({"json": payload} if payload else {})}
    return build


def upload(path: str, files: Callable[[World], dict], data: dict | None = None) -> Request:
    return lambda w: {"method": "POST", "url": path.format(w=w, school=SCHOOL), "files": files(w), "data": data or {}}


def round_body(_: World) -> dict:
    return {"id": f"m{uuid.uuid4().hex[:8]}", "academic_year": 2567, "opens_at": "2025-03-01T00:00:00",
            "confirm_from": "2025-04-30T08:30:00", "cutoff_at": "2025-04-30T16:30:00"}


def student(new_id: str) -> dict:
    return {"student": new_id, "prefix": "เด็กหญิง", "first_name": "ทดสอบ", "last_name": "สิทธิ์", "grade": "ม.1",
            "sat_final_exam_here": True}


def extension(w: World) -> dict:
    return {"cutoff_at": (w.now + timedelta(hours=9)).isoformat(), "reason": "ทดสอบสิทธิ์", "school_code": SCHOOL}


def bangkok_form(at) -> tuple[str, str]:
    """The date and time fields of a page's form: Bangkok time."""
    local = to_bangkok(at)
    return local.strftime("%Y-%m-%d"), local.strftime("%H:%M")


def new_account(_: World) -> dict:
    """The users page's form for a new staff account of SCHOOL (a user name of its own for each caller)."""
    return {"method": "POST", "url": "/users", "files": {}, "data": {
        "username": f"m-{uuid.uuid4().hex[:10]}", "role": "staff", "scope": SCHOOL, "name": "ทดสอบสิทธิ์",
        "email": "matrix@example.org"}}


def managed_account(w: World, action: str) -> dict:
    """A fresh account of SCHOOL (AREA's district and the admin manage it), for each caller to disable or mail."""
    with session_scope(w.stack.engine) as s:
        user, _ = accounts.create_account(s, w.settings, accounts.AccountRow(
            username=f"m-{uuid.uuid4().hex[:10]}", role="staff", scope=SCHOOL, name="ทดสอบสิทธิ์",
            email="matrix@example.org"), utcnow())
        user_id = user.id
    return {"method": "POST", "url": f"/users/{user_id}/{action}", "files": {}, "data": {}}


def roster_student(w: World, action: str, data: dict | None = None) -> dict:
    """A roster page of the world's student of SCHOOL (named by its row's number), GET or a form's POST."""
    with session_scope(w.stack.engine) as s:
        row = s.exec(select(Student).where(Student.school_code == SCHOOL, Student.student_id == READY_IDS[SCHOOL])).one()
        pk = row.id
        if action == "/edit":  # the record as it is: nothing to change (the staff is refused as such)
            data = {k: getattr(row, k) for k in ("prefix", "first_name", "last_name", "grade", "classroom", "student_no")}
    url = ROSTER_PAGE.format(w=w, school=SCHOOL) + f"/students/{pk}{action}"
    if data is None:
        return {"method": "GET", "url": url}
    return {"method": "POST", "url": url, "files": {}, "data": data}


ROSTER_PAGE = "/school/{school}/rounds/{w.round_id}/roster"
ROSTER_ROW = f"{SCHOOL},ก,1449900000077,ม.1,1,9,ช,เด็กชาย,สิทธิ์,ทดสอบ,02/02/2555,ใช่\n"
R = "/rounds/{w.round_id}"
S = R + "/schools/{school}"
CASE = R + "/duplicates/{w.case_id}"
IDC = "/id-corrections/{w.correction}"
DROPOUT = R + "/dropouts/{w.dropout}"
WATCHED = R + "/areas/" + quote(AREA)
WC = "/school/{school}/rounds/{w.round_id}/cases"  # the school's cases page (web/case_pages.py)
DROPOUT_FORM = {"student": DROPOUT_PUPIL, "reason": "low_income", "details": "ทดสอบสิทธิ์"}

# The matrix. Order matters a little: the rows that change the world come after those that read it, and
# withdraw_dropout and decide_dropout (each closes the world's dropout request: the other then answers 409,
# past the door) come last.
OPS: dict[str, Op] = {
    "health": Op(get("/health"), set(ACTORS)),
    "whoami": Op(get("/me"), SIGNED_IN),
    "get_round": Op(get(R), SIGNED_IN),
    # round-wide (no area): the admin's; an area's operation is its district's too (tests/trust/test_finding_9_*)
    "get_round_operation": Op(get(R + "/operations/round-start/{w.round_id}"), {"admin"}),
    "get_school_round": Op(get(S), AREA_SIDE),
    "list_school_audit": Op(get(S + "/audit"), AREA_SIDE),
    "list_existence_marks": Op(get(S + "/existence?mark=present"), AREA_SIDE),
    "list_duplicates": Op(get(R + "/duplicates"), SIGNED_IN, sees=CASE_PARTIES | {"district", "admin"}),
    "get_duplicate_evidence": Op(get(CASE + f"/evidence/{EVIDENCE_SHA}"), CASE_PARTIES | {"district", "admin"}),
    "list_id_corrections": Op(get("/id-corrections"), SIGNED_IN, sees={"district", "admin", "staff", "director"}),
    "get_id_correction": Op(get(IDC), {"district", "admin"}),
    "get_id_correction_message": Op(get(IDC + "/message"), {"district", "admin"}),
    "get_id_correction_evidence": Op(get(IDC + f"/evidence/{EVIDENCE_SHA}"), {"district", "admin"}),
    # mail the intake refused unanswered (a forged From of SCHOOL): officers only, of the claimed school's area
    "list_refused_mail": Op(get("/id-corrections/refused-mail"), {"district", "other_district", "admin"},
                            sees={"district", "admin"}),
    "list_dropouts": Op(get(R + "/dropouts"), SIGNED_IN, sees=AREA_SIDE),
    "get_dropout": Op(get(DROPOUT), AREA_SIDE),
    "get_dropout_evidence": Op(get(DROPOUT + f"/evidence/{DROPOUT_EVIDENCE_SHA}"), AREA_SIDE),
    "area_dashboard": Op(get(WATCHED + "/dashboard"), WATCHERS),
    "area_dashboard_events": Op(get(WATCHED + "/events"), WATCHERS),  # ends at once here: see STREAM_SECONDS below
    "export_area_report": Op(get(WATCHED + "/report"), WATCHERS),
    "round_overview": Op(get(R + "/overview"), {"admin"}),
    "school_timeline": Op(get(S + "/timeline"), AREA_SIDE),
    "school_evidence_pack": Op(get(S + "/evidence-pack"), AREA_SIDE),
    "dashboard_page": Op(get("/dashboard?round={w.round_id}&area=" + quote(AREA)), WATCHERS, credential="cookie",
                         page=True),
    # whose token the form accepts (it sets the session cookie): the watchers of any area
    "dashboard_login": Op(upload("/dashboard/login", lambda w: {}, {"next": "/dashboard"}),
                          {"district", "other_district", "admin"}, credential="form", page=True),
    "dashboard_logout": Op(post("/dashboard/logout"), set(ACTORS), credential="cookie", page=True),
    "dashboard_static": Op(get("/dashboard/static/dashboard.js"), set(ACTORS)),
    "upsert_school": Op(post("/schools/1044449077", {"name": "โรงเรียนใหม่", "area": AREA}, method="PUT"), {"admin"}),
    "create_round": Op(post("/rounds", round_body), {"admin"}),
    "start_round": Op(post(R + "/start"), {"admin"}),
    "extend_deadline": Op(post(R + "/deadline-extensions", extension), {"admin", "district"}),
    "import_affiliation_list": Op(upload(R + "/affiliation-lists", lambda w: {
        "file": ("list.csv", "เลขประจำตัวประชาชน\n1101700000017\n".encode(), "text/csv")}, {"agency": "opec"}),
        {"admin", "district", "other_district"}),
    "import_students": Op(upload(R + "/students/import", lambda w: {
        "file": ("r.csv", (HEADER + ROSTER_ROW).encode(), "text/csv")}), {"admin", "staff", "staff2", "other_staff"},
        rows_for={"admin", "staff"}),
    "record_end_of_year": Op(post(S + "/end-of-year", {"step": "3.2.2", "records": [
        {"student": READY_IDS[SCHOOL], "result": "promoted"}]}), {"staff"}),
    # R11's marks: the school's own staff only (the letter's เจ้าหน้าที่/บุคลากร ระดับโรงเรียน)
    "mark_student_exception": Op(post(S + "/existence/exceptions", {
        "student": READY_IDS[SCHOOL], "kind": "transferred_out", "note": "ทดสอบสิทธิ์"}), {"staff"}),
    "mark_students_present": Op(post(S + "/existence/present", {"students": [READY_IDS[SCHOOL]]}), {"staff"}),
    "clear_existence_marks": Op(post(S + "/existence/cleared", {"students": ["1449900000085"]}), {"staff"}),
    "update_school_profile": Op(post(S + "/profile", {"phone": "043-000000"}, method="PUT"), {"staff"}),
    "add_student": Op(post(S + "/students", student("1449900000085")), {"staff"}),
    "transfer_in_student": Op(post(S + "/students/transfer-in", student("1449900000093")), {"staff"}),
    "add_student_by_gcode": Op(post(S + "/students/by-gcode", student("G664400000016")), {"staff"}),
    "update_student": Op(post(S + "/students/update", {"student": READY_IDS[SCHOOL], "changes": {"classroom": "2"}}),
                         {"staff"}),
    "set_student_status": Op(post(S + "/students/status", {"student": READY_IDS[SCHOOL], "status": "studying"}),
                             {"staff"}),
    "transfer_out_student": Op(post(S + "/students/transfer-out", {"student": "1449900000085", "reason": "ย้าย"}),
                               {"staff"}),
    # removal is the district's (its own area's schools) or the admin's; a student not on the roster: 404 past the door
    "remove_student": Op(post(S + "/students/remove", {"student": "1449900000085", "reason": "ทดสอบสิทธิ์"}),
                         {"district", "admin"}),
    "resolve_duplicate": Op(upload(CASE + "/resolution", lambda w: {
        "evidence": ("e.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")}, {"action": "present"}), CASE_PARTIES),
    "decide_id_correction": Op(post(IDC + "/decision", {"approve": False, "reason": "หลักฐานไม่ชัด"}), {"district"}),
    # the world's request is open: SCHOOL's staff is refused as dropout_already_requested (409), nothing is made
    "request_dropout": Op(upload(S + "/dropouts", lambda w: {
        "evidence": ("e.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")}, DROPOUT_FORM), {"staff"}),
    "comment_dropout": Op(upload(DROPOUT + "/comments", lambda w: {}, {"text": "ทดสอบสิทธิ์"}),
                          {"district", "staff", "director"}),
    "confirm_school_round": Op(post(S + "/confirmation"), {"staff"}),
    "withdraw_confirmation": Op(post(S + "/confirmation", method="DELETE"), {"staff"}),
    "certify_school_round": Op(post(S + "/certification"), {"director"}),
    # the workbench (web/): the home of every signed-in user, and its forms, which send the API's own updates
    "workbench_home": Op(get("/?round={w.round_id}"), SIGNED_IN, credential="cookie", page=True),
    "workbench_static": Op(get("/static/workbench.css"), set(ACTORS)),
    "workbench_confirm": Op(post("/school/{school}/rounds/{w.round_id}/confirm"), {"staff"}, credential="cookie",
                            page=True),
    "workbench_withdraw": Op(post("/school/{school}/rounds/{w.round_id}/withdraw"), {"staff"}, credential="cookie",
                             page=True),
    "workbench_certify": Op(post("/school/{school}/rounds/{w.round_id}/certify"), {"director"}, credential="cookie",
                            page=True),
    # the staff's round work (web/round_work_pages.py): R10's menus and R11's marks, the school's own staff only
    "workbench_end_of_year": Op(get("/school/{school}/rounds/{w.round_id}/end-of-year?step=3.2.2"), {"staff"},
                                credential="cookie", page=True),
    "workbench_record_end_of_year": Op(post("/school/{school}/rounds/{w.round_id}/end-of-year"), {"staff"},
                                       credential="cookie", page=True),
    "workbench_existence": Op(get("/school/{school}/rounds/{w.round_id}/existence"), {"staff"}, credential="cookie",
                              page=True),
    "workbench_mark_present": Op(post("/school/{school}/rounds/{w.round_id}/existence/present"), {"staff"},
                                 credential="cookie", page=True),
    "workbench_mark_exception": Op(post("/school/{school}/rounds/{w.round_id}/existence/exception"), {"staff"},
                                   credential="cookie", page=True),
    # the school's cases (web/case_pages.py): SCHOOL's dropout request, its claim (the case), its ID correction
    "workbench_cases": Op(get(WC), {"staff"}, credential="cookie", page=True),
    "workbench_request_dropout": Op(upload(WC + "/dropouts", lambda w: {}), {"staff"}, credential="cookie", page=True),
    "workbench_school_dropout": Op(get(WC + "/dropouts/{w.dropout}"), {"staff"}, credential="cookie", page=True),
    "workbench_school_dropout_evidence": Op(get(WC + "/dropouts/{w.dropout}/evidence/{w.dropout_evidence}"), {"staff"},
                                            credential="cookie", page=True),
    "workbench_reply_dropout": Op(upload(WC + "/dropouts/{w.dropout}/comments", lambda w: {}), {"staff"},
                                  credential="cookie", page=True),
    "workbench_withdraw_dropout": Op(upload(WC + "/dropouts/{w.dropout}/withdrawal", lambda w: {}), {"staff"},
                                     credential="cookie", page=True),
    "workbench_declare_duplicate": Op(upload(WC + "/duplicates/{w.case_id}", lambda w: {}), {"staff"},
                                      credential="cookie", page=True),
    "workbench_school_duplicate_evidence": Op(get(WC + "/duplicates/{w.case_id}/evidence/" + EVIDENCE_SHA), {"staff"},
                                              credential="cookie", page=True),
    # accounts (web/auth.py, web/users.py): the login page takes a user name and password from anyone who has
    # one; the password pages need none (their link's token is the credential: a made-up one is 410, past the door)
    "login_page": Op(get("/login"), set(ACTORS), page=True),
    "login": Op(upload("/login", lambda w: {}, {"next": "/"}), SIGNED_IN, credential="password", page=True),
    "logout": Op(post("/logout"), set(ACTORS), credential="cookie", page=True),
    "password_set_page": Op(get("/password/set?token=not-a-link"), set(ACTORS), page=True),
    "password_set": Op(upload("/password/set", lambda w: {}, {"token": "not-a-link", "password": "x" * 12,
                                                              "password_repeat": "x" * 12}), set(ACTORS), page=True),
    "password_forgot_page": Op(get("/password/forgot"), set(ACTORS), page=True),
    "password_forgot": Op(upload("/password/forgot", lambda w: {}, {"identifier": "nobody-at-all"}), set(ACTORS),
                          page=True),
    # the users page: administrators, and district officers for their own area (another area's account: 404)
    "users_page": Op(get("/users"), WATCHERS | {"other_district"}, credential="cookie", page=True),
    # the users-CSV upload: the same managers; each row's scope is checked where it is created (tests/web/test_accounts)
    "users_import_page": Op(get("/users/import"), WATCHERS | {"other_district"}, credential="cookie", page=True),
    "users_import_upload": Op(upload("/users/import", lambda w: {
        "file": ("users.csv", b"username,role,school_or_area,name,email\n", "text/csv")}), WATCHERS | {"other_district"},
        credential="cookie", page=True),
    # R1 on its own page: the school's staff, as update_school_profile
    "workbench_school_profile": Op(get("/school/{school}/rounds/{w.round_id}/profile"), {"staff"}, credential="cookie",
                                   page=True),
    "workbench_save_school_profile": Op(upload("/school/{school}/rounds/{w.round_id}/profile", lambda w: {}, {
        "phone": "043-777777", "address": "ต.ทดสอบ อ.ทดสอบ จ.มหาสารคาม", "director_name": "นายทดสอบ สิทธิ์"}), {"staff"},
        credential="cookie", page=True),
    # single sign-on: anyone may start one (the world's provider is unreachable: refused in words, past the door)
    "sso_start": Op(get("/login/oidc"), set(ACTORS), page=True, upstream="sso_unavailable"),
    "sso_callback": Op(get("/login/oidc/callback?code=x&state=y"), set(ACTORS), page=True, upstream="sso_unavailable"),
    "create_user_page": Op(new_account, {"district", "admin"}, credential="cookie", page=True),
    "disable_user_page": Op(lambda w: managed_account(w, "disable"), {"district", "admin"}, credential="cookie",
                            page=True),
    "resend_password_link_page": Op(lambda w: managed_account(w, "link"), {"district", "admin"},
                                    credential="cookie", page=True),
    # the administrator's pages (web/admin_pages.py): rounds, areas and schools, for administrators only
    "admin_rounds_page": Op(get("/admin/rounds"), {"admin"}, credential="cookie", page=True),
    "admin_create_round_page": Op(lambda w: {"method": "POST", "url": "/admin/rounds", "files": {}, "data": {
        "id": f"m{uuid.uuid4().hex[:8]}", "academic_year": "2567", "opens_at": "2025-03-01T00:00",
        "confirm_from": "2025-04-30T08:30", "cutoff_at": "2025-04-30T16:30", "reminders": "1:00",
        "late_grace_days": "30"}}, {"admin"}, credential="cookie", page=True),
    "admin_round_page": Op(get("/admin/rounds/{w.round_id}"), {"admin"}, credential="cookie", page=True),
    "admin_start_round_page": Op(post("/admin/rounds/{w.round_id}/start"), {"admin"}, credential="cookie", page=True),
    # a cutoff in the past: refused past the door (extension_in_past), so the world's round keeps its cutoff
    "admin_extend_round_page": Op(lambda w: {"method": "POST", "url": f"/admin/rounds/{w.round_id}/extend",
                                             "files": {}, "data": {"cutoff_at": "2020-01-01T00:00",
                                                                   "reason": "ทดสอบสิทธิ์"}},
                                  {"admin"}, credential="cookie", page=True),
    "admin_schools_page": Op(get("/admin/schools?q=1044"), {"admin"}, credential="cookie", page=True),
    "admin_school_page": Op(get("/admin/schools/{school}"), {"admin"}, credential="cookie", page=True),
    # the same school and values as upsert_school's row: nothing new in the world
    "admin_save_school_page": Op(lambda w: {"method": "POST", "url": "/admin/schools", "files": {}, "data": {
        "code": "1044449077", "name": "โรงเรียนใหม่", "area": AREA, "emails": ""}}, {"admin"}, credential="cookie",
        page=True),
    "withdraw_dropout": Op(post(DROPOUT + "/withdrawal", {"reason": "ทดสอบสิทธิ์"}), {"staff"}),
    "decide_dropout": Op(post(DROPOUT + "/decision", {"approve": False, "reason": "ทดสอบสิทธิ์"}), {"district"}),
    # the roster pages (web/roster_pages/): who may see the school reads; its staff changes (the admin imports too);
    # the forms send nothing that would change the world's student (the staff is refused by the rule, past the door)
    "roster_start_page": Op(get("/roster?school={school}"), AREA_SIDE, credential="cookie", page=True),
    "roster_page": Op(get(ROSTER_PAGE), AREA_SIDE, credential="cookie", page=True),
    "roster_search_page": Op(upload(ROSTER_PAGE + "/search", lambda w: {}, {"q": "ทดสอบ"}), AREA_SIDE,
                             credential="cookie", page=True),
    "roster_import_page": Op(get(ROSTER_PAGE + "/import"), AREA_SIDE, credential="cookie", page=True),
    "roster_import_upload": Op(upload(ROSTER_PAGE + "/import", lambda w: {
        "file": ("r.csv", (HEADER + ROSTER_ROW).encode(), "text/csv")}), {"staff", "admin"}, credential="cookie",
        page=True),
    "roster_new_page": Op(get(ROSTER_PAGE + "/new"), AREA_SIDE, credential="cookie", page=True),
    "roster_new_student": Op(upload(ROSTER_PAGE + "/new", lambda w: {}, {
        k: v for k, v in student("1449900000069").items() if k != "sat_final_exam_here"}), {"staff"},
        credential="cookie", page=True),  # not sat here: the staff is refused by R6, nothing is added
    "roster_student_page": Op(lambda w: roster_student(w, ""), AREA_SIDE, credential="cookie", page=True),
    "roster_edit_student": Op(lambda w: roster_student(w, "/edit", {}), {"staff"}, credential="cookie", page=True),
    "roster_transfer_out_student": Op(lambda w: roster_student(w, "/transfer-out", {"left_on": ""}), {"staff"},
                                      credential="cookie", page=True),
    "roster_student_status": Op(lambda w: roster_student(w, "/status", {"note": ""}), {"staff"},
                                credential="cookie", page=True),
    # the district's work queue (web/district_pages.py): officers of the area and admins; its forms send the API's
    # own functions (deciding is the district's); after the rows above, as its dropout decision closes the request
    "workbench_queue": Op(get("/queue?round={w.round_id}"), WATCHERS | {"other_district"}, credential="cookie",
                          page=True),
    # the live pages' feeds (web/live_pages.py): a school's for who may see the school, an area's queue for its
    # officers; and the admin's round progress part (ends at once here: see STREAM_SECONDS below)
    "workbench_school_feed": Op(get("/live/schools/{school}/rounds/{w.round_id}"), AREA_SIDE, credential="cookie",
                                page=True),
    "workbench_queue_feed": Op(get("/live/areas/" + quote(AREA) + "/rounds/{w.round_id}/queue"), WATCHERS,
                               credential="cookie", page=True),
    "admin_round_progress_part": Op(get("/admin/rounds/{w.round_id}/progress"), {"admin"}, credential="cookie",
                                    page=True),
    "workbench_id_correction": Op(get("/queue" + IDC), WATCHERS, credential="cookie", page=True),
    "workbench_id_correction_evidence": Op(get("/queue" + IDC + f"/evidence/{EVIDENCE_SHA}"), WATCHERS,
                                           credential="cookie", page=True),
    "workbench_decide_id_correction": Op(upload("/queue" + IDC + "/decision", lambda w: {},
                                                {"approve": "no", "reason": "หลักฐานไม่ชัด"}), {"district"},
                                         credential="cookie", page=True),
    "workbench_duplicate": Op(get("/queue" + CASE), WATCHERS, credential="cookie", page=True),
    "workbench_duplicate_evidence": Op(get("/queue" + CASE + f"/evidence/{EVIDENCE_SHA}"), WATCHERS,
                                       credential="cookie", page=True),
    # `open` on the world's open case: refused by its workflow past the door, the case unchanged
    "workbench_resolve_duplicate": Op(upload("/queue" + CASE + "/resolution", lambda w: {}, {"action": "open"}),
                                      {"district"}, credential="cookie", page=True),
    "workbench_extensions": Op(get("/queue" + R + "/extensions"), WATCHERS | {"other_district"}, credential="cookie",
                               page=True),
    "workbench_extend_deadline": Op(lambda w: {**upload("/queue" + R + "/extensions", lambda _: {}, {
        "target": SCHOOL, "date": bangkok_form(w.now + timedelta(hours=9))[0],
        "time": bangkok_form(w.now + timedelta(hours=9))[1], "reason": "ทดสอบสิทธิ์"})(w)}, {"district", "admin"},
        credential="cookie", page=True),
    "workbench_dropout": Op(get("/queue" + DROPOUT), WATCHERS, credential="cookie", page=True),
    "workbench_dropout_evidence": Op(get("/queue" + DROPOUT + f"/evidence/{DROPOUT_EVIDENCE_SHA}"), WATCHERS,
                                     credential="cookie", page=True),
    "workbench_comment_dropout": Op(upload("/queue" + DROPOUT + "/comments", lambda w: {}, {"text": "ทดสอบสิทธิ์"}),
                                    {"district"}, credential="cookie", page=True),
    "workbench_decide_dropout": Op(upload("/queue" + DROPOUT + "/decision", lambda w: {},
                                          {"approve": "no", "reason": "ทดสอบสิทธิ์"}), {"district"},
                                   credential="cookie", page=True),
}
# Open to anyone, with or without a token: nothing in them is data, and logging out ends only the caller's session.
OPEN = {"health", "dashboard_static", "dashboard_logout", "workbench_static", "login_page", "logout",
        "password_set_page", "password_set", "password_forgot_page", "password_forgot", "sso_start", "sso_callback"}
# Routes outside /openapi.json (they still have rows): the pages' scripts and style sheets, and the workbench's
# pages (HTML for a browser with a session: the API's clients have the operations they send).
UNDOCUMENTED = {"dashboard_static", "workbench_static",
                "workbench_home", "workbench_confirm", "workbench_withdraw", "workbench_certify",
                "workbench_end_of_year", "workbench_record_end_of_year", "workbench_existence",
                "workbench_mark_present", "workbench_mark_exception",
                "workbench_cases", "workbench_request_dropout", "workbench_school_dropout",
                "workbench_school_dropout_evidence", "workbench_reply_dropout", "workbench_withdraw_dropout",
                "workbench_declare_duplicate", "workbench_school_duplicate_evidence",
                "login_page", "login", "logout", "password_set_page", "password_set", "password_forgot_page",
                "workbench_queue", "workbench_id_correction", "workbench_id_correction_evidence",
                "workbench_decide_id_correction", "workbench_duplicate", "workbench_duplicate_evidence",
                "workbench_resolve_duplicate", "workbench_extensions", "workbench_extend_deadline", "workbench_dropout",
                "workbench_dropout_evidence", "workbench_comment_dropout", "workbench_decide_dropout",
                "password_forgot", "users_page", "create_user_page", "disable_user_page", "resend_password_link_page",
                "admin_rounds_page", "admin_create_round_page", "admin_round_page", "admin_start_round_page",
                "admin_extend_round_page", "admin_schools_page", "admin_school_page", "admin_save_school_page",
                "roster_start_page", "roster_page", "roster_search_page", "roster_import_page", "roster_import_upload",
                "roster_new_page", "roster_new_student", "roster_student_page", "roster_edit_student",
                "roster_transfer_out_student", "roster_student_status",
                "workbench_school_feed", "workbench_queue_feed", "admin_round_progress_part",
                "users_import_page", "users_import_upload", "workbench_school_profile", "workbench_save_school_profile",
                "sso_start", "sso_callback"}
# Routes of FastAPI itself, open to anyone: the API's description (nothing in it is data).
PUBLIC_DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def all_routes(routes) -> list:
    """Every route, included routers opened (FastAPI 0.16x keeps them behind `original_router`)."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        if not isinstance(route, APIRoute) and hasattr(inner, "routes"):
            found += all_routes(inner.routes)
        else:
            found.append(route)
    return found


def test_every_route_is_in_the_matrix():
    app = create_app(Settings(database_url="sqlite://"))
    routes = all_routes(app.routes)
    api_routes = [r for r in routes if isinstance(r, APIRoute)]
    assert all(r.operation_id for r in api_routes), "every route has an explicit operation_id"
    documented = {op["operationId"] for path in app.openapi()["paths"].values() for op in path.values()}
    routed = {r.operation_id for r in api_routes}
    assert documented <= routed, "the walk over the routes found them all"
    assert routed - documented == UNDOCUMENTED, "a route left out of /openapi.json is declared in UNDOCUMENTED"
    missing = sorted(routed - set(OPS))
    assert not missing, f"routes without a row in tests/test_authz_matrix.py OPS (who may call them?): {missing}"
    assert not sorted(set(OPS) - routed), "rows for routes that no longer exist"
    others = {r.path for r in routes if not isinstance(r, APIRoute)}
    assert others <= PUBLIC_DOCS, others - PUBLIC_DOCS
    for op, row in OPS.items():
        assert row.allowed <= set(ACTORS) and row.sees <= row.allowed, op
        # nothing but OPEN is open to callers without a valid token
        assert op in OPEN or not row.allowed & {"anonymous", "bad_token"}, op


@pytest.fixture(scope="module")
async def world(migrated_template, tmp_path_factory):
    # a wrong token per row: far more than the failed-login limit allows one address
    # single sign-on configured, its provider unreachable on loopback: the sso_* rows reach the routes, no further
    async with populated_world(fresh_db_url(migrated_template, tmp_path_factory), auth_failure_limit=10_000,
                               oidc_issuer="http://127.0.0.1:9", oidc_client_id="dmcflow-matrix") as w:
        yield w


def token_of(world: World, actor: str) -> str | None:
    if actor == "anonymous":
        return None
    if actor == "bad_token":
        return "not-a-token-of-anyone"
    return world.stack.tokens[actor]


def web_session(world: World, token: str) -> tuple[str, str]:
    """A fresh web session of the token's user (what a login opens; any role, as a later password login
    could): the cookie's session id and the session's CSRF token. A made-up token gets a made-up id."""
    with session_scope(world.stack.engine) as s:
        user = user_by_token(s, token)
        if user is None:
            return "not-a-session-of-anyone", "not-a-csrf-token"
        row, session_id = open_session(s, user, utcnow(), SessionPolicy(timedelta(hours=1), timedelta(hours=1)))
        return session_id, row.csrf_secret


def with_credentials(world: World, request: dict, how: str, token: str | None) -> dict:
    if token is None:
        return request
    if how == "header":
        return {**request, "headers": {"Authorization": f"Bearer {token}"}}
    if how == "cookie":
        session_id, csrf = web_session(world, token)
        if request["method"] == "POST":  # the dashboard's forms carry the session's CSRF token
            request = {**request, "data": {**request.get("data", {}), CSRF_FIELD: csrf}}
        return {**request, "headers": {"Cookie": f"{COOKIE}={session_id}"}}
    if how == "password":
        return {**request, "data": {**request.get("data", {}), **password_form(world, token)}}
    return {**request, "data": {**request.get("data", {}), "token": token}}


MATRIX_PASSWORD = "matrix-password-ทดสอบ"


def password_form(world: World, token: str) -> dict:
    """The login page's fields for the token's user, who is given a user name and password the first time."""
    with session_scope(world.stack.engine) as s:
        user = user_by_token(s, token)
        if user is None:
            return {"username": "not-a-user-of-anyone", "password": MATRIX_PASSWORD}
        if user.username is None:
            user.username, user.password_hash = f"matrix-{user.id}", accounts.HASHER.hash(MATRIX_PASSWORD)
        return {"username": user.username, "password": MATRIX_PASSWORD}


LISTED = {"list_duplicates": ("id", "case_id"), "list_id_corrections": ("ref", "correction"),
          "list_dropouts": ("id", "dropout"),
          "list_refused_mail": ("sha256", "refused_mail")}  # the list operations: the answer's key, the world's record


def finds(op: str, response, world: World) -> bool:
    key, record = LISTED[op]
    return any(i[key] == getattr(world, record) for i in response.json())


LOGIN_FORM = 'action="/dashboard/login"'
PAGE_PROBLEM = re.compile(r'data-code="(\w+)">([^<]*)<br><small[^>]*>([^<]*)</small>')  # error.html, login.html, web/


def page_refusal(html: str) -> dict:
    """The refusal an HTML page shows (its code, Thai and English), or {}."""
    found = PAGE_PROBLEM.search(html)
    return {"code": found[1], "message_th": found[2].strip(), "message_en": found[3].strip()} if found else {}


def refusal_of(row: Op, r) -> dict:
    """The answer's refusal: the JSON body, or, from a page only, the problem the HTML page shows."""
    ctype = r.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = r.json()
        return body if isinstance(body, dict) else {}
    return page_refusal(r.text) if row.page and ctype.startswith("text/html") else {}


@pytest.mark.parametrize("op", list(OPS))
async def test_only_the_allowed_cells_get_past_access_control(world, op, monkeypatch):
    # httpx's in-process transport answers only once the app has finished, and the live feed runs for
    # STREAM_SECONDS: here it ends at once (its status and headers are what the row checks)
    monkeypatch.setattr(live, "STREAM_SECONDS", 0)  # every feed's (api/live.py event_stream)
    row = OPS[op]
    wrong = []
    for actor in ACTORS:
        world.http.cookies.clear()  # a session cookie set by a login must not follow the next caller
        r = await world.http.request(**with_credentials(world, row.request(world), row.credential,
                                                        token_of(world, actor)))
        body = refusal_of(row, r)
        code = body.get("code")
        if actor not in row.allowed:
            if row.page and row.credential == "cookie" and actor in ("anonymous", "bad_token"):
                # a browser without a valid session is shown the login form (200), or sent to it (303: the
                # workbench's pages), nothing of the round
                shown = r.status_code == 200 and LOGIN_FORM in r.text and "initial-data" not in r.text
                sent = r.status_code == 303 and r.headers.get("location", "").startswith("/login?")
                if not (shown or sent):
                    wrong.append(f"{actor}: expected the login form, got {r.status_code} {r.text[:160]}")
            elif r.status_code not in DENIAL_CODES or code not in DENIAL_CODES[r.status_code] \
                    or not (body.get("message_th") and body.get("message_en")):
                wrong.append(f"{actor}: expected a denial, got {r.status_code} {r.text[:160]}")
            elif actor in ("anonymous", "bad_token") and r.status_code != 401:
                wrong.append(f"{actor}: expected 401, got {r.status_code}")
            continue
        if r.status_code in (401, 403) or code in ("unauthenticated", "forbidden", "not_found") \
                or (r.status_code >= 500 and not (row.upstream and code == row.upstream)) \
                or (row.page and row.credential == "cookie" and LOGIN_FORM in r.text):
            wrong.append(f"{actor}: expected to get past access control, got {r.status_code} {r.text[:160]}")
        elif op in LISTED:
            if finds(op, r, world) != (actor in row.sees):
                wrong.append(f"{actor}: {'should' if actor in row.sees else 'must not'} see the record")
        elif row.rows_for is not None and actor not in row.rows_for:
            report = r.json()  # another school's staff: the call succeeds, every row of SCHOOL is refused
            if not (r.status_code == 200 and report["applied"] == 0 and report["unchanged"] == 0
                    and {i["code"] for i in report["issues"]} == {"other_school"}):
                wrong.append(f"{actor}: another school's rows must all be refused as other_school: {r.text[:200]}")
    assert not wrong, f"{op}:\n" + "\n".join(wrong)


# Cells with foreign values (issue 15, finding 3): another school's student ID in a body, and list filters naming
# another school or area. Same rules as OPS; for an allowed caller `leaks` must not appear in the answer.
HOLDER_LEAKS = (SCHOOL_2, "โรงเรียนบ้านทดลองศึกษา", "ทดสอบ", "ระบบ")  # the holder school, its name, the student's name


@dataclass
class Cell:
    request: Request
    allowed: set[str]
    sees: set[str] | None = None  # lists: who finds the world's record
    listed: str = ""  # the LISTED operation a list cell reads
    leaks: tuple[str, ...] = ()  # nothing of these in the answer to `leaks_for` (default: every allowed caller)
    leaks_for: set[str] | None = None


FOREIGN_VALUES: dict[str, Cell] = {
    # SCHOOL claims SCHOOL_2's student: refused as a claim the district was asked about, nothing of SCHOOL_2's
    "add_student: another school's student": Cell(post(S + "/students", student(READY_IDS[SCHOOL_2])), {"staff"},
                                                  leaks=HOLDER_LEAKS),
    "transfer_in_student: another school's student": Cell(
        post(S + "/students/transfer-in", student(READY_IDS[SCHOOL_2])), {"staff"}, leaks=HOLDER_LEAKS),
    "list_duplicates?school=the holder": Cell(get(R + f"/duplicates?school={SCHOOL_2}"), SIGNED_IN,
                                             {"staff2", "director2", "district", "admin"}, "list_duplicates"),
    "list_duplicates?school=another area's": Cell(get(R + f"/duplicates?school={OTHER_SCHOOL}"), SIGNED_IN, set(),
                                                  "list_duplicates"),
    "list_duplicates (the claimant's view)": Cell(get(R + "/duplicates"), SIGNED_IN, CASE_PARTIES | WATCHERS,
                                                  "list_duplicates", HOLDER_LEAKS, {"staff", "director"}),
    "list_dropouts?area=another area": Cell(get(R + "/dropouts?area=" + quote(OTHER_AREA)), SIGNED_IN, set(),
                                            "list_dropouts"),
    "list_dropouts?area=the school's": Cell(get(R + "/dropouts?area=" + quote(AREA)), SIGNED_IN, AREA_SIDE,
                                            "list_dropouts"),
    "list_dropouts?school=the school": Cell(get(R + f"/dropouts?school={SCHOOL}"), SIGNED_IN, AREA_SIDE,
                                            "list_dropouts"),
    "list_id_corrections?area=the school's": Cell(get("/id-corrections?area=" + quote(AREA)), SIGNED_IN,
                                                  {"district", "admin", "staff", "director"}, "list_id_corrections"),
    "list_id_corrections?school=the school": Cell(get(f"/id-corrections?school={SCHOOL}"), SIGNED_IN,
                                                  {"district", "admin", "staff", "director"}, "list_id_corrections"),
    "list_id_corrections?area=another area": Cell(get("/id-corrections?area=" + quote(OTHER_AREA)), SIGNED_IN, set(),
                                                  "list_id_corrections"),
    # opening a claim as a case: the holder's district only (the world's case is open already: 409, past the door)
    "resolve_duplicate: open": Cell(upload(CASE + "/resolution", lambda w: {}, {"action": "open"}), {"district"}),
}


@pytest.mark.parametrize("name", list(FOREIGN_VALUES))
async def test_foreign_values_are_refused_or_filtered(world, name):
    cell = FOREIGN_VALUES[name]
    wrong = []
    for actor in ACTORS:
        if actor not in cell.allowed and cell.sees is None and actor in ("anonymous", "bad_token"):
            continue  # the OPS row of the operation covers callers without a valid token
        r = await world.http.request(**with_credentials(world, cell.request(world), "header", token_of(world, actor)))
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        code = body.get("code") if isinstance(body, dict) else None
        if actor not in cell.allowed:
            if r.status_code not in DENIAL_CODES or code not in DENIAL_CODES[r.status_code] | {"out_of_scope"}:
                wrong.append(f"{actor}: expected a denial, got {r.status_code} {r.text[:160]}")
            continue
        if r.status_code in (401, 403) or code in ("unauthenticated", "forbidden", "not_found") or r.status_code >= 500:
            wrong.append(f"{actor}: expected to get past access control, got {r.status_code} {r.text[:160]}")
        elif cell.listed and finds(cell.listed, r, world) != (actor in cell.sees):
            wrong.append(f"{actor}: {'should' if actor in cell.sees else 'must not'} see the record")
        leaked = [x for x in cell.leaks if x in r.text and (cell.leaks_for is None or actor in cell.leaks_for)]
        if leaked:
            wrong.append(f"{actor}: the answer shows {leaked}: {r.text[:200]}")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)
