"""Areas, schools, users and rounds: the records the API and the console command both maintain."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, delete, select, update

from db.models import Area, Round, School, SchoolEmail, User, WebSession, utcnow
from domain.refusals import invalid, refusal
from domain.rounds import RoundSpec

ROLES = ("staff", "director", "district", "admin")
TOKEN_LIFETIME_DAYS = 180  # the default of dmcflow/settings.py token_lifetime_days


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upsert_school(session: Session, code: str, name: str, area: str, emails: list[str]) -> School:
    if session.get(Area, area) is None:
        session.add(Area(name=area))
        session.flush()
    school = session.get(School, code) or School(code=code, name=name, area=area)
    school.name, school.area, school.updated_at = name, area, utcnow()
    session.add(school)
    session.flush()
    wanted = sorted({e.strip().lower() for e in emails})
    session.exec(delete(SchoolEmail).where(SchoolEmail.school_code == code))
    for email in wanted:
        session.add(SchoolEmail(school_code=code, email=email))
    return school


def create_user(session: Session, *, role: str, display_name: str, email: str | None = None,
                school_code: str | None = None, area: str | None = None, token: str | None = None,
                lifetime_days: int = TOKEN_LIFETIME_DAYS) -> tuple[User, str]:
    """Answers the user and its bearer token; only the token's hash is stored. The token expires after
    `lifetime_days`."""
    if role not in ROLES:
        raise invalid("role", f"บทบาทต้องเป็นหนึ่งใน {', '.join(ROLES)}", f"Role must be one of {', '.join(ROLES)}")
    if role in ("staff", "director") and (not school_code or session.get(School, school_code) is None):
        raise invalid("user_school", "ผู้ใช้ระดับโรงเรียนต้องระบุรหัสโรงเรียนที่มีอยู่",
                      "A staff or director user needs an existing school code")
    if role == "district":
        if not area or session.get(Area, area) is None:
            raise invalid("user_area", "เจ้าหน้าที่เขตต้องระบุเขตพื้นที่ที่มีอยู่", "A district user needs an existing area")
    if role in ("staff", "director"):
        area = session.get(School, school_code).area
    token = token or secrets.token_urlsafe(24)
    # 48 random bits: an import of a whole country's 60,000 accounts must not draw the same id twice (32 bits would)
    user = User(id=f"u-{secrets.token_hex(6)}", display_name=display_name, email=email, role=role,
                school_code=school_code if role in ("staff", "director") else None,
                area=area if role != "admin" else None, token_hash=hash_token(token),
                token_expires_at=utcnow() + timedelta(days=lifetime_days))
    session.add(user)
    return user, token


def token_owner(session: Session, token: str) -> User | None:
    """The active user this token was issued to, expired or not (the API tells an expired token apart)."""
    return session.exec(select(User).where(User.token_hash == hash_token(token), User.active)).first()


def user_by_token(session: Session, token: str, now: datetime | None = None) -> User | None:
    """The active user whose token this is, while the token has not expired."""
    user = token_owner(session, token)
    return user if user is not None and (now or utcnow()) < user.token_expires_at else None


def revoke_web_sessions(session: Session, user_id: str, now: datetime | None = None) -> int:
    """Ends every open web session of the user (a disabled user, a rotated token); answers how many."""
    result = session.exec(update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
                          .values(revoked_at=now or utcnow()))
    return result.rowcount or 0


def user_by_id(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise refusal("not_found", f"ไม่พบผู้ใช้ {user_id}", f"No user {user_id}", 404)
    return user


def disable_user(session: Session, user_id: str) -> User:
    """The user's token and web sessions stop working at the next request (each request reads `active`)."""
    user = user_by_id(session, user_id)
    user.active = False
    session.add(user)
    revoke_web_sessions(session, user_id)
    return user


def rotate_token(session: Session, user_id: str, lifetime_days: int = TOKEN_LIFETIME_DAYS) -> tuple[User, str]:
    """A new token for the user (the old one stops working at once, and so do its web sessions)."""
    user = user_by_id(session, user_id)
    token = secrets.token_urlsafe(24)
    user.token_hash, user.token_expires_at = hash_token(token), utcnow() + timedelta(days=lifetime_days)
    session.add(user)
    revoke_web_sessions(session, user_id)
    return user, token


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.role, User.area, User.school_code, User.id)))


def create_round(session: Session, spec: RoundSpec) -> Round:
    if session.get(Round, spec.id) is not None:
        raise refusal("round_exists", f"มีรอบ {spec.id} อยู่แล้ว", f"Round {spec.id} already exists")
    row = Round(id=spec.id, academic_year=spec.academic_year, opens_at=spec.opens_at,
                confirm_from=spec.confirm_from, cutoff_at=spec.cutoff_at, final_exam_on=spec.final_exam_on,
                policy=spec.policy.model_dump(mode="json"))
    session.add(row)
    return row


def round_spec(row: Round) -> RoundSpec:
    return RoundSpec(id=row.id, academic_year=row.academic_year, opens_at=row.opens_at,
                     confirm_from=row.confirm_from, cutoff_at=row.cutoff_at, final_exam_on=row.final_exam_on,
                     policy=row.policy)
