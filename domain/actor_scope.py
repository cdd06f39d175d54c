"""Whose school or area an actor may act on: the role alone is not enough.

The API builds the actor from the authenticated user (`api.deps.actor_of`), with the user's school and
area. Every workflow checks that scope against its own school or area, so an update captured from one
school (a staff `confirm`, a director `certify`, a district's extension) and replayed to another school's
workflow is refused, not obeyed.
"""

from __future__ import annotations

from domain.refusals import Refusal, refusal
from domain.school_round import Actor

SCHOOL_ROLES = ("staff", "director")


def role_refused(roles: tuple[str, ...]) -> Refusal:
    return refusal("forbidden", "บทบาทนี้ไม่มีสิทธิ์ทำรายการนี้", f"Only {' or '.join(roles)} may do this", 403)


def out_of_scope() -> Refusal:
    return refusal("out_of_scope", "ผู้ใช้นี้ไม่มีสิทธิ์ทำรายการของโรงเรียนหรือเขตพื้นที่อื่น",
                   "This user may not act for another school or area", 403)


def in_scope(actor: Actor, *, school_code: str | None, area: str | None) -> bool:
    """Admins anywhere; a district officer in its own area; staff and directors in their own school.
    A scope the actor lacks (None) or the target lacks never matches."""
    if actor.role == "admin":
        return True
    if actor.role == "district":
        return actor.area is not None and actor.area == area
    if actor.role in SCHOOL_ROLES:
        return actor.school_code is not None and actor.school_code == school_code
    return False


def check_actor_scope(actor: Actor, *, school_code: str | None, area: str | None, roles: tuple[str, ...]) -> None:
    """Refuse an actor whose role is not one of `roles` (`forbidden`), or who acts outside its own school or
    area (`out_of_scope`): `school_code` and `area` are those of the school (or case) acted on."""
    if actor.role not in roles:
        raise role_refused(roles)
    if not in_scope(actor, school_code=school_code, area=area):
        raise out_of_scope()
