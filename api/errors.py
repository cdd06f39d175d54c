"""Every refusal is a 4xx with `{code, message_th, message_en}`; nothing escapes as a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from domain.refusals import Refusal

log = logging.getLogger(__name__)

ERROR_RESPONSES = {
    s: {"description": d, "content": {"application/json": {"example": {
        "code": c, "message_th": "…", "message_en": "…"}}}}
    for s, d, c in [(401, "Not authenticated", "unauthenticated"), (403, "Not allowed", "forbidden"),
                    (404, "Not found", "not_found"), (409, "Refused by a rule of the round", "round_closed"),
                    (422, "Invalid input", "invalid_request"),
                    (503, "Temporal or the database is unavailable for the moment", "temporal_unavailable")]
}


def _fields(errors) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


OUTAGE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
          RPCStatusCode.CANCELLED}
RETRY_AFTER_S = 10


def _outage(code: str, what_th: str, what_en: str) -> JSONResponse:
    return JSONResponse({
        "code": code,
        "message_th": f"{what_th}ไม่พร้อมให้บริการชั่วคราว รายการนี้อาจยังไม่ถูกบันทึก "
                      f"กรุณาตรวจสอบสถานะแล้วลองใหม่ในอีกสักครู่",
        "message_en": f"{what_en} is unavailable for the moment; this request may not have been recorded: "
                      f"check the state and try again shortly",
    }, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


def install(app: FastAPI) -> None:
    @app.exception_handler(Refusal)
    async def _refusal(_: Request, exc: Refusal):
        return JSONResponse(exc.as_dict(), status_code=exc.status, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        fields = _fields(exc.errors())
        where = ", ".join(".".join(str(p) for p in f["loc"]) for f in fields[:5])
        return JSONResponse({
            "code": "invalid_request",
            "message_th": f"ข้อมูลที่ส่งมาไม่ถูกต้อง: {where}",
            "message_en": f"The request is invalid: {where}",
            "fields": fields,
        }, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        if isinstance(getattr(exc, "refusal", None), Refusal):  # e.g. api/body_limit.py's 413
            return JSONResponse(exc.refusal.as_dict(), status_code=exc.status_code)
        th = {404: "ไม่พบหน้าที่ขอ", 405: "ไม่รองรับวิธีการเรียกนี้"}.get(exc.status_code, "คำขอไม่ถูกต้อง")
        return JSONResponse({"code": f"http_{exc.status_code}", "message_th": th, "message_en": str(exc.detail)},
                            status_code=exc.status_code)

    # An outage is not the caller's fault and not a bug: 503 with the reason, and a hint to look before retrying
    # (a decision whose answer was lost may have been taken; asking again then answers "already confirmed").
    async def _temporal(request: Request, exc: RPCError | RPCTimeoutOrCancelledError):
        if isinstance(exc, RPCError) and exc.status not in OUTAGE:
            return await _unexpected(request, exc)
        return _outage("temporal_unavailable", "ระบบจัดการขั้นตอนงาน (Temporal)", "The workflow service (Temporal)")

    app.add_exception_handler(RPCError, _temporal)
    app.add_exception_handler(RPCTimeoutOrCancelledError, _temporal)  # the client gave up: the same outage

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError):
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else "OperationalError")
        return _outage("database_unavailable", "ฐานข้อมูล", "The database")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"code": "internal_error", "message_th": "ระบบขัดข้อง กรุณาลองใหม่อีกครั้ง",
                             "message_en": "Internal error; please try again"}, status_code=500)
