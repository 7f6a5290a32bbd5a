"""The video waiting room in two real browsers: the client waits ("Dana Hale will let you in
shortly"), the clinician sees "Alex Morgan is waiting (since …)" in the room and on the
calendar, presses Let in, and both connect; a second visit within the window skips the wait."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.clock import utcnow
from practice.models import AuditEvent, Practice
from practice.telehealth import join_url
from tests.conftest import ARTIFACTS, PASSWORD
from tests.test_browser_telehealth import (CONNECTING, chromium_args, database_url,  # noqa: F401 (fixtures)
                                           expect_connected, live_portal_config, open_browser)

pytestmark = pytest.mark.browser


def sign_in(page, base_url, email):
    page.goto(f"{base_url}/clinic/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_the_clinician_lets_the_waiting_client_in_and_a_second_visit_skips_the_wait(live_portal, chromium):
    app, base_url = live_portal
    Practice.update(room_entry="waiting_room").execute()
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    now = utcnow()
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=add_client("alex@example.com", "Alex Morgan"),
                                         starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(minutes=45))
        link = join_url(appointment)
    script_errors = []

    # The client arrives first and waits, seeing their own camera.
    client = open_browser(chromium, script_errors)
    client.goto(link)
    client.get_by_role("button", name="Join", exact=True).click()
    expect(client.locator("#room-status")).to_have_text("Dana Hale will let you in shortly.")
    client.wait_for_function('() => document.getElementById("local-video").videoWidth > 0')
    client.screenshot(path=ARTIFACTS / "telehealth-waiting-room.png")

    # The clinician's calendar says who is waiting, live; so does the room once she is in it.
    clinician = open_browser(chromium, script_errors)
    sign_in(clinician, base_url, "dana@example.com")
    waiting = re.compile(r"Alex Morgan is waiting \(since \d{1,2}:\d\d [AP]M\)\.")
    expect(clinician.locator(f"#appointment-{appointment.id}")).to_contain_text(waiting)
    clinician.goto(f"{base_url}/clinic/appointments/{appointment.id}/join")
    expect(clinician.locator(f"#waiting-{appointment.id}")).to_contain_text(waiting)
    clinician.get_by_role("button", name="Join", exact=True).click()
    expect(clinician.locator("#room-status")).to_have_text("Waiting for Alex Morgan to join…")
    expect(clinician.locator(f"#waiting-{appointment.id}")).to_contain_text(waiting)
    clinician.screenshot(path=ARTIFACTS / "telehealth-waiting-clinician.png")
    clinician.set_viewport_size({"width": 375, "height": 800})
    clinician.screenshot(path=ARTIFACTS / "telehealth-waiting-clinician-375.png")
    clinician.set_viewport_size({"width": 1100, "height": 800})
    expect(client.locator("#room-status")).to_have_text("Dana Hale will let you in shortly.")  # still waiting

    clinician.get_by_role("button", name="Let in").click()

    expect(clinician.locator(f"#waiting-{appointment.id}")).to_have_text("Alex Morgan is in the session.",
                                                                         timeout=CONNECTING)
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")

    # A second visit within the window (the client's page closed and opened again): straight in.
    client.close()
    again = open_browser(chromium, script_errors)
    again.goto(link)
    again.get_by_role("button", name="Join", exact=True).click()
    expect_connected(again, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")
    assert script_errors == []
    assert AuditEvent.select().where(AuditEvent.kind == "telehealth_let_in").count() == 1
