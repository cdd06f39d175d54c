"""`dmcflow codec-server`: the Temporal UI's and CLI's remote codec, so that operators still read histories whose
payloads are encrypted (dmcflow/payload_codec.py).

Temporal's codec protocol: `POST /decode` and `POST /encode` (also under `/{namespace}/…`, the CLI's templating),
with a proto3-JSON `Payloads` body, `{"payloads": [{"metadata": {k: base64}, "data": base64}]}`, answered in kind.
Decrypted payloads are readable, so only an admin's bearer token is answered (the CLI's `--codec-auth "Bearer …"`,
or the UI's "pass access token"), and CORS admits only the configured Temporal UI origin.

Decoding here accepts plaintext: what an old history or a forger sent is shown as it was sent. A payload that
fails authentication shows as refused (its metadata says why), never as an error.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from sqlalchemy.engine import Engine
from temporalio.api.common.v1 import Payloads

from api import errors
from db.directory import user_by_token
from db.engine import make_engine, session_scope
from dmcflow.payload_codec import AesGcmPayloadCodec, KeyRing
from dmcflow.settings import Settings
from domain.refusals import forbidden, invalid, refusal, unauthenticated

MAX_BODY_BYTES = 4 * 1024 * 1024  # a history page's payloads; the UI sends them a few at a time


def create_codec_app(settings: Settings, ring: KeyRing, *, engine: Engine | None = None) -> FastAPI:
    engine = engine or make_engine(settings.database_url)
    codec = AesGcmPayloadCodec(ring, accept_plaintext=True)
    app = FastAPI(title="dmcflow codec server", docs_url=None, redoc_url=None, openapi_url=None)
    errors.install(app)
    if settings.temporal_ui_origin:
        app.add_middleware(CORSMiddleware, allow_origins=[settings.temporal_ui_origin], allow_methods=["POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Namespace"], allow_credentials=False)

    def admin(authorization: Annotated[str | None, Header()] = None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated()
        with session_scope(engine) as s:
            user = user_by_token(s, token.strip())
            if user is None:
                raise unauthenticated()
            if user.role != "admin":
                raise forbidden("ถอดรหัสข้อมูลในประวัติของ Temporal", "decode Temporal payloads")
            return user.id

    async def payloads_of(request: Request) -> Payloads:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise refusal("payload_too_large", "ข้อมูลที่ส่งมีขนาดใหญ่เกินกำหนด", "The request body is too large", 413)
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise TypeError("not an object")
            return ParseDict(data, Payloads(), ignore_unknown_fields=True)
        except (ValueError, ParseError, TypeError, RecursionError):
            raise invalid("invalid_payloads", "ต้องส่ง JSON รูปแบบ {\"payloads\": [...]} ของ Temporal",
                          "The body must be Temporal's JSON {\"payloads\": [...]}") from None

    def answer(payloads) -> JSONResponse:
        return JSONResponse(MessageToDict(Payloads(payloads=payloads)) or {"payloads": []})

    async def decode(request: Request, _user: str = Depends(admin)):  # noqa: B008
        return answer(await codec.decode((await payloads_of(request)).payloads))

    async def encode(request: Request, _user: str = Depends(admin)):  # noqa: B008
        return answer(await codec.encode((await payloads_of(request)).payloads))

    for prefix in ("", "/{namespace}"):
        app.add_api_route(f"{prefix}/decode", decode, methods=["POST"])
        app.add_api_route(f"{prefix}/encode", encode, methods=["POST"])
    return app


def run(settings: Settings) -> None:
    import uvicorn

    from dmcflow.temporal_client import key_ring

    app = create_codec_app(settings, key_ring(settings))
    uvicorn.run(app, host=settings.codec_server_host, port=settings.codec_server_port, log_level="info")
