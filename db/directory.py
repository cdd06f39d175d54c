"""Areas, schools, users and rounds: the records the API and the console command both maintain."""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import Session, delete, select

from db.models import Area, Round, School, SchoolEmail, User, utcnow
from domain.refusals import invalid, refusal
from domain.rounds import RoundSpec

ROLES = ("staff", "director", "district", "admin")


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
                school_code: str | None = None, area: str | None = None, token: str | None = None) -> tuple[User, str]:
    """Answers the user and its bearer token; only the token's hash is stored."""
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
    user = User(id=f"u-{secrets.token_hex(4)}", display_name=display_name, email=email, role=role,
                school_code=school_code if role in ("staff", "director") else None,
                area=area if role != "admin" else None, token_hash=hash_token(token))
    session.add(user)
    return user, token


def user_by_token(session: Session, token: str) -> User | None:
    return session.exec(select(User).where(User.token_hash == hash_token(token), User.active)).first()


def create_round(session: Session, spec: RoundSpec) -> Round:
    if session.get(Round, spec.id) is not None:
        raise refusal("round_exists", f"มีรอบ {spec.id} อยู่แล้ว", f"Round {spec.id} already exists")
    row = Round(id=spec.id, academic_year=spec.academic_year, opens_at=spec.opens_at,
                confirm_from=spec.confirm_from, cutoff_at=spec.cutoff_at, policy=spec.policy.model_dump(mode="json"))
    session.add(row)
    return row


def round_spec(row: Round) -> RoundSpec:
    return RoundSpec(id=row.id, academic_year=row.academic_year, opens_at=row.opens_at,
                     confirm_from=row.confirm_from, cutoff_at=row.cutoff_at, policy=row.policy)
