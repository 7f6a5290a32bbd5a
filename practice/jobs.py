"""Scheduled work. Each job is a short tick that enters its own app context and connection,
claims what is due in the database, and acts on it; the database is the truth."""
import logging

from .mail import send_due_mail
from .models import db
from .sign_in import process_sign_in_requests

log = logging.getLogger(__name__)


def mail_tick(app) -> int:
    """Turn sign-in requests into mail, then send what is due. Returns emails sent."""
    with app.app_context(), db.connection_context():
        process_sign_in_requests(code_key=app.config["SECRET_KEY"].encode())
        sent = 0
        # Drain in batches so a burst leaves within one tick, each batch on one connection.
        while True:
            batch_sent = send_due_mail()
            sent += batch_sent
            if batch_sent == 0:
                break
        return sent


def safe_mail_tick(app) -> None:
    try:
        mail_tick(app)
    except Exception:  # a failed tick must not kill the scheduler; the rows stay due
        log.exception("mail tick failed")
