"""The in-process scheduler: started once per process, only where asked, woken by requests.
Its jobs are tested by calling them directly (tests/test_mail.py, tests/test_reminders.py)."""
from datetime import datetime, timedelta, timezone

import pytest

from portico import scheduler
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
