from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import EngineDep, TemporalDep

router = APIRouter(tags=["health"])


@router.get("/health", operation_id="health", summary="Liveness, with Temporal and database reachability")
async def health(engine: EngineDep, client: TemporalDep) -> JSONResponse:
    def ping_db() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    checks = {}
    try:
        await asyncio.wait_for(asyncio.to_thread(ping_db), 5)
        checks["database"] = "ok"
    except Exception as exc:  # reported, not raised: health answers even when a part is down
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await asyncio.wait_for(client.service_client.check_health(), 5)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"error: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)
