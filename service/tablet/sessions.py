"""Tablet sessions: a signed, expiring token in the cookie (never the key), revocable.

Signing in with a tablet key opens a session row in the store (so every worker and
process sees a sign-out at once) and gives the browser a token signed with the session
secret: a forged or expired token is refused without a database read. Every form carries
a CSRF token bound to the session (before sign-in: a signed, short-lived one), and every
POST must come from the page's own origin when the browser says where it comes from.
A session ends at sign-out, at expiry, or when its key leaves the settings.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Connection, insert, select, update

from service.auth import Caller
from service.settings import Settings
from service.storage.codec import micros
from service.storage.tables import tablet_sessions

COOKIE = "omni_tablet_session"
#: Scopes a key needs to run the tablet.
NEEDS = frozenset({"recommend", "profile:read", "events:write"})
#: A sign-in form is good for this long.
SIGN_IN_FORM_SECONDS = 3600


@dataclass(frozen=True)
class Session:
    session_id: str
    caller: Caller


def _secret(settings: Settings) -> bytes:
    """The signing secret: `OMNI_SESSION_SECRET`, else one derived from the configured
    keys (the same in every worker; rotating a key ends every session)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    keys = "\n".join(sorted(settings.api_keys))
    return hashlib.sha256(f"omni-tablet-sessions\n{keys}".encode()).digest()


def _signer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(settings), salt=f"omni-tablet-{purpose}")


def _hashed(session_id: str) -> str:
    """What the store keeps: a leaked table gives no usable session."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(conn: Connection, settings: Settings, key_name: str, now: datetime) -> str:
    """Record a new session for the key named `key_name`; returns the cookie's token."""
    session_id = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.tablet_session_hours)
    conn.execute(
        insert(tablet_sessions).values(
            session_hash=_hashed(session_id),
            key_name=key_name,
            created_at=micros(now),
            expires_at=micros(expires),
            revoked_at=None,
        )
    )
    return str(_signer(settings, "session").dumps(session_id))


def read_session(conn: Connection, settings: Settings, token: str, now: datetime) -> Session | None:
    """The live session of a cookie's token: signed by us, not expired, not revoked, and
    its key still configured for a store with the tablet's scopes."""
    try:
        session_id = _signer(settings, "session").loads(
            token, max_age=int(settings.tablet_session_hours * 3600)
        )
    except BadSignature:
        return None
    row = conn.execute(
        select(tablet_sessions).where(tablet_sessions.c.session_hash == _hashed(str(session_id)))
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= micros(now):
        return None
    spec = next((k for k in settings.api_keys.values() if k.name == row.key_name), None)
    if spec is None or spec.store_id is None or not set(spec.scopes) >= NEEDS:
        return None
    return Session(str(session_id), Caller(spec.name, frozenset(spec.scopes), spec.store_id))


def revoke(conn: Connection, session_id: str, now: datetime) -> None:
    conn.execute(
        update(tablet_sessions)
        .where(tablet_sessions.c.session_hash == _hashed(session_id))
        .values(revoked_at=micros(now))
    )


def csrf_token(settings: Settings, session: Session | None) -> str:
    """The token every form of the page carries: bound to the session once signed in."""
    subject = session.session_id if session else "sign-in"
    return str(_signer(settings, "csrf").dumps(_hashed(subject)))


def csrf_ok(settings: Settings, session: Session | None, token: str) -> bool:
    subject = session.session_id if session else "sign-in"
    max_age = int(settings.tablet_session_hours * 3600) if session else SIGN_IN_FORM_SECONDS
    try:
        carried = _signer(settings, "csrf").loads(token, max_age=max_age)
    except BadSignature:
        return False
    return hmac.compare_digest(str(carried), _hashed(subject))


def same_origin(request: Request) -> bool:
    """Whether a POST comes from this site's own pages, as far as the browser says: its
    Origin (else Referer) must be this host's scheme, name and port. A request that says
    neither relies on its CSRF token alone."""
    said = request.headers.get("origin") or request.headers.get("referer")
    if not said:
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    return said == own or said.startswith(own + "/")
