"""Request bodies over the limit are refused with 413 before they are read (or as soon as they pass it),
and text with a NUL character is refused with 422 before it reaches the database.

Without the first, a multipart upload of any size is spooled to disk in full before the route sees it
and refuses it. Uploads (multipart/form-data) may be as large as the biggest file a route accepts plus
the form's overhead; every other body (JSON) is small.

NUL (U+0000) is never part of a name, an ID or a reason, and PostgreSQL cannot store it in text: it
was a 500 there. It is refused in the path, the query string and JSON bodies (raw or as the \\u0000
escape). Files in a multipart body may hold NUL bytes; their text fields are checked where they are read.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.refusals import Refusal, refusal

MULTIPART_OVERHEAD = 64 * 1024


def nul_character() -> Refusal:
    return refusal("nul_character", "ข้อมูลที่ส่งมามีอักขระ NUL (รหัส 0) ซึ่งใช้ไม่ได้",
                   "The request contains a NUL character (code 0), which is not allowed", 422)


_URL_NUL = (b"\x00", b"%00")  # a path, a query string, a urlencoded form
_JSON_NUL = (b"\x00", b"\\u0000")


def _has_nul(data: bytes, patterns: tuple[bytes, ...] = _URL_NUL) -> bool:
    lowered = data.lower()
    return any(p in lowered for p in patterns)


class NulInBody(HTTPException):
    def __init__(self) -> None:
        super().__init__(422, "NUL character")
        self.refusal = nul_character()


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
        content_type = headers.get("content-type", "").lower()
        multipart = content_type.startswith("multipart/")
        body_nul = _URL_NUL if content_type.startswith("application/x-www-form-urlencoded") else _JSON_NUL
        limit = self.max_upload + MULTIPART_OVERHEAD if multipart else self.max_json
        try:
            declared = int(headers.get("content-length", ""))
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            response = JSONResponse(too_large(limit).as_dict(), status_code=413, headers={"Connection": "close"})
            return await response(scope, receive, send)
        if _has_nul(scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")) \
                or _has_nul(scope.get("query_string", b"")):
            return await JSONResponse(nul_character().as_dict(), status_code=422)(scope, receive, send)
        received = 0
        tail = b""  # the end of the previous chunk: an escape may be cut in two

        async def limited() -> dict:
            nonlocal received, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit)
                if not multipart and _has_nul(tail + chunk, body_nul):
                    raise NulInBody()
                tail = chunk[-8:]
            return message

        await self.app(scope, limited, send)
