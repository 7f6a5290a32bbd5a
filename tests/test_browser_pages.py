"""Pages that must look finished, in headless Chromium at 1280 and 375 px: settings, a client's
page, the dev mailbox."""
import re

import pytest
from playwright.sync_api import expect

from practice.models import Clinician, Practice
from practice.sessions import start_session
from tests.conftest import ARTIFACTS, clinician

pytestmark = pytest.mark.browser

WIDTHS = [1280, 375]


@pytest.fixture
def database_url(tmp_path):
    """Once, on SQLite: what a page looks like does not depend on the database."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def as_admin(live_portal, chromium):
    """A tab of a signed-in admin at a given width: as_admin(width) -> (page, base_url)."""
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy", timezone="Europe/London", contact_email="hello@willow.example").execute()
    dana = Clinician.get_or_none(Clinician.email == "dana@example.com") or clinician(
        "dana@example.com", "Dana Hale", is_admin=True)
    contexts = []

    def open_tab(width):
        context = chromium.new_context(viewport={"width": width, "height": 800})
        context.set_default_timeout(10_000)
        context.add_cookies([{"name": app.config["PORTAL_SESSION_COOKIE"], "value": start_session(clinician=dana)[0],
                              "url": base_url}])
        contexts.append(context)
        return context.new_page(), base_url

    yield open_tab
    for context in contexts:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_settings_inputs_share_one_height_and_the_zone_list_reads_as_words(as_admin, width):
    page, base = as_admin(width)
    page.goto(f"{base}/clinic/settings")
    heights = {name: page.locator(f"[name={name}]").bounding_box()["height"]
               for name in ("name", "timezone", "sign_in_link_hours", "client_idle_minutes", "quiet_hours_start")}
    assert max(heights.values()) - min(heights.values()) <= 2, heights
    zone = page.get_by_label("Time zone")
    expect(zone.locator("optgroup").first).to_have_attribute("label", "Common time zones")
    expect(zone.locator("option[value='America/New_York']")).to_have_text("Eastern Time — New York")
    assert zone.locator("option[value='Factory'], option[value='localtime'], option[value^='Etc/']").count() == 0
    expect(page.get_by_label("Sign-in link lifetime")).to_have_value("24")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=ARTIFACTS / f"settings-{width}.png", full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_settings_error_is_summarised_at_the_top_focused_and_linked_to_its_field(as_admin, width):
    page, base = as_admin(width)
    page.goto(f"{base}/clinic/settings")
    page.get_by_label("Quiet hours end").fill("8am")
    page.get_by_role("button", name="Save settings").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    assert summary.bounding_box()["y"] < 800  # on the first screen, whatever the field's place
    summary.get_by_role("link", name="Use a 24-hour time like 21:00.").click()
    expect(page.get_by_label("Quiet hours end")).to_be_focused()
    page.screenshot(path=ARTIFACTS / f"settings-error-{width}.png", full_page=False)


ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
           "Mobile Safari/537.36")


@pytest.fixture
def busy_client(live_portal):
    """Alex, with a phone, a video session on now that was full to a second browser, one booked
    tomorrow and made longer, a link used from an Android phone, a session signed out and one live."""
    from datetime import timedelta

    from practice.appointments import create_appointment, move_appointment
    from practice.clients import add_client
    from practice.clock import utcnow
    from practice.links import issue_link, open_link, redeem_link
    from practice.sessions import end_session
    from practice.telehealth import EntryRefused, enter_room
    dana = Clinician.get_or_none(Clinician.email == "dana@example.com") or clinician(
        "dana@example.com", "Dana Hale", is_admin=True)
    alex = add_client("alex@example.com", "Alex Morgan", clinician=dana, phone="+44 20 7946 0958")
    now = utcnow().replace(second=0)
    on_now = create_appointment(clinician=dana, client=alex, starts_at=now - timedelta(minutes=5),
                                ends_at=now + timedelta(minutes=45), kind="telehealth", by=dana)
    enter_room(on_now, "client", "alexs-phone")
    with pytest.raises(EntryRefused):
        enter_room(on_now, "client", "someone-elses-laptop")
    tomorrow = create_appointment(clinician=dana, client=alex, starts_at=now + timedelta(days=1),
                                  ends_at=now + timedelta(days=1, minutes=50), kind="telehealth", by=dana)
    move_appointment(tomorrow, starts_at=tomorrow.starts_at, ends_at=tomorrow.ends_at + timedelta(minutes=15), by=dana)
    issued = issue_link(alex, "client_request")
    open_link(issued.token, method="GET", ip="198.51.100.7", agent=ANDROID)
    redeem_link(issued.token, ip="198.51.100.7")
    end_session(start_session(client=alex, ip="198.51.100.7", user_agent=ANDROID)[1], "signed_out")
    start_session(client=alex, ip="198.51.100.7", user_agent=ANDROID)
    return alex


@pytest.mark.parametrize("width", WIDTHS)
def test_a_clients_first_screen_shows_contact_the_next_appointment_and_the_link_state(as_admin, busy_client, width):
    page, base = as_admin(width)
    page.goto(f"{base}/clinic/clients/{busy_client.id}")
    first_screen = 800
    summary = page.locator(".client-summary")
    for shown in (summary.get_by_role("link", name="alex@example.com"), summary.get_by_text("+44 20 7946 0958"),
                  summary.locator("ul.upcoming li").first, summary.locator(".link-state"),
                  summary.get_by_role("button", name="Send sign-in link")):
        expect(shown).to_be_visible()
        box = shown.bounding_box()
        if box["y"] + box["height"] > first_screen:
            page.screenshot(path=ARTIFACTS / f"client-page-{width}.png", full_page=True)
        assert box["y"] + box["height"] <= first_screen, (shown, box)
    expect(summary.locator("ul.upcoming li").first).to_contain_text("Today at")
    expect(summary.locator(".link-state")).to_have_text(re.compile(
        r"^The latest sign-in link, made today at .+, was used to sign in today at .+\.$"))
    expect(summary.locator(".signed-in-now")).to_have_text("Signed in now on 1 device (Chrome on Android).")
    text = page.locator("main").inner_text()
    for code in ("(signed_out)", "(full)", "Z–", "(by link)", "Mozilla/5.0", "(GET)", "as client"):
        assert code not in text, code
    activity = page.locator("table.events")
    expect(activity).to_contain_text("Could not join the video session: it already had its participants")
    expect(activity).to_contain_text("Appointment changed: now")
    expect(page.locator("#link-1")).to_contain_text("in Chrome on Android, from 198.51.100.7")
    ip = activity.locator("td", has_text="198.51.100.7").first
    assert ip.evaluate("td => td.scrollWidth <= td.clientWidth && getComputedStyle(td).whiteSpace") == "nowrap"
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=ARTIFACTS / f"client-page-{width}.png", full_page=True)


@pytest.fixture
def live_portal_config():
    """No mail server: mail is kept for the dev mailbox."""
    return {"MAIL_SERVER": None}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_dev_mailbox_shows_the_html_part_sandboxed_the_headers_and_a_downloadable_ics(
        live_portal, chromium, busy_client, width):
    from practice import jobs
    from practice.models import Email
    app, base = live_portal
    with app.app_context():
        jobs.mail_tick()
    booked = Email.select().where(Email.kind == "appointment_confirmed").order_by(Email.id).first()
    context = chromium.new_context(viewport={"width": width, "height": 800}, accept_downloads=True)
    try:
        page = context.new_page()
        page.goto(f"{base}/dev/mailbox")
        page.get_by_role("link", name=booked.subject).first.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(booked.subject)
        headers = page.locator("dl.headers")
        for name in ("From", "To", "Reply-To", "Message-ID"):
            expect(headers.locator("dt", has_text=name).first).to_be_visible()
        expect(headers).to_contain_text(booked.message_id)
        frame_element = page.locator("iframe.email-html")
        sandbox = frame_element.get_attribute("sandbox")
        assert sandbox is not None and "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox
        frame = page.frame_locator("iframe.email-html")
        expect(frame.locator("body")).to_contain_text("Alex")
        html = page.request.get(base + frame_element.get_attribute("src"))
        assert "sandbox" in html.headers["content-security-policy"]
        assert "script-src" not in html.headers["content-security-policy"]  # none: default-src 'none'
        with page.expect_download() as download:
            page.get_by_role("link", name="appointment.ics").click()
        saved = download.value
        assert saved.suggested_filename == "appointment.ics"
        assert "BEGIN:VCALENDAR" in open(saved.path(), encoding="utf-8").read()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.screenshot(path=ARTIFACTS / f"dev-message-{width}.png", full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_logo_set_in_settings_shows_beside_the_name_on_client_and_clinician_pages(as_admin, tmp_path, width):
    from tests.test_settings_page import PNG
    page, base = as_admin(width)
    page.goto(f"{base}/clinic/settings")
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    page.get_by_label("Logo image").set_input_files(str(logo))
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("status")).to_contain_text("The new logo is saved")
    brand = page.locator("header.site .brand")
    expect(brand.locator("img.logo")).to_be_visible()
    expect(brand).to_contain_text("Willow Street Therapy")
    image, name = brand.locator("img.logo").bounding_box(), brand.locator(".brand-name").bounding_box()
    assert image["x"] + image["width"] <= name["x"] and abs((image["y"] + image["height"] / 2)
                                                            - (name["y"] + name["height"] / 2)) < 6
    client_page = page.context.browser.new_context(viewport={"width": width, "height": 800}).new_page()
    client_page.goto(f"{base}/sign-in")
    expect(client_page.locator("header.site .brand img.logo")).to_be_visible()
    expect(client_page.locator("header.site .brand")).to_contain_text("Willow Street Therapy")
    assert client_page.evaluate("document.documentElement.scrollWidth") <= width
    client_page.screenshot(path=ARTIFACTS / f"sign-in-logo-{width}.png")
    client_page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_setup_page_says_the_password_needs_12_characters_before_refusing_one(live_portal, chromium, width):
    app, base = live_portal
    context = chromium.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{base}/clinic/setup")
        password = page.get_by_label("Password", exact=True)
        expect(password).to_have_attribute("minlength", "12")
        expect(password).to_have_accessible_description(re.compile(r"^At least 12 characters"))
        expect(page.locator("#password-hint")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()
