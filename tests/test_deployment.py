"""Portico deployed as docs/operations.md says, on PostgreSQL: two gunicorn processes (the repo's
gunicorn.conf.py, PORTAL_SCHEDULER=off) and one `python portal.py worker`, mailing a real
SMTP server (aiosmtpd), rate limits on Redis when it is there. Through them:

* sign-in: the link is asked for through one process, mailed by the worker, and used
  through the other; the session it starts is good on both;
* a reminder: an appointment booked through the domain, whose reminder falls due seconds
  later, is mailed by the worker (not before it is due) with the appointment's join link;
* the telehealth window: the join page through one process offers Join inside the window;
  after the end is moved into the past, a new entry through the other process is refused;
* and the access logs show /s/… and /t/…, never a token.
"""
import os
import re
import sys
import time
import uuid
from contextlib import ExitStack
from datetime import timedelta

import pytest
import requests

from practice.appointments import create_appointment, move_appointment
from practice.clients import add_client
from practice.clock import utcnow
from practice.models import Appointment, Email, Practice, Reminder, db
from practice.telehealth import telehealth_token
from tests._processes import PID_IN_MESSAGE_ID, WorkerProcess, close_test_connections
from tests.conftest import CSRF_INPUT, ask_for_link, free_port, text_part
from tests.test_concurrent_redemption import running_server
from tests.test_shared_rate_limits import redis_reachable

SECRET_KEY = "test-secret-key"  # the make_app fixture's: the test computes join links with it
SIGN_IN_LINK = re.compile(r"http://portal\.test/s/([A-Za-z0-9_\-]+)")


def deployment_env(database_url: str, smtp_port: int) -> dict:
    """One environment for every process, as a shared EnvironmentFile would give them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "PORTAL_", "RATELIMIT_"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY, PORTAL_BASE_URL="http://portal.test",
               PORTAL_EXTRA_HOSTS="127.0.0.1",  # the test reaches gunicorn on its loopback port
               MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port), MAIL_DEFAULT_SENDER="portal@portal.test",
               PORTAL_SCHEDULER="off", PORTAL_MAIL_TICK_SECONDS="0.5", PORTAL_REMINDER_TICK_SECONDS="1",
               PYTHONUNBUFFERED="1")
    if redis_reachable():
        env.update(RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
                   RATELIMIT_KEY_PREFIX=f"portico-test-{uuid.uuid4().hex[:12]}")
    return env


def wait_for(inbox, worker, matches, what: str, seconds: float = 30):
    """The first message that `matches`, waiting (bounded) for the worker to send it."""
    deadline = time.monotonic() + seconds
    while True:
        found = [m for m in inbox.messages if matches(m)]
        if found:
            return found[0]
        worker.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {seconds:.0f}s\n{worker.log()[-3000:]}")
        time.sleep(0.1)


def form_token(response) -> str:
    match = CSRF_INPUT.search(response.text)
    assert match, f"no CSRF token on {response.url}"
    return match.group(1)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_web_processes_and_a_worker_on_postgres(app, database_url, dana, alex, smtp_server, tmp_path):
    with app.app_context():
        # One reminder an hour ahead, and no quiet hours: a reminder booked for an hour and a
        # few seconds from now falls due within seconds, whatever the time of day here.
        Practice.update(reminder_offsets="1", quiet_hours_start="00:00", quiet_hours_end="00:00").execute()
    close_test_connections()
    env = deployment_env(database_url, smtp_server.port)
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"web-{n}.log" for n in range(2)]
    with ExitStack() as stack:
        worker = WorkerProcess(env, tmp_path / "worker.log")
        stack.callback(worker.stop)
        one, other = [stack.enter_context(running_server(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--threads", "4"], env, log, port)) for port, log in zip(ports, logs)]

        # ---- sign-in: asked for through one process, mailed by the worker, used through the other
        phone = requests.Session()
        asked = phone.post(f"{one}/sign-in", timeout=30,
                           data={"email": "alex@example.com", "csrf_token": form_token(phone.get(f"{one}/sign-in"))})
        assert asked.status_code == 200 and "a sign-in link is on its way" in asked.text
        sign_in_mail = wait_for(smtp_server, worker, lambda m: m["To"] == "alex@example.com", "sign-in email")
        token = SIGN_IN_LINK.search(text_part(sign_in_mail)).group(1)

        laptop = requests.Session()
        page = laptop.get(f"{other}/s/{token}", timeout=30)
        assert page.status_code == 200 and "Continue to the portal" in page.text
        signed_in = laptop.post(f"{other}/s/{token}", data={"csrf_token": form_token(page)},
                                allow_redirects=False, timeout=30)
        assert (signed_in.status_code, signed_in.headers["Location"]) == (303, "/portal")
        for base in (one, other):  # the session lives in the database: any process knows it
            home = laptop.get(f"{base}/portal", allow_redirects=False, timeout=30)
            assert home.status_code == 200 and "Hello, Alex Morgan" in home.text

        # A reminder that falls due in three seconds, booked the ordinary way (after the
        # sign-in: the reminder carries a sign-in link too, which replaces earlier ones).
        with app.app_context():
            start = utcnow().replace(microsecond=0) + timedelta(hours=1, seconds=3)
            later = create_appointment(clinician=dana, client=alex, starts_at=start,
                                       ends_at=start + timedelta(minutes=50))
            (reminder,) = Reminder.select().where(Reminder.appointment == later)
        close_test_connections()

        # ---- the telehealth window, across the two processes
        with app.app_context():
            now = utcnow().replace(microsecond=0)
            session = create_appointment(clinician=dana, client=alex, starts_at=now - timedelta(minutes=10),
                                         ends_at=now + timedelta(minutes=40))
            join = f"/t/{telehealth_token(session, SECRET_KEY)}"
        close_test_connections()
        first = requests.Session()
        page = first.get(f"{one}{join}", timeout=30)
        assert page.status_code == 200 and 'data-state="open"' in page.text and ">Join</button>" in page.text
        entered = first.post(f"{one}{join}", data={"csrf_token": form_token(page)}, allow_redirects=False, timeout=30)
        assert (entered.status_code, entered.headers["Location"]) == (303, f"{join}/room")
        assert first.get(f"{other}{join}/room", allow_redirects=False, timeout=30).status_code == 200

        with app.app_context():
            move_appointment(Appointment.get_by_id(session.id), starts_at=now - timedelta(hours=3),
                             ends_at=now - timedelta(hours=2))  # the window closed 90 minutes ago
        close_test_connections()
        latecomer = requests.Session()
        page = latecomer.get(f"{other}{join}", timeout=30)
        assert page.status_code == 200 and 'data-state="closed"' in page.text and ">Join</button>" not in page.text
        token_for_post = form_token(latecomer.get(f"{other}/sign-in", timeout=30))
        refused = latecomer.post(f"{other}{join}", data={"csrf_token": token_for_post}, allow_redirects=False,
                                 timeout=30)
        assert refused.status_code == 409 and "This session ended at" in refused.text

        # ---- the reminder, sent by the worker once due, with the appointment's join link
        reminder_mail = wait_for(smtp_server, worker, lambda m: m["Subject"].startswith("Reminder: "), "reminder")
        later_join = f"http://portal.test/t/{telehealth_token(later, SECRET_KEY)}"
        assert later_join in text_part(reminder_mail)
        assert any(part.get_content_type() == "text/calendar" for part in reminder_mail.iter_attachments())
        worker_pid = worker.process.pid

    # All stopped. What the database and the logs say:
    with app.app_context(), db.connection_context():
        reminder = Reminder.get_by_id(reminder.id)
        sent = Email.get(Email.message_id == reminder_mail["Message-ID"])
        assert reminder.status == "queued" and sent.queued_at >= reminder.due_at  # not before it was due
        assert (sent.status, sent.transport) == ("sent", "smtp")
    close_test_connections()
    for message in (sign_in_mail, reminder_mail):  # written and sent by the worker, not a web process
        assert int(PID_IN_MESSAGE_ID.match(message["Message-ID"]).group(1)) == worker_pid
    web_logs = [log.read_text(encoding="utf-8", errors="replace") for log in logs]
    for text in [*web_logs, worker.log()]:
        assert "Traceback" not in text, text
        assert token not in text and join.split("/")[-1] not in text
    assert "GET /s/… HTTP/1.1" in web_logs[1] and "POST /s/… HTTP/1.1" in web_logs[1]
    assert "POST /t/… HTTP/1.1" in web_logs[0] and "GET /t/…/room HTTP/1.1" in web_logs[1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_workers_tick_intervals_come_from_the_environment(make_app, monkeypatch):
    from portico import scheduler
    monkeypatch.setenv("PORTAL_MAIL_TICK_SECONDS", "0.5")
    monkeypatch.setenv("PORTAL_REMINDER_TICK_SECONDS", "2")
    started = scheduler.start_scheduler(make_app(), paused=True)
    try:
        intervals = {job.id: job.trigger.interval.total_seconds() for job in started.get_jobs()}
    finally:
        scheduler.stop_scheduler()
    # Retention prunes by the day, so its hourly tick is not configurable.
    assert intervals == {"mail": 0.5, "reminders": 2.0, "retention": 3600.0}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_sign_in_request_wakes_a_separate_worker_at_once(app, database_url, alex, smtp_server, tmp_path):
    """The web process says NOTIFY; the worker, which LISTENs, sends at once rather than at
    its next mail tick, here five minutes away."""
    with app.app_context():
        add_client("sam@example.com", "Sam Rivera")
    close_test_connections()
    env = dict(deployment_env(database_url, smtp_server.port), PORTAL_MAIL_TICK_SECONDS="300")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        worker.wait_for_log("listening for mail wake-ups")
        browser = app.test_client()
        # The first request may meet the worker's first tick, which runs at its start...
        assert ask_for_link(browser, "alex@example.com").status_code == 200
        first_mail = wait_for(smtp_server, worker, lambda m: m["To"] == "alex@example.com", "first sign-in email")
        # ...after which only a wake-up sends mail before five minutes have passed.
        asked = time.monotonic()
        assert ask_for_link(browser, "sam@example.com").status_code == 200
        wait_for(smtp_server, worker, lambda m: m["To"] == "sam@example.com", "woken sign-in email", seconds=20)
        print(f"\nsign-in email from a separate worker {time.monotonic() - asked:.2f}s after the request")

        # The listening connection dies (a database restart, say): the worker listens again.
        with app.app_context():
            ended = db.execute_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                                   "current_database() AND query = 'LISTEN portico_mail'").fetchall()
        close_test_connections()
        assert ended == [(True,)]
        worker.wait_for_log("listening for mail wake-ups", 30, times=2)
        assert "mail wake-ups paused" in worker.log()
        assert ask_for_link(browser, "alex@example.com").status_code == 200
        wait_for(smtp_server, worker, lambda m: m["To"] == "alex@example.com" and m is not first_mail,
                 "sign-in email after the listener reconnected", seconds=20)
    finally:
        worker.stop()
        close_test_connections()

