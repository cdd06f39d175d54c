"""A stack's API served over real HTTP (uvicorn on a free loopback port), for the live feed and the browser."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn

from api.app import create_app
from tests.conftest import free_port

ARTIFACTS = Path(os.environ.get("DMCFLOW_TEST_ARTIFACTS") or Path(__file__).parent.parent / "artifacts")


@asynccontextmanager
async def served(stack) -> AsyncIterator[str]:
    """The stack's API (same database, Temporal and clock) under uvicorn, in this event loop; answers its base URL."""
    app = create_app(stack.settings, engine=stack.engine, temporal=stack.client, clock=stack.clock)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           access_log=False, timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
