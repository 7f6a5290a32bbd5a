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


# Each person's "camera" is a canvas of one colour (a dot moves on it, so frames keep coming),
# and the microphone Chromium's fake one: whose picture a room shows is then plain to see.
PAINTED_CAMERA = """(() => {
  const colour = %r;
  const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const canvas = document.createElement("canvas");
    canvas.width = 320;
    canvas.height = 240;
    const paint = canvas.getContext("2d");
    let step = 0;
    setInterval(() => {
      paint.fillStyle = colour;
      paint.fillRect(0, 0, 320, 240);
      paint.fillStyle = "#000";
      paint.fillRect((step += 4) %% 300, 5, 10, 10);
    }, 40);
    const stream = canvas.captureStream(25);
    if (constraints && constraints.audio) {
      (await getUserMedia({ audio: true })).getAudioTracks().forEach((track) => stream.addTrack(track));
    }
    return stream;
  };
})();"""
REMOTE_COLOUR = """() => {
  const video = document.getElementById("remote-video");
  if (!video.videoWidth) { return null; }
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const paint = canvas.getContext("2d");
  paint.drawImage(video, 0, 0);
  return Array.from(paint.getImageData(canvas.width / 2, canvas.height * 3 / 4, 1, 1).data.slice(0, 3));
}"""
COLOURS = {"red": (230, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 230), "yellow": (230, 220, 30)}


def nearest_colour(rgb) -> str:
    return min(COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in zip(COLOURS[name], rgb)))


def painted_browser(chromium, script_errors, colour):
    page = open_browser(chromium, script_errors)
    page.add_init_script(PAINTED_CAMERA % ("rgb(%d, %d, %d)" % COLOURS[colour]))
    return page


def test_two_rooms_at_once_on_one_coturn_each_see_only_their_own_peer(live_portal, chromium, coturn):
    app, base_url = live_portal
    script_errors = []
    now = utcnow()
    rooms = []
    for clinician_name, email, client_name, colours in [
            ("Dana Hale", "dana@example.com", "Alex Morgan", ("red", "green")),
            ("Kim Park", "kim@example.com", "Sam Rivera", ("blue", "yellow"))]:
        clinician = create_clinician(email, clinician_name, PASSWORD, is_admin=False)
        with app.app_context():
            appointment = create_appointment(
                clinician=clinician, client=add_client(client_name.split()[0].lower() + "@example.com", client_name),
                starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(minutes=45))
            link = join_url(appointment)
        clinician_page = painted_browser(chromium, script_errors, colours[0])
        clinician_page.goto(f"{base_url}/clinic/sign-in")
        clinician_page.get_by_label("Email").fill(email)
        clinician_page.get_by_label("Password").fill(PASSWORD)
        clinician_page.get_by_role("button", name="Sign in").click()
        clinician_page.goto(f"{base_url}/clinic/appointments/{appointment.id}/join")
        clinician_page.get_by_role("button", name="Join", exact=True).click()
        client_page = painted_browser(chromium, script_errors, colours[1])
        client_page.goto(link)
        client_page.get_by_role("button", name="Join", exact=True).click()
        rooms.append((clinician_page, clinician_name, colours[0], client_page, client_name, colours[1]))

    for clinician_page, clinician_name, clinician_colour, client_page, client_name, client_colour in rooms:
        expect_connected(clinician_page, client_name)
        expect_connected(client_page, clinician_name)
        for page in (clinician_page, client_page):
            expect(page.locator("#room")).to_have_attribute("data-route", "relay", timeout=CONNECTING)
        # Each page talks to its own room's other page, and shows that person's picture.
        assert clinician_page.locator("#room").get_attribute("data-peer") == \
            client_page.locator("#room").get_attribute("data-connection")
        assert client_page.locator("#room").get_attribute("data-peer") == \
            clinician_page.locator("#room").get_attribute("data-connection")
        assert nearest_colour(clinician_page.evaluate(REMOTE_COLOUR)) == client_colour
        assert nearest_colour(client_page.evaluate(REMOTE_COLOUR)) == clinician_colour
    rooms[1][3].screenshot(path=ARTIFACTS / "telehealth-two-rooms.png")
    seats = list(RoomSeat.select())
    assert len(seats) == 4
    assert all(coturn.allocations_for_seat(seat.id) >= 1 for seat in seats), coturn.log()[-3000:]
    assert script_errors == []
