"""A client fills in and submits the intake questionnaire in a real browser: headless Debian
Chromium, driven by Playwright, against the portal served from a thread of this test process."""
import json
import re

import pytest
from playwright.sync_api import expect

from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.documents import share_documents
from practice.models import DocumentShare, DocumentTemplate
from tests.conftest import ARTIFACTS, PASSWORD, deliver, text_part

pytestmark = pytest.mark.browser

@pytest.fixture
def database_url(tmp_path):
    """The browser journey runs once, on SQLite: the database rules are tested elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


def test_client_fills_in_and_submits_the_intake_form(live_portal, page, smtp_server):
    app, base_url = live_portal
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    alex = add_client("alex@example.com", "Alex Morgan", clinician=dana)
    intake = DocumentTemplate.get(DocumentTemplate.title == "Intake questionnaire")
    with app.app_context():
        [share] = share_documents(alex, [intake.id], by=dana)
    problems = []  # script errors and CSP refusals ("Refused to ..."), not the 422 we mean to answer
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)

    # The email's link, then Continue: straight onto the questionnaire.
    deliver(app)
    [message] = smtp_server.to("alex@example.com")
    link = re.search(rf"{re.escape(base_url)}/s/[A-Za-z0-9_\-]+", text_part(message)).group(0)
    page.goto(link)
    page.get_by_role("button", name="Continue to the portal").click()
    expect(page).to_have_url(f"{base_url}/portal/documents/{share.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Intake questionnaire")

    # Typing saves a draft (htmx): the status says so, and a reload keeps what was typed.
    page.get_by_label("Full name", exact=True).fill("Alex Morgan")
    expect(page.locator("#draft-status")).to_contain_text("Saved at")
    page.reload()
    expect(page.get_by_label("Full name", exact=True)).to_have_value("Alex Morgan")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")

    page.get_by_label("Date of birth").fill("1990-04-21")
    page.get_by_label("What brings you to therapy now?").fill("Trouble sleeping since the spring.")
    page.get_by_role("group", name="Have you had counselling or therapy before?").get_by_label("No", exact=True).check()
    contact = page.get_by_role("group", name="How may we contact you? (optional)")
    contact.get_by_label("Email").check()
    contact.get_by_label("Text message").check()
    page.get_by_label("Type your full name to sign").fill("Alex Morgan")
    page.screenshot(path=ARTIFACTS / "document-form.png", full_page=True)

    # Submitting without the emergency contact: the message is beside that field, nothing is lost.
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("alert")).to_contain_text("Please check the answer marked below.")
    emergency = page.get_by_label("Emergency contact (name and phone number)")
    expect(emergency).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f4-error")).to_have_text("Please fill this in.")
    expect(page.get_by_label("What brings you to therapy now?")).to_have_value("Trouble sleeping since the spring.")
    expect(page.get_by_role("group", name="How may we contact you? (optional)").get_by_label("Text message")).to_be_checked()
    page.screenshot(path=ARTIFACTS / "document-form-invalid.png", full_page=True)

    emergency.fill("Sam Morgan, 07700 900123")
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(f"{base_url}/portal/documents/{share.id}")
    expect(page.get_by_text("Thank you: your answers are submitted.")).to_be_visible()
    answers = page.locator("dl.answers")
    expect(answers).to_contain_text("21 April 1990")
    expect(answers).to_contain_text("Email, Text message")
    expect(answers).to_contain_text("Alex Morgan, signed")
    page.screenshot(path=ARTIFACTS / "document-submitted.png", full_page=True)

    stored = json.loads(DocumentShare.get_by_id(share.id).answers_json)
    assert stored["version"] == 1 and stored["answers"]["f4"] == "Sam Morgan, 07700 900123"
    assert stored["answers"]["f7"] == ["Email", "Text message"] and stored["answers"]["f6"] == "No"

    page.get_by_role("link", name="Your portal").click()
    expect(page.get_by_role("heading", name="Completed")).to_be_visible()
    expect(page.get_by_text("Nothing left to do. Thank you.")).to_be_visible()
    assert problems == []
