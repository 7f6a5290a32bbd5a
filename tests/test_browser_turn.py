"""The video room through a real TURN relay: Debian's coturn on 127.0.0.1 with use-auth-secret,
two headless Chromiums with fake cameras forced to relay only (iceTransportPolicy "relay", a
test setting), so the call either goes through coturn with the credentials each seat was
given, or does not connect at all."""
import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.clock import utcnow
from practice.models import RoomSeat
from practice.telehealth import join_url
from practice.turn import turn_credentials
from tests._coturn import Coturn, SlowLink, require_coturn
from tests.conftest import ARTIFACTS, PASSWORD
from tests.test_browser_telehealth import (CONNECTING, chromium_args, database_url,  # noqa: F401 (fixtures)
                                           expect_connected, open_browser)

pytestmark = pytest.mark.browser

TURN_SECRET = "coturn-static-auth-secret"


@pytest.fixture
def coturn(tmp_path):
    require_coturn()
    server = Coturn(tmp_path, TURN_SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def portal_turn_secret():
    """The secret the portal mints with; a test gives it a wrong one."""
    return TURN_SECRET


@pytest.fixture
def slow_link(coturn):
    link = SlowLink(coturn.port)
    yield link
    link.close()


@pytest.fixture
def live_portal_config(request, coturn, portal_turn_secret):
    # A test that asks for the slow link reaches coturn through it.
    relay = request.getfixturevalue("slow_link") if "slow_link" in request.fixturenames else coturn
    return {"TELEHEALTH_POLL_SECONDS": 2, "TELEHEALTH_ICE_TRANSPORT_POLICY": "relay",
            "PORTAL_TURN_URLS": [relay.url], "PORTAL_TURN_SECRET": portal_turn_secret}


def both_in_the_room(live_portal, chromium, script_errors):
    """Dana (signed in) and Alex (with the emailed link) each press Join: (dana, alex)."""
    app, base_url = live_portal
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    now = utcnow()
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=add_client("alex@example.com", "Alex Morgan"),
                                         starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(minutes=45))
        link = join_url(appointment)
    clinician = open_browser(chromium, script_errors)
    clinician.goto(f"{base_url}/clinic/sign-in")
    clinician.get_by_label("Email").fill("dana@example.com")
    clinician.get_by_label("Password").fill(PASSWORD)
    clinician.get_by_role("button", name="Sign in").click()
    clinician.goto(f"{base_url}/clinic/appointments/{appointment.id}/join")
    clinician.get_by_role("button", name="Join", exact=True).click()
    expect(clinician.locator("#room-status")).to_have_text("Waiting for Alex Morgan to join…")
    client = open_browser(chromium, script_errors)
    client.goto(link)
    client.get_by_role("button", name="Join", exact=True).click()
    return clinician, client


def test_a_relay_only_call_goes_through_coturn_with_each_seats_own_credentials(live_portal, chromium, coturn):
    script_errors = []
    clinician, client = both_in_the_room(live_portal, chromium, script_errors)
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")
    # The pair in use is a relayed one (the only kind these browsers may use)...
    expect(client.locator("#room")).to_have_attribute("data-route", "relay", timeout=CONNECTING)
    expect(clinician.locator("#room")).to_have_attribute("data-route", "relay", timeout=CONNECTING)
    # ...and coturn granted allocations to both seats, each under its own username.
    seats = list(RoomSeat.select())
    assert len(seats) == 2
    assert all(coturn.allocations_for_seat(seat.id) >= 1 for seat in seats), coturn.log()[-3000:]
    client.screenshot(path=ARTIFACTS / "telehealth-relay.png")
    assert script_errors == []


@pytest.mark.parametrize("portal_turn_secret", ["not-the-secret-coturn-has"])
def test_with_a_wrong_turn_secret_the_room_says_why_the_call_cannot_connect(live_portal, chromium, coturn):
    script_errors = []
    clinician, client = both_in_the_room(live_portal, chromium, script_errors)
    for page in (client, clinician):
        expect(page.locator("#room-status")).to_have_text(
            "The call cannot connect: the practice's video relay server did not accept this room's sign-in. "
            "Please tell the practice, so they can check their video (TURN) settings.", timeout=CONNECTING)
    client.screenshot(path=ARTIFACTS / "telehealth-relay-refused.png")
    client.set_viewport_size({"width": 375, "height": 800})
    client.screenshot(path=ARTIFACTS / "telehealth-relay-refused-375.png")
    assert client.evaluate('document.getElementById("remote-video").videoWidth') == 0
    assert all(coturn.allocations_for_seat(seat.id) == 0 for seat in RoomSeat.select())
    assert "401" in coturn.log()  # coturn said Unauthorized
    assert script_errors == []


def test_coturn_refuses_an_expired_credential_and_takes_a_fresh_one(coturn):
    fresh = turn_credentials(TURN_SECRET, "7", timedelta(hours=2))
    expired = turn_credentials(TURN_SECRET, "8", timedelta(hours=2), now=utcnow() - timedelta(hours=2, seconds=5))
    assert coturn.try_allocation(*fresh)
    assert not coturn.try_allocation(*expired)
    assert coturn.allocations_for_seat(7) >= 1 and coturn.allocations_for_seat(8) == 0


def test_a_call_whose_relay_restarts_comes_back_without_a_reload(live_portal, chromium, coturn):
    script_errors = []
    clinician, client = both_in_the_room(live_portal, chromium, script_errors)
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")
    for page in (client, clinician):
        page.evaluate("window.stillTheSamePage = true")

    # The relay goes away (its allocations with it) and comes back a few seconds later, as a
    # network change or a relay restart does to a call.
    coturn.stop()
    broken = time.monotonic()
    expect(client.locator("#room-status")).to_contain_text("Reconnecting…", timeout=CONNECTING)
    expect(clinician.locator("#room-status")).to_contain_text("Reconnecting…", timeout=CONNECTING)
    noticed = time.monotonic() - broken
    client.screenshot(path=ARTIFACTS / "telehealth-reconnecting.png")
    coturn.start()
    back = time.monotonic()
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")
    took = time.monotonic() - back
    print(f"\nreconnect: noticed after {noticed:.1f}s, back {took:.1f}s after the relay returned, "
          f"{time.monotonic() - broken:.1f}s in all")
    assert client.evaluate("window.stillTheSamePage") is True  # no reload
    assert clinician.evaluate("window.stillTheSamePage") is True
    assert script_errors == []


def test_a_slow_connection_brings_a_hint_that_goes_when_it_recovers(live_portal, chromium, slow_link):
    script_errors = []
    clinician, client = both_in_the_room(live_portal, chromium, script_errors)
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")
    expect(client.locator("#room")).to_have_attribute("data-quality", "good", timeout=CONNECTING)
    expect(client.locator("#room-quality")).to_be_hidden()

    slow_link.delay = 0.15  # each way, on each side: a round trip of about 600 ms
    hint = client.locator("#room-quality")
    expect(hint).to_be_visible(timeout=CONNECTING)
    expect(hint).to_contain_text("The connection is poor")
    expect(client.locator("#room-status")).to_have_text("Connected with Dana Hale.")  # slow, not lost
    client.screenshot(path=ARTIFACTS / "telehealth-poor-connection.png")
    client.set_viewport_size({"width": 375, "height": 800})
    client.screenshot(path=ARTIFACTS / "telehealth-poor-connection-375.png")

    slow_link.delay = 0
    expect(hint).to_be_hidden(timeout=CONNECTING)
    assert script_errors == []
