"""Two people in the video room, in two real browsers: headless Debian Chromium with a fake
camera and microphone, driven by Playwright, against the portal served from a thread of this
test process. Time cannot be frozen across a browser, so the appointment is booked around the
real clock, and "time passes the window" is the appointment's end moved into the past."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from practice.appointments import create_appointment, move_appointment
from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.clock import utcnow
from practice.models import Appointment, AuditEvent, Practice
from practice.telehealth import join_url
from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = pytest.mark.browser

CONNECTING = 30_000  # ms: ICE on loopback takes a moment on a busy two-core machine
# Their picture has arrived and is moving (the time stamp is the one it had a moment ago).
REMOTE_PLAYING = """since => {
    const video = document.getElementById("remote-video");
    return video.videoWidth > 0 && !video.paused && video.currentTime > since;
}"""


@pytest.fixture
def database_url(tmp_path):
    """Once, on SQLite: the room's database rules are tested on both backends elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def live_portal_config():
    return {"TELEHEALTH_POLL_SECONDS": 2}


@pytest.fixture
def chromium_args():
    """A fake camera and microphone, and no permission prompt for them."""
    return ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def open_browser(chromium, script_errors):
    """A browser of its own (its own cookies), as a second person on another computer."""
    context = chromium.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    return page


def expect_connected(page, name):
    expect(page.locator("#room-status")).to_have_text(f"Connected with {name}.", timeout=CONNECTING)
    page.wait_for_function(REMOTE_PLAYING, arg=0, timeout=CONNECTING)
    since = page.evaluate('document.getElementById("remote-video").currentTime')
    page.wait_for_function(REMOTE_PLAYING, arg=since, timeout=CONNECTING)


def connection_of(page) -> str:
    return page.locator("#room").get_attribute("data-connection")


def test_clinician_and_client_see_each_other_and_get_back_in_and_the_window_closes_behind_them(
        live_portal, chromium):
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy", contact_email="office@willow.example").execute()
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    alex = add_client("alex@example.com", "Alex Morgan")
    now = utcnow()
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=alex, starts_at=now - timedelta(minutes=5),
                                         ends_at=now + timedelta(minutes=45))
        link = join_url(appointment)
    assert link.startswith(f"{base_url}/t/")
    script_errors = []

    # The clinician signs in and enters from the clinic side; nobody else is there yet.
    clinician = open_browser(chromium, script_errors)
    clinician.goto(f"{base_url}/clinic/sign-in")
    clinician.get_by_label("Email").fill("dana@example.com")
    clinician.get_by_label("Password").fill(PASSWORD)
    clinician.get_by_role("button", name="Sign in").click()
    clinician.goto(f"{base_url}/clinic/appointments/{appointment.id}/join")
    expect(clinician.get_by_role("heading", level=1)).to_have_text("Video session with Alex Morgan")
    clinician.get_by_role("button", name="Join", exact=True).click()
    expect(clinician.locator("#room-status")).to_have_text("Waiting for Alex Morgan to join…")
    # Own preview. A function, not an expression: Playwright re-evaluates an expression with
    # eval() while it waits, which our Content-Security-Policy (rightly) refuses.
    clinician.wait_for_function('() => document.getElementById("local-video").videoWidth > 0')

    # The client opens the link from the email and joins: each sees the other.
    client = open_browser(chromium, script_errors)
    client.goto(link)
    expect(client.get_by_role("heading", level=1)).to_have_text("Video session with Dana Hale")
    client.get_by_role("button", name="Join", exact=True).click()
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")
    client.screenshot(path=ARTIFACTS / "telehealth-room.png")

    # Mute and camera switches act on what is sent.
    client.get_by_role("button", name="Mute").click()
    expect(client.get_by_role("button", name="Unmute")).to_be_visible()
    assert client.evaluate('document.getElementById("local-video").srcObject.getAudioTracks()[0].enabled') is False
    client.get_by_role("button", name="Unmute").click()
    client.get_by_role("button", name="Turn camera off").click()
    assert client.evaluate('document.getElementById("local-video").srcObject.getVideoTracks()[0].enabled') is False
    client.get_by_role("button", name="Turn camera on").click()

    # The client reloads (a dropped connection): back in the same room, with the clinician.
    before = connection_of(client)
    client.reload()
    assert connection_of(client) != before
    expect(clinician.locator("#room")).to_have_attribute("data-peer", connection_of(client), timeout=CONNECTING)
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")

    # A third browser with the client's link, while both are in.
    third = open_browser(chromium, script_errors)
    third.goto(link)
    third.get_by_role("button", name="Join", exact=True).click()
    expect(third.get_by_role("heading", level=1)).to_have_text("This session already has its participants")

    # Time passes the window: the appointment's end is now 31 minutes ago (grace 30).
    now = utcnow()
    with app.app_context():
        move_appointment(Appointment.get_by_id(appointment.id), starts_at=now - timedelta(hours=1),
                         ends_at=now - timedelta(minutes=31))
    # Both pages hear of it through their next poll, which the closed window did not refuse...
    expect(client.locator("#room-closing")).to_be_visible(timeout=CONNECTING)
    expect(clinician.locator("#room-closing")).to_be_visible(timeout=CONNECTING)
    # ...and they are still connected, their pictures still moving.
    expect_connected(client, "Dana Hale")
    expect_connected(clinician, "Alex Morgan")
    # A new entry is refused.
    third.goto(link)
    expect(third.get_by_text("This session ended at")).to_be_visible()
    expect(third.get_by_text("office@willow.example")).to_be_visible()
    third.screenshot(path=ARTIFACTS / "telehealth-ended.png")
    expect(third.get_by_role("button", name="Join", exact=True)).to_have_count(0)

    # The client leaves and cannot come back; the clinician stays, waiting.
    client.get_by_role("button", name="Leave").click()
    expect(client.get_by_text("You have left the session.")).to_be_visible()
    expect(client.get_by_text("This session ended at")).to_be_visible()
    expect(client.get_by_role("button", name="Join", exact=True)).to_have_count(0)
    expect(clinician.locator("#room-status")).to_have_text("Alex Morgan has left. Waiting for them to come back…")
    client.goto(link + "/room")
    expect(client.get_by_text("This session ended at")).to_be_visible()

    assert script_errors == []
    events = [(e.kind, e.detail.split(": ")[-1]) for e in
              AuditEvent.select().where(AuditEvent.kind.startswith("telehealth_")).order_by(AuditEvent.id)]
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["telehealth_entered", "telehealth_entered"]  # the clinician, the client
    assert kinds.count("telehealth_rejoined") == 1  # the reload (its page-closed goodbye may lose the race)
    assert [detail for kind, detail in events if kind == "telehealth_refused"] == ["full", "closed"]
    assert kinds[-2:] == ["telehealth_left", "telehealth_refused"]  # Leave, then the door is shut


@pytest.mark.parametrize("browser_lacks, message", [
    ("navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', "
     "'NotAllowedError'));",
     "Your browser did not allow this page to use your camera and microphone."),
    ("delete window.RTCPeerConnection;",
     "This browser cannot make video calls. Please open the link in a recent Chrome, Edge, Firefox or Safari."),
], ids=["camera refused", "no WebRTC"])
def test_the_room_says_plainly_when_the_camera_is_refused_or_webrtc_is_missing(live_portal, chromium,
                                                                              browser_lacks, message):
    app, base_url = live_portal
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    now = utcnow()
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=add_client("alex@example.com", "Alex Morgan"),
                                         starts_at=now, ends_at=now + timedelta(minutes=50))
        link = join_url(appointment)
    script_errors = []
    client = open_browser(chromium, script_errors)
    client.add_init_script(browser_lacks)  # what this browser, or the person, refuses
    client.goto(link)
    client.get_by_role("button", name="Join", exact=True).click()
    expect(client.locator("#room-status")).to_contain_text(message)
    expect(client.get_by_role("button", name="Leave")).to_be_enabled()
    assert script_errors == []


def test_the_countdown_turns_into_join_by_itself(live_portal, chromium):
    app, base_url = live_portal
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    starts = utcnow() + timedelta(minutes=15, seconds=4)  # entry opens in 4 seconds
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=add_client("alex@example.com", "Alex Morgan"),
                                         starts_at=starts, ends_at=starts + timedelta(minutes=50))
        link = join_url(appointment)
    script_errors = []
    client = open_browser(chromium, script_errors)
    client.goto(link)
    expect(client.get_by_text("You can join from")).to_contain_text("in less than a minute")
    expect(client.get_by_role("button", name="Join", exact=True)).to_have_count(0)
    client.evaluate("window.stillTheSamePage = true")
    expect(client.get_by_role("button", name="Join", exact=True)).to_be_visible(timeout=15_000)
    assert client.evaluate("window.stillTheSamePage") is True  # swapped in place, not reloaded
    assert script_errors == []
