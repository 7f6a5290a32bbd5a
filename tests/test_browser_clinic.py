"""A clinician's calendar in a real browser: headless Debian Chromium, driven by Playwright,
against the portal served from a thread of this test process, on the real clock."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.models import Appointment, Client, Practice
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = pytest.mark.browser

ZONE = "Europe/London"


@pytest.fixture
def database_url(tmp_path):
    """The browser journey runs once, on SQLite: the database rules are tested elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


def test_clinician_books_a_telehealth_session_and_extends_it_without_a_reload(live_portal, page):
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy", timezone=ZONE).execute()
    kim = create_clinician("kim@example.com", "Kim Park", PASSWORD)
    alex = add_client("alex@example.com", "Alex Morgan")
    Client.update(clinician=kim).where(Client.id == alex.id).execute()
    tomorrow = (datetime.now(timezone.utc).astimezone(ZoneInfo(ZONE)) + timedelta(days=1)).date()
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    page.goto(f"{base_url}/clinic/sign-in")
    page.get_by_label("Email").fill("kim@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base_url}/clinic/calendar")

    # Book tomorrow 10:00–10:50, telehealth, through the form.
    page.get_by_role("link", name="New appointment").click()
    page.get_by_label("Client").select_option(label="Alex Morgan")
    page.get_by_label("Date").fill(tomorrow.isoformat())
    page.get_by_label("Start").fill("10:00")
    page.get_by_label("End", exact=True).fill("10:50")
    page.get_by_label("Kind").select_option(label="Telehealth")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(f"{base_url}/clinic/calendar?date={tomorrow.isoformat()}")
    expect(page.get_by_role("status")).to_contain_text("Booked: Alex Morgan")
    appointment = Appointment.get()
    card = page.locator(f"#appointment-{appointment.id}")
    expect(card.locator(".when")).to_have_text("10:00 AM – 10:50 AM")
    expect(card.locator(".link-band")).to_have_text("Link open 9:45 AM – 11:20 AM")

    # "+15 min": the card changes in place; the page is the same page (no reload, no navigation).
    page.evaluate("window.__marker = 1")
    card.get_by_role("button", name="+15 min").click()
    expect(card.locator(".when")).to_have_text("10:00 AM – 11:05 AM")
    expect(card.locator(".link-band")).to_have_text("Link open 9:45 AM – 11:35 AM")
    expect(card.get_by_label("End at")).to_have_value("11:05")
    assert page.evaluate("window.__marker") == 1
    expect(page).to_have_url(f"{base_url}/clinic/calendar?date={tomorrow.isoformat()}")
    assert Appointment.get_by_id(appointment.id).ends_at - appointment.ends_at == timedelta(minutes=15)
    page.screenshot(path=ARTIFACTS / "clinic-calendar-extended.png", full_page=True)

    assert script_errors == []
