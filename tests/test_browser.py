"""The client's sign-in journey in a real browser: headless Debian Chromium, driven by
Playwright, against the portal served from a thread of this test process."""
import re

import pytest
from playwright.sync_api import expect

from practice.clients import add_client
from practice.models import Practice
from tests.conftest import ARTIFACTS, code_from, deliver, text_part

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}


@pytest.fixture
def database_url(tmp_path):
    """The browser journey runs once, on SQLite: the database rules are tested elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


def latest_mail(smtp_server, address, count):
    messages = smtp_server.to(address)
    assert len(messages) == count, f"expected {count} emails to {address}, got {len(messages)}"
    return messages[-1]


def link_from(message, base_url):
    match = re.search(rf"{re.escape(base_url)}/s/[A-Za-z0-9_\-]+", text_part(message))
    assert match, "the email has no sign-in link to the live portal"
    return match.group(0)


def expect_portal_home(page, base_url, name):
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Hello, {name}")
    expect(page.get_by_role("heading", name="Upcoming appointments")).to_be_visible()
    expect(page.get_by_role("heading", name="Documents")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page).to_have_url(f"{base_url}/portal")


def test_client_signs_in_with_the_link_signs_out_and_back_in_with_the_code(live_portal, page, smtp_server):
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy").execute()
    address = "alex@example.com"
    add_client(address, "Alex Morgan")
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))

    # Ask for a link: the form answers in place (htmx), the page does not change.
    page.goto(f"{base_url}/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Willow Street Therapy")
    expect(page.get_by_text("You can bookmark this page")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "sign-in.png", full_page=True)
    page.get_by_label("Email address").fill(address)
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(
        "If that address belongs to a client of Willow Street Therapy, a sign-in link is on its way.")
    expect(page.get_by_role("heading", name="Enter the code from the email")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Willow Street Therapy")
    expect(page).to_have_url(f"{base_url}/sign-in")

    # The email arrives over SMTP; its link points at this server.
    deliver(app)
    link = link_from(latest_mail(smtp_server, address, 1), base_url)

    # Open it: the practice's name and one button; pressing it signs in.
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Willow Street Therapy")
    expect(page.get_by_role("button")).to_have_count(1)
    page.get_by_role("button", name="Continue to the portal").click()
    expect_portal_home(page, base_url, "Alex Morgan")
    page.screenshot(path=ARTIFACTS / "portal-home.png", full_page=True)

    # Sign out: back on the sign-in page, told so, the address ready for next time.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base_url}/sign-in")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    expect(page.get_by_label("Email address")).to_have_value(address)

    # The used link, opened again, says what happened and offers a new one (on a phone).
    page.set_viewport_size(PHONE)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link no longer works")
    expect(page.locator(".reason")).to_contain_text("This link was already used on")
    expect(page.get_by_label("Email address")).to_have_value(address)
    page.screenshot(path=ARTIFACTS / "link-used-phone.png", full_page=True)
    page.get_by_role("button", name="Send me a new link").click()
    expect(page.get_by_role("status")).to_contain_text("a sign-in link is on its way")
    expect(page.get_by_role("heading", name="Enter the code from the email")).to_be_visible()
    # Swapped in place (htmx, no page load), the dead-link heading and reason with the form.
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.get_by_text("This link no longer works")).to_have_count(0)
    expect(page.locator(".reason")).to_have_count(0)
    expect(page).to_have_url(link)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    page.screenshot(path=ARTIFACTS / "new-link-sent-phone.png", full_page=True)
    page.set_viewport_size(DESKTOP)

    # Sign in on this device with the code from the new email.
    deliver(app)
    new_mail = latest_mail(smtp_server, address, 2)
    assert link_from(new_mail, base_url) != link
    page.get_by_label("Code from the email").fill(code_from(new_mail))
    page.get_by_role("button", name="Sign in with the code").click()
    expect_portal_home(page, base_url, "Alex Morgan")

    assert script_errors == []
