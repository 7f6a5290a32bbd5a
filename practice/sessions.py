"""Server-side sessions: the cookie carries a random id, the row decides whether it still works."""
import hashlib
import secrets
from datetime import datetime, timedelta

from . import audit
from .clock import utcnow
from .models import Client, Practice, Session
from .prepared import Prepared, slot

# Writing last_seen_at on every request would turn each page view into a write;
# fifteen seconds' precision is plenty for a 15-minute idle limit.
TOUCH_EVERY = timedelta(seconds=15)
WARN_BEFORE_IDLE = timedelta(minutes=2)


class SessionEnded(Exception):
    """The cookie names a session that no longer signs anyone in; `session` says why."""

    def __init__(self, session: Session | None):
        super().__init__(session.end_reason if session else "unknown")
        self.session = session

    @property
    def reason(self) -> str | None:
        return self.session.end_reason if self.session else None


def _hash(raw_id: str) -> str:
    return hashlib.sha256(raw_id.encode()).hexdigest()


_NEW_SESSION = Prepared(lambda: Session.insert(
    id_hash=slot("id_hash"), client=slot("client_id"), clinician=slot("clinician_id"), created_at=slot("created_at"),
    last_seen_at=slot("last_seen_at"), ip=slot("ip"), user_agent=slot("user_agent")))


def start_session(*, client: Client | None = None, clinician=None, ip=None, user_agent=None,
                  now: datetime | None = None) -> tuple[str, Session]:
    """A fresh session and the raw id for the cookie (a new id at every sign-in)."""
    now = now or utcnow()
    raw_id = secrets.token_urlsafe(32)
    fields = dict(id_hash=_hash(raw_id), created_at=now, last_seen_at=now, ip=ip, user_agent=(user_agent or "")[:255])
    new_id = _NEW_SESSION.insert(client_id=client.id if client else None,
                                 clinician_id=clinician.id if clinician else None, **fields)
    session = Session(id=new_id, client=client, clinician=clinician, **fields)
    audit.record("signed_in", client=client, ip=ip, at=now, detail="client" if client else "clinician")
    return raw_id, session


def find_session(raw_id: str | None) -> Session | None:
    if not raw_id or len(raw_id) > 100:
        return None
    return Session.get_or_none(Session.id_hash == _hash(raw_id))


def limits(session: Session) -> tuple[timedelta, timedelta]:
    """(idle, absolute) for this kind of session, from the practice's settings."""
    practice = Practice.current()
    idle = practice.clinician_idle_minutes if session.clinician_id else practice.client_idle_minutes
    return timedelta(minutes=idle), timedelta(hours=practice.client_absolute_hours)


def idle_deadline(session: Session) -> datetime:
    idle, absolute = limits(session)
    return min(session.last_seen_at + idle, session.created_at + absolute)


def check_session(raw_id: str | None, *, touch: bool | str = True, now: datetime | None = None) -> Session:
    """The live session for this cookie, or SessionEnded. Ends a session that has timed out."""
    now = now or utcnow()
    session = find_session(raw_id)
    if session is None:
        raise SessionEnded(None)
    if session.ended_at is None:
        idle, absolute = limits(session)
        if now >= session.created_at + absolute:
            end_session(session, "absolute", now=now)
        elif now >= session.last_seen_at + idle:
            end_session(session, "idle", now=now)
        elif session.client_id and session.client.archived_at is not None:
            end_session(session, "archived", now=now)
    if session.ended_at is not None:
        raise SessionEnded(session)
    if touch == "always" or (touch and now - session.last_seen_at >= TOUCH_EVERY):
        Session.update(last_seen_at=now).where(Session.id == session.id).execute()
        session.last_seen_at = now
    return session


def end_session(session: Session, reason: str, *, now: datetime | None = None) -> None:
    now = now or utcnow()
    ended = Session.update(ended_at=now, end_reason=reason).where(
        (Session.id == session.id) & Session.ended_at.is_null()).execute()
    if ended:
        session.ended_at, session.end_reason = now, reason
        kind = "signed_out" if reason == "signed_out" else "session_ended"
        audit.record(kind, client=session.client, detail=reason, at=now)


def end_client_sessions(client: Client, reason: str, *, now: datetime | None = None) -> int:
    count = 0
    for session in Session.open_for_client(client):
        end_session(session, reason, now=now)
        count += 1
    return count
