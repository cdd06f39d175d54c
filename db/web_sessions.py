"""Web sessions: what a browser holds after logging in, kept server-side (`web_sessions`).

The browser's cookie carries a random id (32 bytes); the table keeps only its SHA-256, the user, the
session's CSRF secret and its instants. A session is valid while it is not revoked, its absolute expiry
has not passed, it was used within the idle time, and its user is still active. Any login method (the
dashboard's token form today, a password form later) opens the same sessions with `open_session`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, delete, select

from db.models import User, WebSession

TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often (not one write per request)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(session: Session, user: User, now: datetime, policy: SessionPolicy) -> tuple[WebSession, str]:
    """A new session for the user; answers the row and the id for the cookie (never stored)."""
    # the user's ended sessions are of no use any more: the table holds live ones and recent revocations
    session.exec(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    row = WebSession(id_hash=hash_session_id(session_id), user_id=user.id, csrf_secret=secrets.token_urlsafe(32),
                     created_at=now, last_seen_at=now, expires_at=now + policy.absolute)
    session.add(row)
    return row, session_id


def known_session(session: Session, session_id: str) -> WebSession | None:
    """The session row of this id, valid or not (None: an id that never was a session)."""
    return session.get(WebSession, hash_session_id(session_id))


def live_session(session: Session, session_id: str, now: datetime,
                 policy: SessionPolicy) -> tuple[WebSession, User] | None:
    """The session and its user while valid; touches `last_seen_at` (the idle clock restarts)."""
    row = known_session(session, session_id)
    if row is None or row.revoked_at is not None or now >= row.expires_at or now >= row.last_seen_at + policy.idle:
        return None
    user = session.exec(select(User).where(User.id == row.user_id, User.active)).first()
    if user is None:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
    return row, user


def revoke_session(session: Session, session_id: str, now: datetime) -> bool:
    row = known_session(session, session_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.add(row)
    return True
