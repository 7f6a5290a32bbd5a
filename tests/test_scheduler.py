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
