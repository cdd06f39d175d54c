"""Issue 15, finding 9 (round operations): any district officer read every area's round operations.

Now an area's operation (its deadline extension) is shown to that area's district and the admins only, and
a round-wide operation (the start, a whole-round extension) to the admins only; to anyone else it does not
exist (404, as every record outside a caller's scope).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from tests.stack import AREA, OTHER_AREA, add_round, running_stack, unique_round
from workflows.ids import fanout_id


async def test_an_areas_operation_is_its_districts_and_the_round_is_the_admins(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        add_round(stack.engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
        await stack.start_round(rid)
        extended = {}
        for who, area in (("district", AREA), ("other_district", OTHER_AREA)):
            r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth(who),
                                      json={"cutoff_at": (now + timedelta(hours=9)).isoformat(), "reason": "น้ำท่วม",
                                            "area": area})
            assert r.status_code == 200 and r.json()["operation_id"], r.text
            extended[area] = r.json()["operation_id"]

        async def status(who: str, operation: str) -> int:
            r = await stack.http.get(f"/rounds/{rid}/operations/{quote(operation)}", headers=stack.auth(who))
            if r.status_code != 200:
                assert r.json()["code"] == "not_found" and r.json()["message_th"], r.text
            return r.status_code

        start = fanout_id(rid, "start")
        assert [await status(w, extended[AREA]) for w in ("admin", "district", "other_district")] == [200, 200, 404]
        assert [await status(w, extended[OTHER_AREA]) for w in ("admin", "district", "other_district")] == [200, 404, 200]
        assert [await status(w, start) for w in ("admin", "district", "other_district")] == [200, 404, 404]
        # another round's operation under this round's path is not this round's
        assert await status("admin", start.replace(rid, rid[:-1])) == 404
