"""InboundMessageWorkflow: one received email, from stored to replied (exactly one reply).

Started as soon as the raw bytes are stored; its id is the content hash, so a second delivery of the
same bytes is the same workflow. Each accepted request continues as its own IdCorrectionWorkflow.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows import activity_calls as calls
    from workflows.id_correction import IdCorrectionWorkflow
    from workflows.ids import id_correction_id


@workflow.defn
class InboundMessageWorkflow:
    @workflow.run
    async def run(self, sha256: str) -> str:
        result = await calls.process_inbound(sha256)
        children = []
        for request in result.requests:
            try:
                children.append(await workflow.start_child_workflow(
                    IdCorrectionWorkflow.run, request, id=id_correction_id(request.ref),
                    parent_close_policy=ParentClosePolicy.ABANDON))
            except WorkflowAlreadyStartedError:
                pass
        if result.reply_key:
            await calls.deliver_mail(result.reply_key)
        # The message's story ends when each of its requests is settled (decided or expired).
        await asyncio.gather(*children)
        return result.outcome
