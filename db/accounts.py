"""Accounts for people: user names, passwords (Argon2id through pwdlib), one-time password links, the users
import and who manages whom.

A person's account is a `users` row with a `username`; its password is set only through a one-time link mailed
to the REGISTERED email (a new account, "forgot password", a resend by an administrator or district officer).
The link's token is random (32 bytes), only its SHA-256 is stored, it works once and until
`DMCFLOW_PASSWORD_LINK_HOURS`, and a newer link of the same user supersedes the older ones. The mail goes through
the outbox, written in the same transaction as the link.

Bearer tokens stay for machines: an account made here has a random token that is never shown (`users
rotate-token` issues a usable one).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlmodel import Session, col, or_, select, update

from db.directory import ROLES, create_user, revoke_web_sessions
from db.models import Area, PasswordLink, School, User
from dmcflow.settings import Settings
from domain.refusals import Refusal, forbidden, invalid, not_found, refusal
from mailer import outbox
from mailer.render import render

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")
PASSWORD_MAX = 256  # longer input is refused before hashing (Argon2 over megabytes is a cheap way to burn CPU)
# Argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane) rather than argon2-cffi's 64 MiB x 4 lanes: the API's few
# cores verify the morning's logins of thousands of clerks; a hash with other parameters is upgraded at its next login
HASHER = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1),))
# verified when the user name is unknown or has no password yet, so the answer takes as long either way
_ABSENT_HASH = HASHER.hash(secrets.token_urlsafe(16))
ROLE_TH = {"staff": "เจ้าหน้าที่โรงเรียน", "director": "ผู้อำนวยการโรงเรียน", "district": "เจ้าหน้าที่เขตพื้นที่",
           "admin": "ผู้ดูแลระบบ"}


def normalise_username(value: str) -> str:
    return value.strip().lower()


def check_username(value: str) -> str:
    name = normalise_username(value)
    if not USERNAME.match(name):
        raise invalid("username_invalid", "ชื่อผู้ใช้ต้องยาว 3-64 ตัว ใช้ได้เฉพาะ a-z 0-9 . _ @ -",
                      "A user name is 3-64 characters of a-z, 0-9, '.', '_', '@', '-'")
    return name


def check_email(value: str) -> str:
    try:  # syntax only: no DNS lookup at import time
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise invalid("email_invalid", "อีเมลไม่ถูกต้อง", "The email address is not valid") from None


# --- passwords ---------------------------------------------------------------------------------------

def verify_login(session: Session, username: str, password: str, now: datetime) -> User | None:
    """The active user with this user name and password, or None. Upgrades the stored hash when pwdlib's
    parameters have moved on."""
    name = normalise_username(username)
    user = session.exec(select(User).where(User.username == name, User.active)).first() if name else None
    if user is None or user.password_hash is None:
        HASHER.verify(password, _ABSENT_HASH)
        return None
    valid, updated = HASHER.verify_and_update(password, user.password_hash)
    if not valid:
        return None
    if updated is not None:
        user.password_hash = updated
        session.add(user)
    return user


def password_problem(user: User, password: str, repeated: str, settings: Settings) -> tuple[str, Refusal] | None:
    """What is wrong with a new password, and the form field it belongs beside; None when it may be set."""
    if len(password) < settings.password_min_length:
        n = settings.password_min_length
        return "password", invalid("password_too_short", f"รหัสผ่านต้องยาวอย่างน้อย {n} ตัวอักษร",
                                   f"The password must be at least {n} characters long")
    if len(password) > PASSWORD_MAX:
        return "password", invalid("password_too_long", f"รหัสผ่านยาวได้ไม่เกิน {PASSWORD_MAX} ตัวอักษร",
                                   f"The password may be at most {PASSWORD_MAX} characters long")
    folded = password.strip().casefold()
    if user.username and (user.username in folded or folded in user.username):
        return "password", invalid("password_like_username", "รหัสผ่านต้องไม่ใช่หรือไม่มีชื่อผู้ใช้อยู่ในนั้น",
                                   "The password must not be, or contain, the user name")
    if password != repeated:
        return "password_repeat", invalid("password_mismatch", "รหัสผ่านทั้งสองช่องไม่ตรงกัน",
                                          "The two passwords differ")
    return None


def set_password(session: Session, user: User, password: str, now: datetime) -> None:
    """Sets the password; every open web session of the user ends (whoever had it is out)."""
    user.password_hash, user.password_changed_at = HASHER.hash(password), now
    session.add(user)
    revoke_web_sessions(session, user.id, now)


# --- one-time links ----------------------------------------------------------------------------------

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_invalid() -> Refusal:
    return refusal("password_link_invalid", "ลิงก์ตั้งรหัสผ่านนี้ใช้ไม่ได้ (ใช้ไปแล้ว หรือมีลิงก์ใหม่กว่า) กรุณาขอลิงก์ใหม่",
                   "This password link is not valid (already used, or a newer one was sent); ask for a new link", 410)


def link_expired() -> Refusal:
    return refusal("password_link_expired", "ลิงก์ตั้งรหัสผ่านนี้หมดอายุแล้ว กรุณาขอลิงก์ใหม่",
                   "This password link has expired; ask for a new link", 410)


def issue_link(session: Session, settings: Settings, user: User, purpose: str, now: datetime) -> str | None:
    """A new link for the user, mailed (through the outbox) to the registered email; older unused links stop
    working. Answers the outbox key to deliver, or None when the user has no registered email."""
    if not user.email:
        return None
    session.exec(update(PasswordLink).where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
                 .values(used_at=now))
    token = secrets.token_urlsafe(32)
    hours = settings.password_link_hours
    link = PasswordLink(token_hash=_hash(token), user_id=user.id, purpose=purpose, created_at=now,
                        expires_at=now + timedelta(hours=hours))
    session.add(link)
    subject, body = render("password_link.txt.j2", user=user, purpose=purpose, hours=hours,
                           url=f"{settings.public_url}/password/set?token={token}", expires_at=link.expires_at,
                           role_th=ROLE_TH[user.role])
    key = f"password-link/{link.token_hash[:32]}"
    outbox.enqueue(session, settings, key=key, kind="password_link", to=[user.email], subject=subject, body=body)
    return key


def last_link_at(session: Session, user_id: str) -> datetime | None:
    return session.exec(select(PasswordLink.created_at).where(PasswordLink.user_id == user_id)
                        .order_by(col(PasswordLink.created_at).desc())).first()


def redeem_check(session: Session, token: str, now: datetime) -> tuple[PasswordLink, User]:
    """The link and its (active) user while it may still set a password; refuses otherwise (410)."""
    link = session.get(PasswordLink, _hash(token)) if token else None
    if link is None or link.used_at is not None:
        raise link_invalid()
    if now >= link.expires_at:
        raise link_expired()
    user = session.get(User, link.user_id)
    if user is None or not user.active:
        raise link_invalid()
    return link, user


def users_for_forgotten(session: Session, identifier: str) -> list[User]:
    """The active accounts a "forgot password" request names: by user name, or every account registered with
    that email. Only these accounts' registered addresses ever get a link."""
    value = identifier.strip().lower()
    if not value:
        return []
    return list(session.exec(select(User).where(User.active, User.username.is_not(None),
                                                or_(User.username == value, User.email == value))))


# --- scope: who manages whom ---------------------------------------------------------------------------

MANAGERS = ("admin", "district")


def manages(manager: User, user: User) -> bool:
    """An administrator manages everyone; a district officer the staff and directors of its area's schools and
    the district officers of its area (never an administrator)."""
    if manager.role == "admin":
        return True
    return manager.role == "district" and user.role != "admin" and user.area is not None and user.area == manager.area


def managed_users(session: Session, manager: User, q: str = "", offset: int = 0, limit: int = 100) -> list[User]:
    query = select(User).where(User.username.is_not(None))
    if manager.role != "admin":
        query = query.where(User.area == manager.area, User.role != "admin")
    if q.strip():
        needle = f"%{q.strip().lower()}%"
        query = query.where(or_(col(User.username).like(needle), col(User.email).like(needle),
                                col(User.display_name).like(f"%{q.strip()}%"), User.school_code == q.strip()))
    return list(session.exec(query.order_by(User.role, User.area, User.school_code, User.username)
                             .offset(offset).limit(limit)))


def managed_user(session: Session, manager: User, user_id: str) -> User:
    """The user, if this manager manages it; outside the scope it is not admitted to exist (404)."""
    user = session.get(User, user_id)
    if user is None or user.username is None or not manages(manager, user):
        raise not_found("ผู้ใช้", "user", user_id)
    return user


# --- creating and importing accounts ---------------------------------------------------------------------

@dataclass(frozen=True)
class AccountRow:
    username: str
    role: str
    scope: str  # a school code (staff, director), an area (district), empty (admin)
    name: str
    email: str


def scope_fields(session: Session, role: str, scope: str) -> tuple[str | None, str | None]:
    """(school_code, area) of a role and its scope, or the refusal."""
    if role not in ROLES:
        raise invalid("role", f"บทบาทต้องเป็นหนึ่งใน {', '.join(ROLES)}", f"Role must be one of {', '.join(ROLES)}")
    scope = scope.strip()
    if role in ("staff", "director"):
        school = session.get(School, scope) if scope else None
        if school is None:
            raise invalid("user_school", "ผู้ใช้ระดับโรงเรียนต้องระบุรหัสโรงเรียนที่มีอยู่",
                          "A staff or director user needs an existing school code")
        return school.code, school.area
    if role == "district":
        if not scope or session.get(Area, scope) is None:
            raise invalid("user_area", "เจ้าหน้าที่เขตต้องระบุเขตพื้นที่ที่มีอยู่", "A district user needs an existing area")
        return None, scope
    return None, None


def checked_row(row: AccountRow) -> AccountRow:
    name = row.name.strip()
    if not name or len(name) > 200:
        raise invalid("name_invalid", "ต้องระบุชื่อ (ไม่เกิน 200 ตัวอักษร)", "A name is required (at most 200 characters)")
    return AccountRow(username=check_username(row.username), role=row.role.strip().lower(), scope=row.scope.strip(),
                      name=name, email=check_email(row.email))


def create_account(session: Session, settings: Settings, row: AccountRow, now: datetime,
                   manager: User | None = None) -> tuple[User, str | None]:
    """A new account (no password yet) and the outbox key of its welcome link. `manager`: the page's user, who
    may only create accounts within its own scope."""
    row = checked_row(row)
    school_code, area = scope_fields(session, row.role, row.scope)
    if session.exec(select(User.id).where(User.username == row.username)).first() is not None:
        raise refusal("username_taken", f"มีชื่อผู้ใช้ {row.username} อยู่แล้ว", f"The user name {row.username} is taken")
    if manager is not None and not manages(manager, User(role=row.role, area=area)):
        raise forbidden("สร้างผู้ใช้นอกเขตพื้นที่ของตน", "create a user outside your own area")
    user, _unused_token = create_user(session, role=row.role, display_name=row.name, email=row.email,
                                      school_code=school_code, area=area)
    user.username = row.username
    session.add(user)
    session.flush()
    return user, issue_link(session, settings, user, "welcome", now)


IMPORT_COLUMNS = {"username": ("username", "user_name", "ชื่อผู้ใช้"), "role": ("role", "บทบาท"),
                  "scope": ("school_or_area", "school code or area", "scope", "school", "area", "school_code",
                            "รหัสโรงเรียนหรือเขต"),
                  "name": ("name", "display_name", "ชื่อ"), "email": ("email", "อีเมล")}


@dataclass(frozen=True)
class ImportLine:
    """What became of one row of the file: created, updated (`fields`), unchanged or refused (`why`)."""
    line: int
    username: str
    outcome: str
    fields: tuple[str, ...] = ()
    why: Refusal | None = None


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[tuple[str, list[str]]] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[tuple[int, str, Refusal]] = field(default_factory=list)  # (line, username, why)
    mails: list[str] = field(default_factory=list)  # outbox keys to deliver
    lines: list[ImportLine] = field(default_factory=list)  # every row, in the file's order (the page's table)


def read_import_file(data: bytes) -> list[tuple[int, AccountRow]]:
    """The rows of a users CSV (UTF-8, with or without Excel's BOM; a header row names the columns)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise invalid("file_encoding", "ไฟล์ต้องเป็น CSV แบบ UTF-8", "The file must be UTF-8 CSV") from None
    if "\x00" in text:  # no name or address holds it, and PostgreSQL cannot store it
        raise invalid("file_format", "ไฟล์มีอักขระ NUL (รหัส 0) ซึ่งไม่ใช่ไฟล์ CSV", "The file holds a NUL character: "
                      "it is not a CSV file")
    try:
        return _import_rows(csv.reader(io.StringIO(text)))
    except csv.Error as exc:  # e.g. a cell over the csv module's field limit: the file's fault, said in words
        raise invalid("file_format", f"อ่านไฟล์ CSV ไม่ได้ ({exc})", f"The CSV file cannot be read ({exc})") from None


def _import_rows(reader) -> list[tuple[int, AccountRow]]:
    header = [h.strip().lower() for h in next(reader, [])]
    where: dict[str, int] = {}
    for key, names in IMPORT_COLUMNS.items():
        found = [i for i, h in enumerate(header) if h in names]
        if not found:
            raise invalid("file_columns", f"ไม่พบคอลัมน์ {key} (ต้องมี username, role, school_or_area, name, email)",
                          f"Column {key} is missing (needed: username, role, school_or_area, name, email)")
        where[key] = found[0]
    rows = []
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        rows.append((line, AccountRow(**{key: cells[i] for key, i in where.items()})))
    return rows


def import_accounts(session: Session, settings: Settings, rows: list[tuple[int, AccountRow]],
                    now: datetime, manager: User | None = None) -> ImportReport:
    """Creates the new accounts (each mailed a welcome link) and brings existing ones (by user name) to the file's
    name, email, role and scope. Running the same file again changes nothing. A bad row is refused and reported;
    the others are applied. `manager`: the page's user, whose scope (`manages`) every row must stay within, both
    the account as it is and as the row would make it; None: the console, which may do anything."""
    report = ImportReport()
    seen: set[str] = set()
    for line, raw in rows:
        try:
            row = checked_row(raw)
            if row.username in seen:
                raise invalid("username_repeated", f"ชื่อผู้ใช้ {row.username} ซ้ำในไฟล์",
                              f"The user name {row.username} appears twice in the file")
            seen.add(row.username)
            school_code, area = scope_fields(session, row.role, row.scope)
            user = session.exec(select(User).where(User.username == row.username)).first()
            if user is None:
                _, key = create_account(session, settings, row, now, manager=manager)
                report.created.append(row.username)
                report.lines.append(ImportLine(line, row.username, "created"))
                if key:
                    report.mails.append(key)
                continue
            if manager is not None and not manages(manager, user):  # another area's, or an administrator
                raise refusal("username_taken", f"มีชื่อผู้ใช้ {row.username} อยู่แล้ว (เป็นบัญชีนอกขอบเขตของท่าน)",
                              f"The user name {row.username} is taken (by an account outside your scope)")
            if manager is not None and not manages(manager, User(role=row.role, area=area)):
                raise forbidden("ย้ายผู้ใช้ไปนอกเขตพื้นที่ของตน", "move a user outside your own area")
            wanted = {"display_name": row.name, "email": row.email, "role": row.role, "school_code": school_code,
                      "area": area}
            changed = [k for k, v in wanted.items() if getattr(user, k) != v]
            if not changed:
                report.unchanged.append(row.username)
                report.lines.append(ImportLine(line, row.username, "unchanged"))
                continue
            for k in changed:
                setattr(user, k, wanted[k])
            session.add(user)
            if {"role", "school_code", "area"} & set(changed):
                revoke_web_sessions(session, user.id, now)  # the sessions' pages were opened with the old rights
            if "email" in changed:  # links mailed to the old address stop working
                session.exec(update(PasswordLink).where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
                             .values(used_at=now))
            report.updated.append((row.username, changed))
            report.lines.append(ImportLine(line, row.username, "updated", tuple(changed)))
        except Refusal as why:
            name = normalise_username(raw.username)
            report.refused.append((line, name, why))
            report.lines.append(ImportLine(line, name, "refused", why=why))
    return report
