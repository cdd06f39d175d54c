from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select

from api.deps import SessionDep, UserDep, require_role
from api.errors import ERROR_RESPONSES
from api.schemas import SchoolIn, SchoolOut
from db.directory import upsert_school as upsert
from db.models import SchoolEmail
from domain.ids import normalise_name, normalise_school_code

router = APIRouter(prefix="/schools", tags=["schools"], responses=ERROR_RESPONSES)


@router.put("/{code}", operation_id="upsert_school", response_model=SchoolOut,
            summary="Create or update a school with its registered email addresses (admin)")
def upsert_school(code: str, body: SchoolIn, user: UserDep, session: SessionDep) -> SchoolOut:
    require_role(user, "admin", what_th="แก้ไขข้อมูลโรงเรียน", what_en="edit schools")
    return save_school(session, code, body)


def save_school(session, code: str, body: SchoolIn) -> SchoolOut:
    """The API's and the workbench's one path: the code and names normalised, the school and its emails written."""
    code = normalise_school_code(code)
    school = upsert(session, code, normalise_name(body.name), normalise_name(body.area), [str(e) for e in body.emails])
    session.flush()
    emails = list(session.exec(select(SchoolEmail.email).where(SchoolEmail.school_code == code)))
    return SchoolOut(code=school.code, name=school.name, area=school.area, emails=sorted(emails))
