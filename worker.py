"""The dmcflow worker: runs every workflow and activity on the task queue.

    python worker.py            # uses DMCFLOW_* settings (see dmcflow/settings.py)
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.area_round import AreaRoundActivities
from activities.dropout import DropoutActivities
from activities.duplicate_case import DuplicateCaseActivities
from activities.intake import IntakeActivities
from activities.round_fanout import RoundFanoutActivities
from activities.school_round import SchoolRoundActivities, SchoolSignalActivities
from db.engine import make_engine
from dmcflow.payload_codec import PayloadKeysError
from dmcflow.sandbox import workflow_runner
from dmcflow.settings import Settings, get_settings
from dmcflow.temporal_client import connect
from workflows.area_cutoff import AreaCutoffWorkflow
from workflows.area_round import AreaRoundWorkflow
from workflows.dropout_consultation import DropoutConsultationWorkflow
from workflows.duplicate_case import DuplicateCaseWorkflow
from workflows.id_correction import IdCorrectionWorkflow
from workflows.inbound_intake import InboundIntakeWorkflow
from workflows.inbound_message import InboundMessageWorkflow
from workflows.round_fanout import RoundFanoutWorkflow
from workflows.school_round import SchoolRoundWorkflow

SCHOOL_WORKFLOWS = [SchoolRoundWorkflow, DuplicateCaseWorkflow, InboundMessageWorkflow, IdCorrectionWorkflow,
                    DropoutConsultationWorkflow, InboundIntakeWorkflow]
OPS_WORKFLOWS = [RoundFanoutWorkflow, AreaCutoffWorkflow, AreaRoundWorkflow]
WORKFLOWS = SCHOOL_WORKFLOWS + OPS_WORKFLOWS

class Workers:
    """The schools' worker and the round operations' worker, started and stopped together."""

    def __init__(self, *workers: Worker) -> None:
        self.workers = workers

    async def __aenter__(self) -> "Workers":
        for w in self.workers:
            await w.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        for w in reversed(self.workers):
            await w.__aexit__(*exc)

    async def run(self) -> None:
        await asyncio.gather(*(w.run() for w in self.workers))


def build_worker(client: Client, settings: Settings, *, engine=None, executor: ThreadPoolExecutor | None = None) -> Workers:
    engine = engine or make_engine(settings.database_url)
    school = SchoolRoundActivities(engine, settings)
    fanout = RoundFanoutActivities(engine, settings, client)
    duplicates = DuplicateCaseActivities(engine, settings)
    intake = IntakeActivities(engine, settings, client)
    dropout = DropoutActivities(engine, settings)
    area = AreaRoundActivities(engine, settings, client)
    tell = SchoolSignalActivities(engine, client)
    activities = [school.load_gate, school.record_transition, school.apply_roster_batch, school.send_school_reminder,
                  fanout.fanout_page, fanout.area_cutoff_step, duplicates.record_duplicate_declarations,
                  duplicates.resolve_duplicate, duplicates.notify_duplicate, duplicates.open_duplicate_case,
                  duplicates.duplicate_cutoffs, duplicates.hand_duplicate_to_district,
                  intake.process_inbound, intake.process_inbound_batch, intake.deliver_mails,
                  intake.expire_id_corrections,
                  intake.apply_id_correction, intake.settle_id_correction, intake.notify_id_correction,
                  intake.id_correction_cutoff,
                  intake.deliver_mail, dropout.open_dropout, dropout.dropout_calendar, dropout.post_dropout_message,
                  dropout.settle_dropout, dropout.notify_dropout, dropout.hold_dropout_past_cutoff,
                  area.area_schedule, area.area_reminders, area.area_late, area.area_deliver,
                  school.record_school_change, tell.tell_school]
    executor = executor or ThreadPoolExecutor(max_workers=64)
    return Workers(
        # Few workflow tasks at once: on a small machine a thousand new schools' first tasks at a time
        # would each take seconds and time out; in turn, each is quick.
        Worker(client, task_queue=settings.task_queue, workflows=SCHOOL_WORKFLOWS, activities=activities,
               activity_executor=executor, max_concurrent_activities=64, max_concurrent_workflow_tasks=16,
               max_cached_workflows=settings.workflow_cache_size, workflow_runner=workflow_runner()),
        Worker(client, task_queue=settings.ops_task_queue, workflows=OPS_WORKFLOWS, activities=activities,
               activity_executor=executor, max_concurrent_activities=16, max_concurrent_workflow_tasks=4,
               workflow_runner=workflow_runner()),
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    client = await connect(settings)
    await build_worker(client, settings).run()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except PayloadKeysError as exc:  # no key, no worker: it could neither read nor seal a payload
        raise SystemExit(f"dmcflow worker: {exc}") from None
