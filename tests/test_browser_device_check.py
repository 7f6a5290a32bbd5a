"""The join page's camera and microphone check, in headless Chromium with its fake devices
(a camera, several microphones and speakers, no permission prompt): a preview, a level that
moves, a test sound, a choice that the room opens with, and plain words when the browser
refuses (for the browser the person is using)."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.clock import utcnow
from practice.telehealth import join_url
from tests.conftest import ARTIFACTS, PASSWORD
from tests.test_browser_telehealth import chromium_args, database_url, open_browser  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

LEVEL_MOVES = """() => document.getElementById("check-level").value > 0.05"""


@pytest.fixture
def link(live_portal):
    app, _ = live_portal
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    now = utcnow()
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=add_client("alex@example.com", "Alex Morgan"),
                                         starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(minutes=55))
        return join_url(appointment)


def test_the_client_checks_camera_microphone_and_speaker_and_the_room_uses_the_choice(link, chromium):
    script_errors = []
    client = open_browser(chromium, script_errors)
    client.goto(link)
    check = client.get_by_role("region", name="Check your camera and microphone")
    check.get_by_role("button", name="Test camera and microphone").click()
    expect(client.locator("#check-status")).to_have_text(
        "Your camera and microphone work. Speak to see the level move, then press Join when it is time.")
    client.wait_for_function('() => document.getElementById("check-preview").videoWidth > 0')
    client.wait_for_function(LEVEL_MOVES)  # Chromium's fake microphone beeps

    microphones = check.get_by_label("Microphone", exact=True)
    options = microphones.locator("option")
    assert options.count() >= 2, "Chromium's fake devices include several microphones"
    other = options.nth(options.count() - 1)
    other_id, other_name = other.get_attribute("value"), other.text_content()
    microphones.select_option(other_id)
    client.wait_for_function(f'() => document.getElementById("check-preview").srcObject'
                             f'.getAudioTracks()[0].getSettings().deviceId === "{other_id}"')
    client.wait_for_function(LEVEL_MOVES)
    expect(check.get_by_label("Speaker")).to_be_visible()
    check.get_by_role("button", name="Play a test sound").click()
    expect(client.locator("#check-status")).to_contain_text("Playing a test sound.")
    expect(check.get_by_label("Camera", exact=True)).to_have_value(
        client.evaluate('document.getElementById("check-preview").srcObject.getVideoTracks()[0]'
                        '.getSettings().deviceId'))
    client.screenshot(path=ARTIFACTS / "telehealth-device-check.png", full_page=True)
    client.set_viewport_size({"width": 375, "height": 812})
    client.screenshot(path=ARTIFACTS / "telehealth-device-check-375.png", full_page=True)
    assert client.evaluate("document.documentElement.scrollWidth") <= 375

    # Join: the room opens with the microphone chosen here.
    client.get_by_role("button", name="Join", exact=True).click()
    expect(client.locator("#room-status")).to_have_text("Waiting for Dana Hale to join…")
    assert client.evaluate('document.getElementById("local-video").srcObject.getAudioTracks()[0]'
                           '.getSettings().deviceId') == other_id, other_name
    assert script_errors == []


SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.4 Mobile/15E148 Safari/604.1")
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
              "Safari/605.1.15")
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
          "Safari/537.36")
CHROME_ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Mobile Safari/537.36")


@pytest.mark.parametrize("agent, advice", [
    (CHROME, "Click the camera icon at the right of the address bar"),
    (CHROME_ANDROID, "In Chrome, tap the icon left of the address, then Permissions"),
    (SAFARI_MAC, "In Safari, open the Safari menu, then Settings for this website"),
    (SAFARI_IPHONE, "In Safari, tap “aA” in the address bar, then Website Settings"),
    (FIREFOX, "In Firefox, click the crossed-out camera by the address"),
    (FIREFOX_ANDROID, "In Firefox, tap the lock by the address"),
], ids=["chrome", "chrome-android", "safari-mac", "safari-iphone", "firefox", "firefox-android"])
def test_a_refused_camera_is_explained_for_the_browser_in_use(link, chromium, agent, advice):
    context = chromium.new_context(user_agent=agent, viewport={"width": 1100, "height": 800})
    client = context.new_page()
    client.add_init_script("navigator.mediaDevices.getUserMedia = () => Promise.reject("
                           "new DOMException('Permission denied', 'NotAllowedError'));")
    client.goto(link)
    client.get_by_role("button", name="Test camera and microphone").click()
    status = client.locator("#check-status")
    expect(status).to_contain_text("Your browser did not allow this page to use your camera and microphone.")
    expect(status).to_contain_text(advice)
    expect(status).to_contain_text("then reload this page.")
    context.close()


def test_no_camera_or_microphone_at_all_says_what_to_do(link, chromium):
    client = open_browser(chromium, [])
    client.add_init_script("navigator.mediaDevices.getUserMedia = () => Promise.reject("
                           "new DOMException('Requested device not found', 'NotFoundError'));")
    client.goto(link)
    client.get_by_role("button", name="Test camera and microphone").click()
    expect(client.locator("#check-status")).to_have_text(
        "No camera or microphone was found. Connect one (or switch it on), then press the button again.")


def test_a_device_chosen_before_but_unplugged_since_gives_way_to_the_default(link, chromium):
    script_errors = []
    client = open_browser(chromium, script_errors)
    client.goto(link)
    client.evaluate("""() => localStorage.setItem("portico.devices",
                                                 JSON.stringify({camera: "unplugged", microphone: "unplugged"}))""")
    client.get_by_role("button", name="Join", exact=True).click()
    expect(client.locator("#room-status")).to_have_text("Waiting for Dana Hale to join…")
    client.wait_for_function('() => document.getElementById("local-video").videoWidth > 0')
    assert script_errors == []
