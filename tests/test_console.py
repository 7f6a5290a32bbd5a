"""What a person sees in the console: a start without APScheduler's chatter, and a demo that
prints addresses to open and books its appointments inside working hours."""
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest

from practice.clock import to_local
from practice.demo import WORKING_HOURS, demo_starts
from practice.models import Appointment, Practice, db
from tests._processes import REPO, close_test_connections
from tests.conftest import free_port
from tests.test_app import run  # noqa: F401  (the fixture)


def start_output(command: list[str], ready: str, database_url: str, tmp_path, seconds: float = 60) -> str:
    """The first output of `python portal.py <command>` until it prints `ready` (bounded)."""
    close_test_connections()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "PORTAL_"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY="test-secret-key", PORTAL_BASE_URL="http://portal.test",
               PORTAL_SCHEDULER="on", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "start.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "portal.py", *command], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + seconds
        while ready not in log_path.read_text(errors="replace"):
            assert process.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, f"no {ready!r} in {seconds:.0f}s"
            time.sleep(0.1)
        time.sleep(1)  # the first ticks run at the start: their lines too
    finally:
        process.terminate()
        process.wait(timeout=30)
    return log_path.read_text(errors="replace")


@pytest.mark.parametrize("command, ready", [
    (["worker"], "Portico worker running"),
    (["serve", "--port", "PORT"], "Running on"),
])
def test_starting_says_nothing_about_adding_jobs_tentatively(database_url, tmp_path, command, ready):
    command = [str(free_port()) if part == "PORT" else part for part in command]
    output = start_output(command, ready, database_url, tmp_path)
    assert "Adding job tentatively" not in output and "Traceback" not in output
    assert ready in output


def test_the_demo_prints_full_addresses_from_the_base_url(run, monkeypatch):  # noqa: F811
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.riverside.example")
    output = run("demo").output
    assert "(sign in at https://portal.riverside.example/clinic/)" in output
    assert "Clients sign in at https://portal.riverside.example/sign-in" in output
    assert "https://portal.riverside.example/dev/mailbox" in output
    assert " at /" not in output


def test_the_demo_practice_has_a_zone_and_its_appointments_fall_in_working_hours(run):  # noqa: F811
    assert run("demo").exit_code == 0
    with db.connection_context():
        zone = Practice.current().timezone
        appointments = list(Appointment.select())
    assert zone == "America/New_York"
    opens, closes = WORKING_HOURS
    for appointment in appointments:
        start, end = to_local(appointment.starts_at, zone), to_local(appointment.ends_at, zone)
        assert start.weekday() < 5 and opens <= start.time() and end.time() <= closes and end.date() == start.date()


@pytest.mark.parametrize("now", [
    datetime(2026, 12, 2, 4, 10),  # 11:10 PM the evening before, in New York
    datetime(2026, 12, 2, 15, 3),  # 10:03 AM: the first in ten minutes or less
    datetime(2026, 12, 2, 21, 55),  # 4:55 PM: too late for a 50-minute session today
    datetime(2026, 12, 4, 23, 0),  # Friday evening: Monday
    datetime(2026, 12, 5, 12, 0),  # Saturday
])
def test_demo_starts_are_in_working_hours_whatever_the_time(now):
    zone = "America/New_York"
    starts = demo_starts(now, zone)
    assert starts[0] > now and len(starts) == 3
    for start in starts:
        local = to_local(start, zone)
        assert local.weekday() < 5 and WORKING_HOURS[0] <= local.time() and local.hour <= 16


@pytest.mark.second_factor_required
def test_the_demo_clinician_signs_in_with_the_printed_password_and_has_hours_to_offer(run, make_app):  # noqa: F811
    """Trying the demo needs no authenticator app, and a client rescheduling from an email is
    offered times: the clinician's weekday hours are those the demo books in."""
    import re

    from practice.availability import weekly_hours
    from practice.models import Clinician
    from tests.conftest import csrf_token
    output = run("demo").output
    password = re.search(r"clinician@example\.com / password (\S+)", output).group(1)
    assert "Second factor for clinicians: off in the demo" in output
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    client = app.test_client()
    response = client.post("/clinic/sign-in", data={"email": "clinician@example.com", "password": password,
                                                     "csrf_token": csrf_token(client, "/clinic/sign-in")})
    assert response.headers["Location"] == "/clinic/calendar"
    with app.app_context(), db.connection_context():
        hours = weekly_hours(Clinician.get(Clinician.email == "clinician@example.com"))
    opens, closes = (wall.strftime("%H:%M") for wall in WORKING_HOURS)
    assert hours == {**{day: [(opens, closes)] for day in range(5)}, 5: [], 6: []}
