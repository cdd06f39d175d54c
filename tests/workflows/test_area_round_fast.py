"""AreaRoundWorkflow (issue 18) with stub activities under time skipping (tests/workflows/stub_worker.py): the
area's reminders at each reminder instant, the late step at the cutoff (after its settling seconds), an extension
that makes it wait for that school, and the escalation delivered. The stubs answer from a small projection of the
area's schools (`Projection`), as activities/area_round.py answers from the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.messages import AreaInstant, AreaRoundInput, AreaSchedule, DeadlineMoved
from domain.rounds import RoundPolicy
from tests.timing import bangkok_on_day
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.area_round import SETTLE, AreaRoundWorkflow
from workflows.ids import area_round_id

ROUND, AREA = "r-fast", "สพม.ทดสอบ"
A, B = "1044449001", "1044449002"
POLICY = RoundPolicy(late_grace=timedelta(days=2))  # reminders 4 h 30 min and 1 h before the cutoff: 12.00, 15.30


@dataclass
class Projection:
    """The area's schools as the projection rows hold them: each one's cutoff, who certified, who is late."""
    opens_at: datetime
    cutoffs: dict[str, datetime]
    certified: set[str] = field(default_factory=set)
    late: set[str] = field(default_factory=set)

    def plan(self, since: datetime | None) -> AreaSchedule:
        waiting = {c: at for c, at in self.cutoffs.items() if c not in self.certified | self.late}
        if not set(self.cutoffs) - self.certified:
            return AreaSchedule()
        return AreaSchedule(
            next_reminder=min((i for c in waiting for i in self.instants(c) if since is None or i > since), default=None),
            next_cutoff=min(waiting.values(), default=None),
            close_at=max(at for c, at in self.cutoffs.items() if c not in self.certified) + POLICY.late_grace)

    def instants(self, code: str) -> list[datetime]:
        return [i for i in (self.cutoffs[code] - off for off in POLICY.reminders_before_cutoff) if i >= self.opens_at]

    def schedule(self, step: dict) -> AreaSchedule:
        step = AreaInstant.model_validate(step)
        return self.plan(step.since)

    def reminders(self, step: dict) -> AreaSchedule:
        step = AreaInstant.model_validate(step)
        due = sorted({c for c, at in self.cutoffs.items() if c not in self.certified | self.late and at > step.at
                      for i in self.instants(c) if (step.since is None or i > step.since) and i <= step.at})
        return self.plan(step.at).model_copy(update={"reminded": len(due), "mail": [f"reminder/{c}" for c in due]})

    def late_step(self, step: dict) -> AreaSchedule:
        step = AreaInstant.model_validate(step)
        moved = sorted(c for c, at in self.cutoffs.items() if c not in self.certified | self.late and at <= step.at)
        self.late |= set(moved)
        mail = [f"escalation/{step.at.isoformat()}/{','.join(moved)}"] if moved else []
        return self.plan(step.at).model_copy(update={"late": len(moved), "mail": mail})


def activities(log: Calls, area: Projection):
    return [stub(log, calls.AREA_SCHEDULE, area.schedule), stub(log, calls.AREA_REMINDERS, area.reminders),
            stub(log, calls.AREA_LATE, area.late_step), stub(log, calls.AREA_DELIVER, len)]


def instants(log: Calls, name: str) -> list[datetime]:
    return [AreaInstant.model_validate(args[0]).at for args in log.of(name)]


def delivered(log: Calls) -> list[str]:
    return [key for args in log.of(calls.AREA_DELIVER) for key in args[0]]


def close_to(got: list[datetime], want: list[datetime]) -> bool:
    """Each step at its instant: a timer fires at it, never before, and within the test server's own clock step."""
    return len(got) == len(want) and all(timedelta(0) <= g - w < timedelta(seconds=5)
                                         for g, w in zip(got, want, strict=True))


async def start(env, queue: str):
    return await env.client.start_workflow(AreaRoundWorkflow.run, AreaRoundInput(round_id=ROUND, area=AREA),
                                           id=area_round_id(ROUND, AREA), task_queue=queue)


async def skip_to(env, instant: datetime) -> None:
    await env.sleep(instant - await env.get_current_time())


async def test_reminders_at_each_instant_to_the_uncertified_then_late_and_the_escalation_at_the_cutoff(time_env):
    log = Calls()
    now = await time_env.get_current_time()
    cutoff = bangkok_on_day(now, 16, 30)
    noon, half_past_three = bangkok_on_day(now, 12, 0), bangkok_on_day(now, 15, 30)
    area = Projection(opens_at=now, cutoffs={A: cutoff, B: cutoff})
    async with stub_worker(time_env, [AreaRoundWorkflow], activities(log, area)) as queue:
        handle = await start(time_env, queue)
        await skip_to(time_env, noon + timedelta(minutes=1))
        area.certified.add(B)  # the director of B certified after noon's reminder: B hears nothing more
        counts = await handle.result()  # time skips through 15.30, the cutoff and the late grace
    assert close_to(instants(log, calls.AREA_REMINDERS), [noon, half_past_three])
    assert close_to(instants(log, calls.AREA_LATE), [cutoff + SETTLE])
    assert counts == {"reminded": 3, "late": 1}
    escalation = f"escalation/{instants(log, calls.AREA_LATE)[0].isoformat()}/{A}"
    assert delivered(log) == [f"reminder/{A}", f"reminder/{B}", f"reminder/{A}", escalation]


async def test_an_extension_makes_the_late_step_wait_for_that_school(time_env):
    log = Calls()
    now = await time_env.get_current_time()
    cutoff = bangkok_on_day(now, 16, 30)
    extended = cutoff + timedelta(days=1)
    area = Projection(opens_at=now, cutoffs={A: cutoff, B: cutoff})
    async with stub_worker(time_env, [AreaRoundWorkflow], activities(log, area)) as queue:
        handle = await start(time_env, queue)
        await skip_to(time_env, cutoff - timedelta(hours=2))
        area.cutoffs[B] = extended  # B's extension, projected; then B tells its area (SchoolRoundWorkflow._tell_area)
        await handle.signal(AreaRoundWorkflow.deadline_moved, DeadlineMoved(school_code=B, cutoff_at=extended))
        await skip_to(time_env, cutoff + timedelta(hours=1))
        assert area.late == {A}  # A alone at 16.30: B has a day more
        counts = await handle.result()
    assert close_to(instants(log, calls.AREA_LATE), [cutoff + SETTLE, extended + SETTLE])
    assert counts["late"] == 2
    # B's reminders follow its new cutoff (15.30 on the next day), none at the old one's
    b_reminded = [at for at in instants(log, calls.AREA_REMINDERS) if at > cutoff]
    assert close_to(b_reminded, [extended - timedelta(hours=4, minutes=30), extended - timedelta(hours=1)])
    assert [k for k in delivered(log) if k.startswith("escalation/")] == [
        f"escalation/{at.isoformat()}/{code}" for at, code in zip(instants(log, calls.AREA_LATE), [A, B], strict=True)]
