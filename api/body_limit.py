"""Request bodies over the limit are refused with 413 before they are read (or as soon as they pass it).

Without this, a multipart upload of any size is spooled to disk in full before the route sees it and
refuses it. Uploads (multipart/form-data) may be as large as the biggest file a route accepts plus the
form's overhead; every other body (JSON) is small.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.refusals import Refusal, refusal

MULTIPART_OVERHEAD = 64 * 1024


def too_large(limit: int) -> Refusal:
    size = f"{limit / (1024 * 1024):.0f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return refusal("request_too_large", f"ข้อมูลหรือไฟล์ที่ส่งมาใหญ่เกิน {size}",
                   f"The request body is larger than {size}", 413)


class BodyTooLarge(HTTPException):
    """Raised from `receive` while the route is reading: an HTTPException so that FastAPI passes it on
    instead of turning it into a 400 "error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, "Content Too Large")
        self.refusal = too_large(limit)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_upload_bytes: int, max_json_bytes: int) -> None:
        self.app, self.max_upload, self.max_json = app, max_upload_bytes, max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").lower().startswith("multipart/")
        limit = self.max_upload + MULTIPART_OVERHEAD if multipart else self.max_json
        try:
            declared = int(headers.get("content-length", ""))
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            response = JSONResponse(too_large(limit).as_dict(), status_code=413, headers={"Connection": "close"})
            return await response(scope, receive, send)
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)
