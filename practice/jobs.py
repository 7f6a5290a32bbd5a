"""Scheduled work. Each job is a short tick that opens its own connection, claims what is
due in the database, and acts on it; the database is the truth. The scheduler (portico/
scheduler.py) calls them; tests call them directly."""
import logging

from peewee import OperationalError

from .mail import send_due_mail
from .models import db
from .reminders import send_due_reminders
from .retention import prune_history
from .sign_in import process_sign_in_requests

log = logging.getLogger(__name__)


def mail_tick() -> int:
    """Turn sign-in requests into mail, then send what is due. Returns emails sent."""
    with db.connection_context():
        # Drains what is due in batches over one connection, so a burst leaves within one
        # tick; requests that came in meanwhile are turned into mail before each batch.
        return send_due_mail(before_batch=process_sign_in_requests)


def reminder_tick() -> int:
    """Queue the mail of every due reminder; the mail tick sends it."""
    with db.connection_context():
        return send_due_reminders()


def retention_tick() -> int:
    """Prune what the retention rule no longer keeps (practice/retention.py)."""
    with db.connection_context():
        return prune_history()


def safe(job):
    """A failed tick must not kill the scheduler: the rows stay due for the next one."""

    def run() -> None:
        try:
            job()
        except OperationalError as error:
            if not is_busy(error):
                log.exception("%s failed", job.__name__)
                return
            # Another process held SQLite's write lock past busy_timeout: nothing is wrong
            # with the rows, which stay due; a traceback would send an operator hunting.
            log.warning("%s waited for the database longer than its busy timeout; "
                        "what is due goes at the next tick", job.__name__)
        except Exception:
            log.exception("%s failed", job.__name__)

    run.__name__ = f"safe_{job.__name__}"
    return run


def is_busy(error: OperationalError) -> bool:
    """SQLite's "database is locked": a writer waited past busy_timeout (practice/models.py)."""
    return "database is locked" in str(error)


safe_mail_tick = safe(mail_tick)
safe_reminder_tick = safe(reminder_tick)
safe_retention_tick = safe(retention_tick)
