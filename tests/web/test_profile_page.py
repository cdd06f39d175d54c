"""The school's basic data (R1) as a page (web/profile_page.py): the first item of the staff's list.

Over plain HTTP: the value a rule refuses is shown beside its field and nothing is saved; the saved data ticks the
item off the staff's home; the page is the school's own staff's, and its form needs the session's CSRF token.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

from api.viewer import COOKIE, CSRF_FIELD
from db.engine import session_scope
from db.models import School
from tests.stack import SCHOOL, running_stack
from tests.web.test_pages import web_session
from tests.web.test_round_work_pages import seeded_round

GOOD = {"phone": "043-777-123", "address": "99 ถ.นครสวรรค์ ต.ตลาด อ.เมือง จ.มหาสารคาม", "director_name": "นายสมศักดิ์ ตั้งใจ"}


async def test_the_staff_fill_in_the_schools_basic_data_and_a_refused_value_is_shown_beside_its_field(
        time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await seeded_round(stack, now + timedelta(hours=1), now + timedelta(hours=8))
        url = f"/school/{SCHOOL}/rounds/{quote(rid)}/profile"
        session_id, csrf = web_session(stack, "staff")
        stack.http.cookies.set(COOKIE, session_id)
        home = await stack.http.get(f"/?round={rid}")
        assert f'href="{url}"' in home.text and 'data-task="profile" data-done="no"' in home.text
        r = await stack.http.get(url)
        assert r.status_code == 200 and 'id="profile-phone"' in r.text

        r = await stack.http.post(url, data={CSRF_FIELD: csrf, **GOOD, "phone": "0" * 41})  # over the rule's 40
        assert r.status_code == 422 and 'id="profile-phone-problem"' in r.text, r.text[:300]
        assert re.search(r'id="profile-phone"[^>]*aria-describedby="profile-phone-problem" aria-invalid="true"', r.text)
        assert GOOD["address"] in r.text  # what was typed is kept
        r = await stack.http.post(url, data=GOOD)  # no token: nothing happens
        assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
        with session_scope(engine) as s:
            assert s.get(School, SCHOOL).phone in (None, "")

        r = await stack.http.post(url, data={CSRF_FIELD: csrf, **GOOD})
        assert r.status_code == 303 and r.headers["location"] == url + "?saved=1", r.text[:300]
        r = await stack.http.get(r.headers["location"])
        assert 'id="saved"' in r.text and GOOD["director_name"] in r.text
        with session_scope(engine) as s:
            school = s.get(School, SCHOOL)
            assert (school.phone, school.address, school.director_name) == tuple(GOOD.values())
        home = await stack.http.get(f"/?round={rid}")
        assert 'data-task="profile" data-done="yes"' in home.text

        for who in ("director", "other_staff", "district"):  # the school's own staff only
            session_id, csrf = web_session(stack, who)
            stack.http.cookies.set(COOKIE, session_id)
            r = await stack.http.get(url)
            assert r.status_code == 403 and 'data-code="forbidden"' in r.text, who
            r = await stack.http.post(url, data={CSRF_FIELD: csrf, **GOOD, "phone": "1"})
            assert r.status_code == 403, who
        with session_scope(engine) as s:
            assert s.get(School, SCHOOL).phone == GOOD["phone"]
