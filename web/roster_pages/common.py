"""What the roster pages share: their paths and the limits of a path's parts, the school-and-round scope, and
the field of a form each rule's refusal is shown beside."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Form, Path
from sqlmodel import Session

from api.deps import school_in_scope
from api.viewer import PageUser
from db.models import Round, School
from domain.refusals import not_found

ROSTER = "/school/{school_code}/rounds/{round_id}/roster"
STUDENT = ROSTER + "/students/{pk}"
Text = Annotated[str, Form(max_length=500)]
StudentPk = Annotated[int, Path(ge=1, le=2**31 - 1)]
ROUND_LIMIT = Annotated[str, Path(max_length=40)]
SCHOOL_LIMIT = Annotated[str, Path(max_length=10)]

# the field of a form that a rule's refusal is about (the refusal is shown beside it); others go by the button
FIELD_OF = {
    "national_id_format": "student", "national_id_first_digit": "student", "national_id_check_digit": "student",
    "gcode_format": "student", "gcode_required": "student", "already_on_roster": "student",
    "active_elsewhere": "student",
    "entry_year_not_be": "entry_academic_year", "r5_applicant": "entry_academic_year",
    "r6_no_final_exam": "sat_final_exam_here", "grade_format": "grade", "grade_up_needs_reason": "grade",
    "left_on_in_future": "left_on", "r7_sat_final_exam": "left_on", "status_note_required": "note",
}

# who the user is or what exists, not a field: the error page says it (the form may not even be shown to this role)
NOT_A_FORM_MATTER = {"forbidden", "not_found", "unauthenticated"}


def optional_date(value: str) -> date | None:
    return date.fromisoformat(value) if value.strip() else None


def school_and_round(session: Session, page_user: PageUser, school_code: str, round_id: str) -> tuple[School, Round]:
    school = school_in_scope(session, page_user.user, school_code)
    found = session.get(Round, round_id)
    if found is None:
        raise not_found("รอบ", "round", round_id)
    return school, found
