"""Every refusal is a 4xx with `{code, message_th, message_en}`; nothing escapes as a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.refusals import Refusal

log = logging.getLogger(__name__)

ERROR_RESPONSES = {
    s: {"description": d, "content": {"application/json": {"example": {
        "code": c, "message_th": "…", "message_en": "…"}}}}
    for s, d, c in [(401, "Not authenticated", "unauthenticated"), (403, "Not allowed", "forbidden"),
                    (404, "Not found", "not_found"), (409, "Refused by a rule of the round", "round_closed"),
                    (422, "Invalid input", "invalid_request")]
}


def _fields(errors) -> list[dict]:
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"code": "internal_error", "message_th": "ระบบขัดข้อง กรุณาลองใหม่อีกครั้ง",
                             "message_en": "Internal error; please try again"}, status_code=500)
