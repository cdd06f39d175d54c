"""Dependencies: the database session, the current user from the bearer token, Temporal, and scope checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.sign_in import user_of_token
from db.engine import session_scope
from db.models import School, User
from dmcflow.settings import Settings
from domain.refusals import forbidden, not_found, unauthenticated
from domain.school_round import Actor

bearer = HTTPBearer(auto_error=False, description="a user's token, from `dmcflow users add`")


# `async`: FastAPI runs a plain `def` dependency in its thread pool, a hop per request for a dictionary read.
async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


async def get_now(request: Request) -> datetime:
    return await request.app.state.clock()


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


def current_user(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
                 engine: Annotated[Engine, Depends(get_engine)]) -> User:
    if creds is None or not creds.credentials:
        raise unauthenticated()
    # a valid token always gets in; a wrong one is counted (429 once over the limit): api/sign_in.py
    return user_of_token(request, engine, creds.credentials)


SessionDep = Annotated[Session, Depends(get_session)]
UserDep = Annotated[User, Depends(current_user)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
NowDep = Annotated[datetime, Depends(get_now)]


def actor_of(user: User) -> Actor:
    """The actor a workflow hears: the user's id, role and scope (school, area), which every workflow checks
    against its own school or area (domain/actor_scope.py)."""
    return Actor(user_id=user.id, role=user.role, school_code=user.school_code, area=user.area)


def require_role(user: User, *roles: str, what_th: str, what_en: str) -> None:
    if user.role not in roles:
        raise forbidden(what_th, what_en)


def school_in_scope(session: Session, user: User, school_code: str) -> School:
    """The school, if this user may see it: its own staff and director, its area's officers, admins."""
    school = session.get(School, school_code)
    if school is None:
        raise not_found("โรงเรียน", "school", school_code)
    allowed = (user.role == "admin"
               or (user.role == "district" and user.area == school.area)
               or (user.role in ("staff", "director") and user.school_code == school_code))
    if not allowed:
        raise forbidden("เข้าถึงโรงเรียนนี้", "act on this school")
    return school
