"""Waking the mail job of another process at once, on PostgreSQL: a web process that has
just taken a sign-in request says NOTIFY, and the worker, which LISTENs, runs its mail tick
now instead of at its next one. The database stays the truth: a lost notification only
means the mail leaves at the next tick, as it would without any of this."""
import logging
import select
import threading
from collections.abc import Callable

import psycopg2

from .models import db, is_sqlite

CHANNEL = "portico_mail"
RECONNECT_AFTER = (1, 2, 5, 10, 30)  # seconds, after each failure in a row

log = logging.getLogger(__name__)


def announce_mail() -> None:
    """Tell a listening worker there is mail to send (delivered when this transaction commits)."""
    if not is_sqlite():
        db.execute_sql(f"NOTIFY {CHANNEL}")


class MailListener(threading.Thread):
    """LISTENs on its own connection and calls `on_mail` for each burst of notifications.
    A dropped connection (a database restart) is opened again, after a growing pause."""

    def __init__(self, on_mail: Callable[[], None], *, stop: threading.Event, poll_seconds: float = 5):
        super().__init__(name="portico-mail-listener", daemon=True)
        self.on_mail = on_mail
        self.stop = stop
        self.poll_seconds = poll_seconds
        # The pool's own settings, on a connection of our own outside it (LISTEN holds it for
        # good), with TCP keepalives so that a server gone silent is noticed within minutes.
        self.connect_params = dict(db.obj.connect_params, database=db.obj.database, keepalives=1,
                                   keepalives_idle=60, keepalives_interval=10, keepalives_count=3)

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                self._listen()
                failures = 0
            except (psycopg2.Error, OSError) as error:
                pause = RECONNECT_AFTER[min(failures, len(RECONNECT_AFTER) - 1)]
                failures += 1
                log.warning("mail wake-ups paused (%s); listening again in %s s", type(error).__name__, pause)
                self.stop.wait(pause)

    def _listen(self) -> None:
        connection = psycopg2.connect(**self.connect_params)
        try:
            connection.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {CHANNEL}")
            log.info("listening for mail wake-ups on PostgreSQL")
            while not self.stop.is_set():
                readable, _, _ = select.select([connection], [], [], self.poll_seconds)
                if not readable:
                    continue
                connection.poll()
                if connection.notifies:
                    connection.notifies.clear()
                    try:
                        self.on_mail()
                    except Exception:  # the listener outlives one failed wake-up
                        log.exception("mail wake-up failed")
        finally:
            connection.close()
