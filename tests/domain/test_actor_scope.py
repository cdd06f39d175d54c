"""The actor's scope: admins anywhere, a district in its own area, staff and directors in their own school."""

from __future__ import annotations

import pytest

from domain.actor_scope import check_actor_scope
from domain.refusals import Refusal
from domain.school_round import Actor

SCHOOL, OTHER_SCHOOL = "1044449001", "1040000009"
AREA, OTHER_AREA = "สพม.มหาสารคาม", "สพป.ขอนแก่น เขต 1"
ALL = ("admin", "district", "staff", "director")


def refused(actor: Actor, roles=ALL, school_code=SCHOOL, area=AREA) -> Refusal:
    with pytest.raises(Refusal) as exc:
        check_actor_scope(actor, school_code=school_code, area=area, roles=roles)
    return exc.value


@pytest.mark.parametrize("actor", [
    Actor(user_id="a", role="admin"),
    Actor(user_id="d", role="district", area=AREA),
    Actor(user_id="s", role="staff", school_code=SCHOOL, area=AREA),
    Actor(user_id="p", role="director", school_code=SCHOOL),
])
def test_each_role_acts_in_its_own_scope(actor):
    check_actor_scope(actor, school_code=SCHOOL, area=AREA, roles=ALL)


@pytest.mark.parametrize("actor", [
    Actor(user_id="d", role="district", area=OTHER_AREA),
    Actor(user_id="s", role="staff", school_code=OTHER_SCHOOL, area=AREA),  # same area, another school
    Actor(user_id="p", role="director", school_code=OTHER_SCHOOL),
    Actor(user_id="d", role="district", school_code=SCHOOL),  # a district's scope is its area, not a school
    Actor(user_id="s", role="staff", area=AREA),  # a staff member's is its school, not the area
    # an actor as payloads carried it before the scope existed: no scope, so nowhere
    Actor(user_id="d", role="district"),
    Actor(user_id="s", role="staff"),
])
def test_an_actor_from_elsewhere_is_out_of_scope(actor):
    r = refused(actor)
    assert (r.code, r.status) == ("out_of_scope", 403)
    assert r.message_th.startswith("ผู้ใช้นี้ไม่มีสิทธิ์") and "another school or area" in r.message_en


def test_the_role_is_checked_before_the_scope():
    r = refused(Actor(user_id="p", role="director", school_code=SCHOOL), roles=("staff",))
    assert (r.code, r.status) == ("forbidden", 403) and "staff" in r.message_en


def test_an_admin_acts_anywhere_but_only_where_the_role_is_allowed():
    check_actor_scope(Actor(user_id="a", role="admin"), school_code=OTHER_SCHOOL, area=OTHER_AREA, roles=("admin",))
    assert refused(Actor(user_id="a", role="admin"), roles=("district",)).code == "forbidden"


def test_a_target_without_a_scope_matches_nobody_but_admins():
    assert refused(Actor(user_id="d", role="district", area=AREA), area=None).code == "out_of_scope"
    assert refused(Actor(user_id="s", role="staff", school_code=SCHOOL), school_code=None).code == "out_of_scope"


def test_an_unknown_role_is_refused():
    assert refused(Actor(user_id="x", role="auditor", area=AREA), roles=("auditor",)).code == "out_of_scope"
