"""A client reschedules from the 72-hour reminder in a real browser (headless Debian Chromium,
driven by Playwright, against the portal served from a thread of this test process), and the
clinician sees the change on the calendar."""
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from practice import jobs
from practice.appointments import create_appointment
from practice.availability import save_hours
from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.models import Appointment, Practice, Reminder
from tests.conftest import ARTIFACTS, PASSWORD, text_part

pytestmark = pytest.mark.browser

ZONE = "America/New_York"


@pytest.fixture
def database_url(tmp_path):
    """The browser journey runs once, on SQLite: the database rules are tested elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


def test_a_client_reschedules_from_the_72_hour_reminder_and_the_clinician_sees_it(live_portal, page, smtp_server):
    app, base_url = live_portal
    Practice.update(name="Riverside Counselling", timezone=ZONE, phone="555 0100").execute()
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    save_hours(dana, {day: [("09:00", "17:00")] for day in range(7)}, [])
    alex = add_client("alex@example.com", "Alex Morgan")
    # Four days ahead at 10:00 New York time, so that the 72-hour reminder is still to come.
    local = (datetime.now(timezone.utc).astimezone(ZoneInfo(ZONE)) + timedelta(days=4)).replace(
        hour=10, minute=0, second=0, microsecond=0)
    start = local.astimezone(timezone.utc).replace(tzinfo=None)
    appointment = create_appointment(clinician=dana, client=alex, starts_at=start, ends_at=start + timedelta(minutes=50))
    # The 72-hour reminder's time has come: the ticks the scheduler would run.
    Reminder.update(due_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=1)).where(
        Reminder.offset_hours == 72).execute()
    with app.app_context():
        assert jobs.reminder_tick() == 1 and jobs.mail_tick() == 1
    (reminder,) = smtp_server.to("alex@example.com")
    assert reminder["Subject"].startswith("Reminder:")
    link = re.search(r"Reschedule or cancel: (\S+)", text_part(reminder)).group(1)
    assert link.startswith(f"{base_url}/a/") and link.endswith("?via=reminder")
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your appointment")
    expect(page.locator(".when")).to_contain_text(f"{local:%a %-d %b %Y}, 10:00 AM")
    page.get_by_role("link", name="Choose another time").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose another time")
    # The next week, swapped in place by htmx: the same page, a new week.
    page.evaluate("window.__marker = 1")
    first_week = page.locator("#times-week-title").inner_text()
    page.get_by_role("link", name="Next week").click()
    expect(page.locator("#times-week-title")).not_to_have_text(first_week)
    assert page.evaluate("window.__marker") == 1
    page.get_by_role("link", name="Previous week").click()
    expect(page.locator("#times-week-title")).to_have_text(first_week)
    # The appointment's own day, at 2:00 PM (times are packed from 9:00: 9:00, 9:50, ... 2:00).
    day_title = f"{local:%A %-d %B %Y}"
    two_pm = page.get_by_role("link", name=f"2:00 PM, {day_title}")
    if not two_pm.count():  # that day is in the next week
        page.get_by_role("link", name="Next week").click()
        expect(page.locator("#times-week-title")).not_to_have_text(first_week)
    two_pm.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Move your appointment?")
    page.get_by_role("button", name="Move to this time").click()
    expect(page.get_by_role("status")).to_contain_text("Done: your appointment has moved")
    expect(page.locator(".when")).to_contain_text("2:00 PM – 2:50 PM")
    page.screenshot(path=str(ARTIFACTS / "online-change-done.png"), full_page=True)
    moved = Appointment.get_by_id(appointment.id)
    assert moved.starts_at == start + timedelta(hours=4) and moved.sequence == 1

    # The clinician signs in and sees it on the calendar of that day.
    clinic = page.context.browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    clinic.goto(f"{base_url}/clinic/sign-in")
    clinic.get_by_label("Email").fill("dana@example.com")
    clinic.get_by_label("Password").fill(PASSWORD)
    clinic.get_by_role("button", name="Sign in").click()
    expect(clinic).to_have_url(f"{base_url}/clinic/calendar")
    changes = clinic.locator(".online-changes")
    expect(changes).to_contain_text("Moved by the client on")
    expect(changes).to_contain_text(f"Alex Morgan, from {local:%a %-d %b %Y}, 10:00 AM – 10:50 AM")
    clinic.goto(f"{base_url}/clinic/calendar?date={local.date().isoformat()}")
    expect(clinic.locator(f"#appointment-{appointment.id} .when")).to_have_text("2:00 PM – 2:50 PM")
    clinic.screenshot(path=str(ARTIFACTS / "online-change-calendar.png"), full_page=True)
    assert script_errors == []
