"""The dmcflow worker: runs every workflow and activity on the task queue.

    python worker.py            # uses DMCFLOW_* settings (see dmcflow/settings.py)
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.duplicate_case import DuplicateCaseActivities
from activities.intake import IntakeActivities
from activities.round_fanout import RoundFanoutActivities
from activities.school_round import SchoolRoundActivities
from db.engine import make_engine
from dmcflow.settings import Settings, get_settings
from dmcflow.temporal_client import connect
from workflows.area_cutoff import AreaCutoffWorkflow
from workflows.duplicate_case import DuplicateCaseWorkflow
from workflows.id_correction import IdCorrectionWorkflow
from workflows.inbound_message import InboundMessageWorkflow
from workflows.round_fanout import RoundFanoutWorkflow
from workflows.school_round import SchoolRoundWorkflow

WORKFLOWS = [SchoolRoundWorkflow, RoundFanoutWorkflow, AreaCutoffWorkflow, DuplicateCaseWorkflow,
             InboundMessageWorkflow, IdCorrectionWorkflow]


def build_worker(client: Client, settings: Settings, *, engine=None, task_queue: str | None = None,
                 executor: ThreadPoolExecutor | None = None) -> Worker:
    engine = engine or make_engine(settings.database_url)
    school = SchoolRoundActivities(engine, settings)
    fanout = RoundFanoutActivities(engine, settings, client)
    duplicates = DuplicateCaseActivities(engine, settings)
    intake = IntakeActivities(engine, settings)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=WORKFLOWS,
        activities=[school.load_gate, school.record_transition, school.apply_roster_batch,
                    school.send_school_reminder, fanout.fanout_page, fanout.area_cutoff_step,
                    duplicates.record_duplicate_declarations, duplicates.resolve_duplicate,
                    duplicates.notify_duplicate, intake.process_inbound, intake.apply_id_correction,
                    intake.settle_id_correction, intake.notify_id_correction, intake.deliver_mail],
        activity_executor=executor or ThreadPoolExecutor(max_workers=64),
        max_concurrent_activities=64,
        max_cached_workflows=5000,
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = get_settings()
    client = await connect(settings)
    await build_worker(client, settings).run()


if __name__ == "__main__":
    asyncio.run(main())
