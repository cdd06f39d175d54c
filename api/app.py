"""The FastAPI application: one engine and one Temporal client, made at start-up and shared."""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from temporalio.client import Client
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import errors
from api.auth_limits import FailedAuthLimiter
from api.body_limit import BodyLimit
from api.deps import UserDep
from api.sign_in import AuthClock
from api.routers import dropouts, duplicates, existence, health, id_corrections, roster, rounds, school_rounds, schools
from api.routers import students
from api.routers import dashboard, dashboard_pages, reports
from db.engine import make_engine
from db.models import utcnow
from dmcflow.settings import Settings, get_settings
from dmcflow.temporal_client import connect
from web.app import install as install_workbench


async def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


def freeze_start_up() -> None:
    """What start-up made (modules, models, routes: a few hundred thousand objects) lives as long as the process;
    frozen, the collector's full passes no longer walk it, and a request that triggers one pays a few ms instead
    of the 300-600 ms measured under load (bench/web_pages.py: a page's p95 was such a pass)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               temporal: Client | None = None, clock: Callable[[], Awaitable[datetime]] = wall_clock,
               auth_clock: AuthClock = utcnow) -> FastAPI:
    """`clock` answers "now" for stages shown at read time; tests hand it Temporal's skipped clock.
    `auth_clock` is the wall clock that tokens and web sessions expire by (tests inject their own)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "temporal", None) is None:
            app.state.engine = make_engine(settings.database_url)
            app.state.temporal = await connect(settings)
        freeze_start_up()
        yield
        if engine is None:
            app.state.engine.dispose()

    app = FastAPI(title="dmcflow", version="0.1.0", lifespan=lifespan,
                  description="DMC round 3 (end of academic year) for OBEC schools. Every refusal answers "
                              "`{code, message_th, message_en}`.")
    # Given parts (tests, the local stack) are usable at once, without waiting for the lifespan.
    app.state.settings, app.state.engine, app.state.temporal, app.state.clock = settings, engine, temporal, clock
    app.state.auth_clock = auth_clock
    app.state.auth_limiter = FailedAuthLimiter(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    errors.install(app)
    app.add_middleware(BodyLimit, max_upload_bytes=settings.max_upload_bytes, max_json_bytes=settings.max_json_bytes)
    # the client's address (for the failed sign-in limiter) from X-Forwarded-For only when the peer is one of
    # DMCFLOW_TRUSTED_PROXIES (none by default); uvicorn's own handling is off where the API is started
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    for module in (health, schools, rounds, roster, students, existence, school_rounds, duplicates, id_corrections,
                   dropouts, dashboard, reports, dashboard_pages):
        app.include_router(module.router)
    install_workbench(app)  # the people's pages (web/): `/` is each user's home

    @app.get("/me", operation_id="whoami", tags=["users"], summary="The user behind the token")
    def whoami(user: UserDep) -> dict:
        return {"id": user.id, "name": user.display_name, "role": user.role, "school_code": user.school_code,
                "area": user.area}

    return app


def app_from_env() -> FastAPI:  # uvicorn api.app:app_from_env --factory
    return create_app()
