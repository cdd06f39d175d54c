"""The users page: administrators and district officers manage the accounts of their own scope.

An administrator sees and manages every account; a district officer the staff and directors of its area's
schools and the district officers of its area, never an administrator (db/accounts.py `manages`). An account
outside the scope is not admitted to exist (404). A new account gets no password: a one-time link goes to its
registered email, and "resend" sends a new one (the older link stops working).

The users-CSV upload (`/users/import`) takes the file `dmcflow users import` takes and runs the same function
(db/accounts.py `import_accounts`), given the page's user as the manager: every row is checked against that scope
where it is created or changed, and the answer is the row-by-row report as a table.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import IntegrityError
from starlette.background import BackgroundTask

from api.body_limit import too_large
from api.deps import EngineDep, SettingsDep
from api.sign_in import auth_now
from api.viewer import PageUser, PageUserDep, require_page_csrf
from db import accounts
from db.directory import ROLES, disable_user
from db.engine import session_scope
from db.models import User
from domain.refusals import Refusal, forbidden, refusal
from web.app import PageRoute, remember
from web.forms import CsrfForm
from web.auth import deliver_links
from web.rendering import page

router = APIRouter(route_class=PageRoute, tags=["accounts"])
PAGE_SIZE = 100
UserId = Annotated[str, Path(max_length=40)]
NOTICES = ("created", "disabled", "link_sent", "no_email")
# the create form's field that a refusal is about (shown beside it)
FIELD_OF = {"username_invalid": "username", "username_taken": "username", "role": "role", "user_school": "scope",
            "user_area": "scope", "forbidden": "scope", "name_invalid": "name", "email_invalid": "email"}
# the upload page takes an area's users at a time (a few hundred schools, two or three accounts each: 2,000 new
# accounts took 16 s on this 2-core machine under load, SQLite; a re-run 1 s); the whole country's file is for the
# console (`dmcflow users import`), which has no request to time out
IMPORT_MAX_BYTES = 1024 * 1024
IMPORT_MAX_ROWS = 2_000


def require_manager(user: User) -> None:
    if user.role not in accounts.MANAGERS:
        raise forbidden("จัดการผู้ใช้ (เฉพาะเจ้าหน้าที่เขตและผู้ดูแลระบบ)",
                        "manage users (district officers and administrators only)")


def _users_page(request: Request, page_user: PageUser, engine, *, q: str = "", offset: int = 0,
                notice: str | None = None, form: dict | None = None, problem: Refusal | None = None) -> Response:
    manager = page_user.user
    with session_scope(engine) as session:
        users = accounts.managed_users(session, manager, q, offset, PAGE_SIZE + 1)
    roles = [r for r in ROLES if r != "admin" or manager.role == "admin"]
    return page(request, "users/list.html", user=manager, csrf_token=page_user.csrf_token,
                users=users[:PAGE_SIZE], more=len(users) > PAGE_SIZE, q=q, offset=offset, page_size=PAGE_SIZE,
                notice=notice if notice in NOTICES else None, roles=roles,
                form=form or {"username": "", "role": "staff", "scope": "", "name": "", "email": ""},
                problem=problem, problem_for=FIELD_OF.get(problem.code, "username") if problem else None,
                status=problem.status if problem else 200)


@router.get("/users", operation_id="users_page", include_in_schema=False)
async def users_page(request: Request, page_user: PageUserDep, engine: EngineDep,
                     q: Annotated[str, Query(max_length=120)] = "", offset: Annotated[int, Query(ge=0)] = 0,
                     notice: Annotated[str | None, Query(max_length=20)] = None) -> Response:
    remember(request, page_user)
    require_manager(page_user.user)
    return await asyncio.to_thread(_users_page, request, page_user, engine, q=q, offset=offset, notice=notice)


def _done(notice: str, **extra: str) -> RedirectResponse:
    return RedirectResponse("/users?" + urlencode({"notice": notice, **extra}), status_code=303)


@router.post("/users", operation_id="create_user_page", include_in_schema=False)
async def create_user_page(request: Request, page_user: PageUserDep, engine: EngineDep, settings: SettingsDep,
                           csrf_token: CsrfForm = None, username: Annotated[str, Form(max_length=200)] = "",
                           role: Annotated[str, Form(max_length=20)] = "",
                           scope: Annotated[str, Form(max_length=120)] = "",
                           name: Annotated[str, Form(max_length=300)] = "",
                           email: Annotated[str, Form(max_length=254)] = "") -> Response:
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)  # before anything else: another site's form learns nothing
    require_manager(page_user.user)
    row = accounts.AccountRow(username=username, role=role, scope=scope, name=name, email=email)

    def create() -> str | None:
        try:
            with session_scope(engine) as session:
                manager = session.get(User, page_user.user.id)
                return accounts.create_account(session, settings, row, auth_now(request), manager=manager)[1]
        except IntegrityError:  # the same user name made at the same moment elsewhere (the import, another officer)
            name = accounts.normalise_username(row.username)
            raise refusal("username_taken", f"มีชื่อผู้ใช้ {name} อยู่แล้ว", f"The user name {name} is taken") from None

    try:
        key = await asyncio.to_thread(create)
    except Refusal as problem:
        return await asyncio.to_thread(_users_page, request, page_user, engine, form=row.__dict__, problem=problem)
    response = _done("created", q=accounts.normalise_username(username))
    response.background = BackgroundTask(deliver_links, engine, settings, [key] if key else [])
    return response


@router.post("/users/{user_id}/disable", operation_id="disable_user_page", include_in_schema=False)
async def disable_user_page(request: Request, user_id: UserId, page_user: PageUserDep, engine: EngineDep,
                            csrf_token: CsrfForm = None) -> Response:
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    require_manager(page_user.user)

    def disable() -> None:
        with session_scope(engine) as session:
            target = accounts.managed_user(session, page_user.user, user_id)
            if target.id == page_user.user.id:
                raise refusal("disable_self", "ปิดบัญชีของตนเองไม่ได้ ให้ผู้ดูแลระบบหรือเจ้าหน้าที่เขตอื่นปิดให้",
                              "You cannot disable your own account; ask another officer or an administrator", 409)
            disable_user(session, target.id)  # its token and every web session stop at once

    await asyncio.to_thread(disable)
    return _done("disabled")


@router.post("/users/{user_id}/link", operation_id="resend_password_link_page", include_in_schema=False)
async def resend_password_link_page(request: Request, user_id: UserId, page_user: PageUserDep, engine: EngineDep,
                                    settings: SettingsDep, csrf_token: CsrfForm = None) -> Response:
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)
    require_manager(page_user.user)

    def resend() -> str | None:
        with session_scope(engine) as session:
            target = accounts.managed_user(session, page_user.user, user_id)
            if not target.active:
                raise refusal("user_disabled", "บัญชีนี้ถูกปิดแล้ว ส่งลิงก์ตั้งรหัสผ่านไม่ได้",
                              "This account is disabled; no password link is sent", 409)
            purpose = "welcome" if target.password_hash is None else "reset"
            return accounts.issue_link(session, settings, target, purpose, auth_now(request))

    key = await asyncio.to_thread(resend)
    if key is None:
        return _done("no_email")
    response = _done("link_sent")
    response.background = BackgroundTask(deliver_links, engine, settings, [key])
    return response


# --- the users CSV: the console's import, uploaded -----------------------------------------------------------

def _import_page(request: Request, page_user: PageUser, *, report: accounts.ImportReport | None = None,
                 problem: Refusal | None = None, filename: str = "") -> Response:
    return page(request, "users/import.html", user=page_user.user, csrf_token=page_user.csrf_token, report=report,
                problem=problem, filename=filename, max_rows=IMPORT_MAX_ROWS,
                max_mb=IMPORT_MAX_BYTES // (1024 * 1024), status=problem.status if problem else 200)


@router.get("/users/import", operation_id="users_import_page", include_in_schema=False)
def users_import_page(request: Request, page_user: PageUserDep) -> Response:
    remember(request, page_user)
    require_manager(page_user.user)
    return _import_page(request, page_user)


@router.post("/users/import", operation_id="users_import_upload", include_in_schema=False)
async def users_import_upload(request: Request, page_user: PageUserDep, engine: EngineDep, settings: SettingsDep,
                              file: Annotated[UploadFile, File()], csrf_token: CsrfForm = None) -> Response:
    remember(request, page_user)
    require_page_csrf(page_user, csrf_token)  # before anything else: another site's form learns nothing
    require_manager(page_user.user)
    data = await file.read(IMPORT_MAX_BYTES + 1)
    filename = (file.filename or "")[:200]

    def run() -> accounts.ImportReport:
        if len(data) > IMPORT_MAX_BYTES:
            raise too_large(IMPORT_MAX_BYTES)
        rows = accounts.read_import_file(data)
        if len(rows) > IMPORT_MAX_ROWS:
            raise refusal("file_too_many_rows", f"ไฟล์มีเกิน {IMPORT_MAX_ROWS:,} แถว กรุณาแบ่งไฟล์ "
                          "(หรือให้ผู้ดูแลระบบใช้คำสั่ง dmcflow users import)",
                          f"The file has more than {IMPORT_MAX_ROWS:,} rows; split it (or an administrator runs "
                          "dmcflow users import)", 413)
        try:
            with session_scope(engine) as session:
                manager = session.get(User, page_user.user.id)  # the scope each row is checked against
                return accounts.import_accounts(session, settings, rows, auth_now(request), manager=manager)
        except IntegrityError:  # a user name of the file made at the same moment elsewhere: nothing was saved
            raise refusal("import_conflict", "มีการเพิ่มผู้ใช้ชื่อเดียวกันพร้อมกันจากที่อื่น ไม่ได้บันทึกสิ่งใด กรุณาส่งไฟล์อีกครั้ง",
                          "A user name of the file was added elsewhere at the same moment; nothing was saved: "
                          "send the file again", 409) from None

    try:
        report = await asyncio.to_thread(run)
    except Refusal as problem:
        return _import_page(request, page_user, problem=problem, filename=filename)
    response = _import_page(request, page_user, report=report, filename=filename)
    response.background = BackgroundTask(deliver_links, engine, settings, report.mails)  # as the console does
    return response
