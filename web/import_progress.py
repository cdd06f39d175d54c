"""A roster import's progress while it runs (issue 17): the answer to the upload itself streams it.

Once the file is read (its refusals of the whole file are answered as before: the page with the reason
beside the field, with its status), an import still running after `STREAM_AFTER_SECONDS` answers with
the import page in two parts: everything up to the progress list at once, then one line per step
(the file read, each school's rows applied) as the import reaches it, then the report and the rest
of the page. Any browser renders HTML as it arrives, so the progress shows without script. Why not a
job polled by a second request or the SSE feed: the work, its progress and its report stay in one
request, so nothing is kept between requests (no job table, no state in one API process that another
replica behind the proxy would not know); a proxy is asked not to buffer (X-Accel-Buffering: no).
A browser that leaves does not stop the import: it runs to its end, as the API's call would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from markupsafe import escape
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from api.errors import OUTAGE
from domain.refusals import Refusal, refusal
from web.i18n import translator
from web.rendering import PAGE_HEADERS, page_language

log = logging.getLogger(__name__)
MARKER = "<!--import-progress-->"  # where the streamed lines go, in roster/import.html
STREAM_AFTER_SECONDS = 0.5  # a quick import answers its report at once, without a progress list


def _parts(response: Response) -> tuple[str, str]:
    head, _, tail = bytes(response.body).decode().partition(MARKER)
    return head, tail


def _problem(exc: BaseException) -> Refusal:
    if isinstance(exc, Refusal):
        return exc
    if isinstance(exc, RPCTimeoutOrCancelledError) or (isinstance(exc, RPCError) and exc.status in OUTAGE):
        return refusal("temporal_unavailable", "ระบบจัดการขั้นตอนงานไม่พร้อมให้บริการชั่วคราว บางโรงเรียนอาจยังไม่ถูกบันทึก "
                       "กรุณานำเข้าไฟล์เดิมอีกครั้ง (แถวที่บันทึกแล้วจะไม่เปลี่ยน)", "The workflow service is unavailable for "
                       "the moment; some schools may not be saved: import the same file again (rows already saved stay "
                       "as they are)", 503)
    return refusal("import_failed", "การนำเข้าหยุดกลางคันโดยไม่คาดคิด กรุณานำเข้าไฟล์เดิมอีกครั้ง (แถวที่บันทึกแล้วจะไม่เปลี่ยน)",
                   "The import stopped unexpectedly: import the same file again (rows already saved stay as they are)",
                   500)


async def answer(request: Request, run: Callable[[Callable[..., None]], Awaitable],
                 shown: Callable[..., Response], keep: Callable[[Refusal], bool]) -> Response:
    """`run(progress)` imports; `shown(report=, problem=, streaming=)` renders the import page (a blocking read);
    a refusal for which `keep(refusal)` is false is raised (the error page says it), as the page did before."""
    events: asyncio.Queue = asyncio.Queue()
    work = asyncio.create_task(run(lambda kind, **n: events.put_nowait((kind, n))))
    work.add_done_callback(lambda done: done.cancelled() or done.exception())  # a browser gone: still retrieved
    read = asyncio.create_task(events.get())
    await asyncio.wait({work, read}, return_when=asyncio.FIRST_COMPLETED)
    if not work.done():
        await asyncio.wait({work}, timeout=STREAM_AFTER_SECONDS)
    if work.done():
        read.cancel()
        try:
            report = work.result()
        except Refusal as problem:
            if not keep(problem):
                raise
            return await asyncio.to_thread(shown, problem=problem)
        return await asyncio.to_thread(shown, report=report)

    t = translator(page_language(request))

    def line(kind: str, n: dict) -> str:
        text = t("import_read", **n) if kind == "read" else t("import_school", **n)
        return f'<p class="step" data-step="{escape(kind)}">{escape(text)}</p>\n'

    head, _ = _parts(await asyncio.to_thread(shown, streaming=True))

    async def stream():
        yield head
        yield line(*read.result())
        while True:
            step = asyncio.ensure_future(events.get())
            await asyncio.wait({step, work}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                break
            yield line(*step.result())
        while not events.empty():
            yield line(*events.get_nowait())
        report, problem = None, None
        try:
            report = work.result()
        except Exception as exc:  # the page is already under way: its reason goes where the report would
            if not isinstance(exc, Refusal):
                log.exception("roster import failed after its progress began")
            problem = _problem(exc)
        if report is not None:
            yield f'<p class="step" data-step="done">{escape(t("import_done"))}</p>\n'
        yield _parts(await asyncio.to_thread(shown, report=report, problem=problem, streaming=True))[1]

    headers = {**PAGE_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/html; charset=utf-8", headers=headers)
