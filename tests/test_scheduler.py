"""The in-process scheduler: started once per process, only where asked, woken by requests.
Its jobs are tested by calling them directly (tests/test_mail.py, tests/test_reminders.py)."""
import threading
from datetime import datetime, timedelta, timezone

import pytest

from portico import scheduler
from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clock import utcnow
from practice.models import Email, Practice, Reminder
from tests.conftest import ask_for_link


@pytest.fixture
def paused_scheduler(app):
    """The real scheduler with its jobs registered but not running, so nothing races the test."""
    started = scheduler.start_scheduler(app, paused=True)
    yield started
    scheduler.stop_scheduler()


def test_create_app_never_starts_the_scheduler(app):
    assert scheduler.scheduler is None


def test_scheduler_starts_once_per_process(app, paused_scheduler):
    assert scheduler.start_scheduler(app, paused=True) is paused_scheduler
    assert sorted(job.id for job in paused_scheduler.get_jobs()) == ["mail", "reminders", "retention"]


def test_asking_for_a_link_wakes_the_mail_job_at_once(app, client, alex, paused_scheduler):
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    paused_scheduler.modify_job("mail", next_run_time=far)
    ask_for_link(client, "alex@example.com")
    assert paused_scheduler.get_job("mail").next_run_time <= datetime.now(timezone.utc) + timedelta(seconds=1)



def test_mail_the_reminder_job_queues_wakes_the_mail_job(app, dana, paused_scheduler):
    """The mail job sends a batch of reminders while the reminder job composes the next,
    not one tick interval after it."""
    with app.app_context():
        Practice.update(reminder_offsets="24").execute()
        sam = add_client("sam@example.com", "Sam Rivera")
        starts = utcnow().replace(microsecond=0) + timedelta(days=5)
        create_appointment(clinician=dana, client=sam, starts_at=starts, ends_at=starts + timedelta(minutes=50))
        Reminder.update(due_at=utcnow() - timedelta(minutes=1)).execute()
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    paused_scheduler.modify_job("mail", next_run_time=far)  # after the booking's own wake-up
    paused_scheduler.get_job("reminders").func()  # the reminder job, as the scheduler runs it
    with app.app_context():
        assert Email.select().where(Email.kind == "reminder").count() == 1
    assert paused_scheduler.get_job("mail").next_run_time <= datetime.now(timezone.utc) + timedelta(seconds=1)


def test_a_wake_up_while_the_mail_job_runs_makes_that_run_claim_again(paused_scheduler):
    """APScheduler would refuse a second instance of the running job and drop the wake-up:
    mail queued after the run's last claim would wait for the next interval."""
    far = datetime.now(timezone.utc) + timedelta(hours=1)
    paused_scheduler.modify_job("mail", next_run_time=far)
    ticks = []

    def tick():
        ticks.append(len(ticks))
        if len(ticks) == 1:  # a request queues a link from another thread, after this tick's last claim
            waker = threading.Thread(target=scheduler.wake_mail_job)
            waker.start()
            waker.join()

    scheduler.mail_runs.run(tick)
    assert ticks == [0, 1]
    assert paused_scheduler.get_job("mail").next_run_time == far  # the run claimed again; nothing was scheduled
    assert not scheduler.mail_runs.running
    scheduler.wake_mail_job()  # once it has ended, a wake-up schedules it as before
    assert paused_scheduler.get_job("mail").next_run_time <= datetime.now(timezone.utc) + timedelta(seconds=1)

def test_a_tick_that_finds_sqlite_locked_past_its_timeout_warns_without_a_traceback(tmp_path, caplog):
    """Another process holding the write lock is contention, not a fault: the tick says so in one
    line and its rows wait for the next; any other database error still logs its traceback."""
    import sqlite3

    from peewee import SqliteDatabase

    from practice.jobs import safe
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY)")
    holder.execute("BEGIN IMMEDIATE")  # the other process's write transaction
    impatient = SqliteDatabase(str(path), pragmas={"busy_timeout": 0})

    def mail_tick():
        with impatient.atomic(lock_type="IMMEDIATE"):
            impatient.execute_sql("INSERT INTO outbox DEFAULT VALUES")

    def broken_tick():
        impatient.execute_sql("SELECT * FROM no_such_table")

    try:
        safe(mail_tick)()
        safe(broken_tick)()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        impatient.close()
    busy, broken = caplog.records[-2:]
    assert busy.levelname == "WARNING" and busy.exc_info is None
    assert busy.getMessage() == ("mail_tick waited for the database longer than its busy timeout; "
                                 "what is due goes at the next tick")
    assert broken.levelname == "ERROR" and broken.exc_info is not None
