"""Reminders sent by real `python portal.py worker` processes to a real SMTP server (aiosmtpd):

* two workers against one PostgreSQL database, over the same 500 due reminders, send each
  reminder exactly once;
* a worker SIGKILLed mid-batch loses nothing: a new worker sends every reminder the dead one
  had not, and re-sends (with the same Message-ID) at most what was in flight at the kill.

The test process only books the appointments, makes their reminders due and reads the
results; the workers run on the real clock, and the test's waits are bounded waits for mail
(or for a process) to arrive, never moves of time.
"""
import os
import re
import time
from collections import Counter
from datetime import timedelta

import pytest

from practice import mail
from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clock import utcnow
from practice.models import Email, Practice, Reminder
from tests._processes import PID_IN_MESSAGE_ID, WorkerProcess, close_test_connections

SECRET_KEY = "worker-test-secret-key"
UID = re.compile(r"^UID:appointment-(\d+)@portal\.test\r?$", re.M)


def book_appointments(app, clinician, count: int, *, clients: int = 50) -> list[int]:
    """`count` appointments two days out, booked the ordinary way: one pending 24 h reminder
    each, and no mail yet. Returns the appointment ids."""
    with app.app_context():
        Practice.update(reminder_offsets="24").execute()  # one reminder per appointment
        people = [add_client(f"client{n}@example.com", f"Client {n}") for n in range(clients)]
        first = utcnow().replace(second=0) + timedelta(days=2)
        ids = []
        for n in range(count):
            start = first + timedelta(minutes=10 * n)
            ids.append(create_appointment(clinician=clinician, client=people[n % clients], starts_at=start,
                                          ends_at=start + timedelta(minutes=50), kind="telehealth").id)
        assert Reminder.select().where(Reminder.status == "pending").count() == count
        assert Email.select().count() == 0  # booked ahead of the reminder: no confirmation mail
    close_test_connections()
    return ids


def make_reminders_due(app) -> None:
    """Every pending reminder due a minute ago, as if its time had just passed."""
    with app.app_context():
        Reminder.update(due_at=utcnow() - timedelta(minutes=1)).where(Reminder.status == "pending").execute()
    close_test_connections()


def worker_env(database_url: str, smtp_port: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "PORTAL_"))}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET_KEY,
        PORTAL_BASE_URL="http://portal.test",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_port),
        MAIL_DEFAULT_SENDER="portal@portal.test",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def wait_for_mail(inbox, count: int, workers, *, seconds: float, poll: float = 0.05) -> float:
    """Wait (bounded) until `count` messages reached the SMTP server; returns the time taken."""
    started = time.monotonic()
    while len(inbox.messages) < count:
        for worker in workers:
            worker.check_alive()
        if time.monotonic() - started > seconds:
            logs = "\n".join(w.log()[-3000:] for w in workers)
            raise AssertionError(f"only {len(inbox.messages)} of {count} mails arrived in {seconds:.0f}s\n{logs}")
        time.sleep(poll)
    return time.monotonic() - started


def appointment_in(message) -> int:
    """The appointment a reminder is about, from the UID of its .ics attachment."""
    (ics,) = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    content = ics.get_content()
    return int(UID.search(content if isinstance(content, str) else content.decode()).group(1))


def reminder_messages(inbox):
    return [m for m in inbox.messages if m["Subject"].startswith("Reminder: ")]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_workers_send_each_of_500_due_reminders_exactly_once(app, database_url, dana, smtp_server, tmp_path):
    appointment_ids = book_appointments(app, dana, 500)
    # A reminder tick queues at most 200 (reminders.BATCH): ticking every 2 s rather than 30 s
    # lets the workers get through 500 in seconds; each tick is the same as in production.
    env = worker_env(database_url, smtp_server.port, PORTAL_REMINDER_TICK_SECONDS="2")
    workers = [WorkerProcess(env, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        for worker in workers:
            worker.wait_ready()
        make_reminders_due(app)  # for both workers at once, however long each took to start
        took = wait_for_mail(smtp_server, 500, workers, seconds=120)
    finally:
        for worker in workers:
            worker.stop()  # after the ticks in progress: nothing is in flight past this point

    # A reminder queued twice would show as a second outbox row, a mail sent twice as attempts == 2.

    messages = reminder_messages(smtp_server)
    assert len(smtp_server.messages) == len(messages) == 500
    message_ids = [m["Message-ID"] for m in messages]
    assert len(set(message_ids)) == 500
    assert sorted(appointment_in(m) for m in messages) == sorted(appointment_ids)

    reminders = list(Reminder.select())
    assert len(reminders) == 500 and {r.status for r in reminders} == {"queued"}
    assert len({r.email_id for r in reminders}) == 500
    emails = list(Email.select())
    assert len(emails) == 500
    assert {(e.status, e.attempts, e.transport) for e in emails} == {("sent", 1, "smtp")}
    assert {e.message_id for e in emails} == set(message_ids)

    # Both workers did some of the work, and not by luck: a claim leases the reminders it
    # takes, so each worker's first tick (2 s apart at most) takes a batch of its own, 200 of
    # the 500. The reminder tick that queued a mail left its pid
    # in the mail's Message-ID.
    queued_by = Counter(int(PID_IN_MESSAGE_ID.match(m).group(1)) for m in message_ids)
    assert set(queued_by) == {w.pid for w in workers}, queued_by
    close_test_connections()
    print(f"\n500 reminders by two workers in {took:.1f}s; queued per worker: {sorted(queued_by.values())}")


KILLED_BATCH = 300  # the first worker's first reminder tick queues 200, the new worker's the rest


def test_a_worker_killed_mid_batch_loses_nothing(app, database_url, dana, smtp_server, tmp_path):
    appointment_ids = book_appointments(app, dana, KILLED_BATCH)
    make_reminders_due(app)
    # A short lease, so that what the dead worker had claimed is sent again within seconds.
    env = worker_env(database_url, smtp_server.port, MAIL_LEASE_SECONDS="3")

    first = WorkerProcess(env, tmp_path / "worker-killed.log")
    try:
        # Mid-batch: the mail job sends BATCH (20) messages per claim, so 50 is inside one.
        wait_for_mail(smtp_server, 50, [first], seconds=60, poll=0.002)
    finally:
        first.kill()
    arrived_before_restart = len(smtp_server.messages)
    assert arrived_before_restart < KILLED_BATCH, "the worker finished before it could be killed"
    in_flight = {e.message_id for e in Email.select().where(Email.status == "sending")}
    unsent_reminders = Reminder.select().where(Reminder.status == "pending").count()
    close_test_connections()

    second = WorkerProcess(env, tmp_path / "worker-restarted.log")
    try:
        # Until every reminder's mail is marked sent (so it reached the server): what the dead
        # worker had in flight is sent again only once its lease is over.
        deadline = time.monotonic() + 90
        while Email.select().where(Email.status == "sent").count() < KILLED_BATCH:
            second.check_alive()
            assert time.monotonic() < deadline, (
                f"{len(smtp_server.messages)} mails after restart\n{second.log()[-3000:]}")
            close_test_connections()
            time.sleep(0.1)
    finally:
        second.stop()

    messages = reminder_messages(smtp_server)
    assert len(messages) == len(smtp_server.messages)
    # Nothing lost: every appointment got its reminder.
    assert sorted(set(appointment_in(m) for m in messages)) == sorted(appointment_ids)
    # Duplicates are the very same mail (same Message-ID) and only what was in flight at the kill.
    counts = Counter(m["Message-ID"] for m in messages)
    duplicates = {message_id for message_id, n in counts.items() if n > 1}
    assert len(counts) == KILLED_BATCH
    assert duplicates <= in_flight and len(duplicates) <= mail.BATCH, (duplicates, in_flight)
    assert all(n == 2 for n in counts.values() if n > 1)

    reminders = list(Reminder.select())
    assert {r.status for r in reminders} == {"queued"}
    emails = list(Email.select())
    assert len(emails) == KILLED_BATCH and {e.status for e in emails} == {"sent"}
    assert {e.message_id for e in emails} == set(counts)
    close_test_connections()
    print(f"\n{database_url.split(':')[0]}: killed after {arrived_before_restart} mails "
          f"({len(in_flight)} in flight, {unsent_reminders} reminders not yet queued); "
          f"{len(duplicates)} re-sent after restart")
