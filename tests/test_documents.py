"""Shared documents and intake paperwork: templates, sharing by email, drafts that survive a
session timeout, validation beside each field, submitted answers that never change, resend,
unshare, and nobody reading another client's documents."""
import html
import json
import re
import threading

import pytest

from practice.clients import add_client
from practice.documents import create_template, share_documents
from practice.models import AuditEvent, DocumentShare, DocumentTemplate, DocumentVersion, Email, Link, Session, db
from tests.conftest import (clinic_csrf, clinic_sign_in, code_from, continue_with, csrf_token, deliver, mailed_link,
                            text_part, token_from)

pytestmark = pytest.mark.usefixtures("traveller")

HTMX_TYPING = {"HX-Request": "true", "HX-Trigger": "document-form", "HX-Current-URL": "http://portal.test/"}
IDLE = 15 * 60


def visible_text(markup: str) -> str:
    """What a person reads: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def error_beside(page: str, key: str) -> str | None:
    match = re.search(rf'<p class="error" id="{key}-error">(.*?)</p>', page, re.S)
    return visible_text(match.group(1)) if match else None


def template(title: str) -> DocumentTemplate:
    return DocumentTemplate.get(DocumentTemplate.title == title)


def share_of(someone, title: str) -> DocumentShare:
    return DocumentShare.get((DocumentShare.client == someone) & (DocumentShare.template == template(title)))


def reloaded(share: DocumentShare) -> DocumentShare:
    return DocumentShare.get_by_id(share.id)


def clinician_browser(app, clinician):
    """A separate browser for the clinician: the client's and the clinician's cookies differ."""
    browser = app.test_client()
    clinic_sign_in(browser, clinician.email)
    return browser


def share_through_the_page(clinic, someone, *titles):
    return clinic.post(f"/clinic/clients/{someone.id}/documents/share",
                       data={"template": [template(t).id for t in titles], "csrf_token": clinic_csrf(clinic)})


def sign_in(app, browser, smtp_server, address="alex@example.com"):
    """Sign in as the client does: ask for a link, open it, Continue."""
    response = continue_with(browser, mailed_link(app, browser, smtp_server, address))
    assert response.status_code == 303
    return response


def portal_csrf(browser) -> str:
    return csrf_token(browser, "/portal")


INTAKE_ANSWERS = {
    "f1": "Alex Morgan", "f2": "1990-04-21", "f3": "", "f4": "Sam Morgan, 07700 900123",
    "f5": "Trouble sleeping since the spring.", "f6": "No", "f7": ["Email", "Text message"], "f8": "",
    "f9": "Alex Morgan",
}


@pytest.fixture
def clinic(app, dana):
    return clinician_browser(app, dana)


@pytest.fixture
def intake_shared(app, client, clinic, alex, smtp_server):
    """The intake questionnaire shared with Alex, who signed in with the emailed link."""
    assert share_through_the_page(clinic, alex, "Intake questionnaire").status_code == 303
    deliver(app)
    continue_with(client, token_from(smtp_server.to("alex@example.com")[-1]))
    return share_of(alex, "Intake questionnaire")


def test_the_code_in_a_document_email_signs_in_another_device_on_the_code_page(app, clinic, alex, smtp_server):
    """The email says: on another device, go to /sign-in/code and type the address and the
    code. Doing just that (not asking for a new link, which would replace this one) works."""
    assert share_through_the_page(clinic, alex, "Intake questionnaire").status_code == 303
    deliver(app)
    message = smtp_server.to("alex@example.com")[-1]
    assert "http://portal.test/sign-in/code" in text_part(message)
    laptop = app.test_client()
    page = laptop.get("/sign-in/code")
    assert page.status_code == 200 and "Sign in with a code" in page.get_data(as_text=True)
    response = laptop.post("/sign-in/code", data={"entry": "page", "email": "alex@example.com",
                                                  "code": code_from(message), "csrf_token": csrf_token(laptop)})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/portal/documents/{share_of(alex, 'Intake questionnaire').id}"


def submit(browser, share, answers, **headers):
    return browser.post(f"/portal/documents/{share.id}", data={**answers, "csrf_token": portal_csrf(browser)},
                        headers=headers)


def type_draft(browser, share, answers, *, token=None):
    return browser.post(f"/portal/documents/{share.id}/draft", headers=HTMX_TYPING,
                        data={**answers, "csrf_token": token or portal_csrf(browser)})


# ---- templates ---------------------------------------------------------------------------

@pytest.mark.builds_schema
def test_a_practice_starts_with_an_intake_questionnaire_and_an_informed_consent_form(make_app, app, kim):
    browser = clinician_browser(app, kim)
    page = visible_text(browser.get("/clinic/documents").get_data(as_text=True))
    assert "Intake questionnaire Form to fill in 1" in page
    assert "Informed consent Read and acknowledge 1" in page
    make_app()  # starting again seeds nothing more
    assert DocumentTemplate.select().count() == 2
    intake = visible_text(browser.get(f"/clinic/documents/{template('Intake questionnaire').id}").get_data(as_text=True))
    for kind in ("Short text", "Long text", "Date", "Single choice", "Multiple choice", "Signature"):
        assert kind in intake


def test_only_an_admin_writes_or_edits_templates(app, kim):
    browser = clinician_browser(app, kim)
    intake = template("Intake questionnaire")
    assert browser.get("/clinic/documents/new").status_code == 403
    assert browser.get(f"/clinic/documents/{intake.id}/edit").status_code == 403
    token = clinic_csrf(browser)
    assert browser.post(f"/clinic/documents/{intake.id}/edit", data={"title": "Mine", "csrf_token": token}).status_code == 403
    assert browser.post(f"/clinic/documents/{intake.id}/archive", data={"csrf_token": token}).status_code == 403
    assert "Edit" not in visible_text(browser.get(f"/clinic/documents/{intake.id}").get_data(as_text=True)).split()
    assert template("Intake questionnaire").version == 1


def test_an_admin_builds_a_form_question_by_question(clinic):
    token = clinic_csrf(clinic)
    base = {"title": "Sleep diary", "kind": "form", "body": "Each morning.", "csrf_token": token,
            "questions-0-key": "", "questions-0-question": "Hours slept", "questions-0-answer_type": "short_text",
            "questions-0-required": "y", "questions-0-choices": ""}
    added = clinic.post("/clinic/documents/new", data={**base, "add_question": "1"})
    assert added.status_code == 200 and 'name="questions-1-question"' in added.get_data(as_text=True)
    second = {"questions-1-key": "", "questions-1-question": "How rested do you feel?",
              "questions-1-answer_type": "single_choice", "questions-1-choices": "Rested"}
    refused = clinic.post("/clinic/documents/new", data={**base, **second})
    assert refused.status_code == 422
    assert error_beside(refused.get_data(as_text=True), "questions-1-question") == \
        "Give at least two choices, one per line."
    assert not DocumentTemplate.select().where(DocumentTemplate.title == "Sleep diary").exists()
    saved = clinic.post("/clinic/documents/new", data={**base, **second, "questions-1-choices": "Rested\nTired\n"})
    assert saved.status_code == 303
    version = DocumentVersion.get(DocumentVersion.title == "Sleep diary")
    assert json.loads(version.fields_json) == [
        {"key": "f1", "type": "short_text", "label": "Hours slept", "required": True, "options": []},
        {"key": "f2", "type": "single_choice", "label": "How rested do you feel?", "required": False,
         "options": ["Rested", "Tired"]},
    ]


def test_a_template_needs_a_title(clinic):
    response = clinic.post("/clinic/documents/new", data={"title": " ", "kind": "acknowledge", "body": "Read me.",
                                                          "csrf_token": clinic_csrf(clinic)})
    assert response.status_code == 422
    assert error_beside(response.get_data(as_text=True), "title") == "Give the document a title."


# ---- sharing -----------------------------------------------------------------------------

def test_sharing_two_documents_sends_one_email_whose_link_lands_on_them_after_continue(
        app, client, clinic, alex, smtp_server):
    response = share_through_the_page(clinic, alex, "Intake questionnaire", "Informed consent")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/clinic/clients/{alex.id}#documents")
    assert deliver(app) == 1
    [message] = smtp_server.to("alex@example.com")  # one email for both, over real SMTP
    body = text_part(message)
    assert "2 documents to complete" in message["Subject"]
    assert "Intake questionnaire" in body and "Informed consent" in body and "works once, for 72 hours" in body
    link = Link.get(Link.reason == "document_share")
    assert (link.expires_at - link.issued_at).total_seconds() == 72 * 3600

    landed = continue_with(client, token_from(message))
    assert landed.headers["Location"] == "/portal/documents"
    page = visible_text(client.get("/portal/documents").get_data(as_text=True))
    assert "Your documents" in page and "Intake questionnaire New" in page and "Informed consent New" in page
    home = visible_text(client.get("/portal").get_data(as_text=True))
    assert "To do" in home and "Intake questionnaire" in home and "Nothing to read or fill in" not in home


def test_sharing_one_document_lands_on_that_document(app, client, clinic, alex, smtp_server, intake_shared):
    assert Link.get(Link.reason == "document_share").target == f"/portal/documents/{intake_shared.id}"
    page = client.get(f"/portal/documents/{intake_shared.id}")
    assert page.status_code == 200
    text = visible_text(page.get_data(as_text=True))
    assert "Intake questionnaire" in text and "What brings you to therapy now?" in text
    assert reloaded(intake_shared).opened_at is not None
    row = visible_text(clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True))
    assert "Opened Mon 2 Mar 2026, 9:00 AM UTC" in row and "Shared Mon 2 Mar 2026, 9:00 AM UTC by Dana Hale" in row


@pytest.mark.parametrize("chosen, message", [
    ([], "Choose at least one document to share."),
    (["nine"], "That document is not available to share."),
    (["999"], "One of those documents is no longer available to share. Please choose again."),
])
def test_the_share_form_says_what_is_wrong(clinic, alex, chosen, message):
    response = clinic.post(f"/clinic/clients/{alex.id}/documents/share",
                           data={"template": chosen, "csrf_token": clinic_csrf(clinic)})
    assert response.status_code == 422
    assert error_beside(response.get_data(as_text=True), "templates") == message
    assert Email.select().count() == 0 and DocumentShare.select().count() == 0


def test_two_clinicians_sharing_the_same_document_at_the_same_instant_make_one_open_share(app, alex, dana, kim):
    """Each looks for an open share before making one: without a lock both could see none
    (PostgreSQL's READ COMMITTED) and make two. Time is frozen, so both share at one instant."""
    intake = template("Intake questionnaire").id
    for attempt in range(5):
        barrier = threading.Barrier(2)
        errors = []

        def share(clinician):
            try:
                with app.app_context(), db.connection_context():
                    barrier.wait()
                    share_documents(alex, [intake], by=clinician)
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=share, args=(who,)) for who in (dana, kim)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        open_shares = DocumentShare.select().where(
            (DocumentShare.client == alex) & DocumentShare.completed_at.is_null() & DocumentShare.unshared_at.is_null())
        assert open_shares.count() == 1, f"attempt {attempt}"
        live = Link.select().where((Link.client == alex) & Link.used_at.is_null() & Link.revoked_at.is_null())
        assert live.count() == 1 and open_shares.get().link_id == live.get().id


def test_an_archived_template_is_no_longer_offered_but_what_was_shared_stays(clinic, alex, intake_shared):
    intake = template("Intake questionnaire")
    clinic.post(f"/clinic/documents/{intake.id}/archive", data={"csrf_token": clinic_csrf(clinic)})
    page = clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True)
    assert f'value="{intake.id}"' not in page.split('class="share-form"')[1]
    response = share_through_the_page(clinic, alex, "Intake questionnaire")
    assert response.status_code == 422
    assert reloaded(intake_shared).unshared_at is None


# ---- each field type validates -------------------------------------------------------------

EVERY_KIND = [
    {"key": "f1", "type": "short_text", "label": "Name", "required": True, "options": ""},
    {"key": "f2", "type": "long_text", "label": "Story", "required": True, "options": ""},
    {"key": "f3", "type": "date", "label": "Born", "required": True, "options": ""},
    {"key": "f4", "type": "single_choice", "label": "Before?", "required": True, "options": "Yes\nNo"},
    {"key": "f5", "type": "multiple_choice", "label": "Contact", "required": True, "options": "Email\nPhone"},
    {"key": "f6", "type": "signature", "label": "Sign", "required": True, "options": ""},
]
VALID = {
    "Every kind": {"f1": "Alex", "f2": "A story.", "f3": "1990-04-21", "f4": "No", "f5": ["Email"], "f6": "Alex Morgan"},
    "Informed consent": {"acknowledged": "yes", "signature": "Alex Morgan"},
}


@pytest.fixture
def every_kind(app, alex, dana):
    with app.app_context():
        create_template(title="Every kind", kind="form", rows=EVERY_KIND)
        share_documents(alex, [template("Every kind").id, template("Informed consent").id], by=dana)
    deliver(app)


@pytest.mark.parametrize("title, key, value, message", [
    ("Every kind", "f1", "", "Please fill this in."),
    ("Every kind", "f1", "x" * 201, "Please keep this under 200 characters (it has 201)."),
    ("Every kind", "f2", "   \n ", "Please fill this in."),
    ("Every kind", "f2", "x" * 5001, "Please keep this under 5000 characters (it has 5001)."),
    ("Every kind", "f3", "", "Please enter a date."),
    ("Every kind", "f3", "21/04/1990", "Enter the date as year-month-day, like 1990-04-21."),
    ("Every kind", "f3", "1990-02-30", "Enter the date as year-month-day, like 1990-04-21."),
    ("Every kind", "f3", "1850-01-01", "Enter a date between 1900 and 2100."),
    ("Every kind", "f4", None, "Please choose one option."),
    ("Every kind", "f4", "Maybe", "Choose one of the options shown."),
    ("Every kind", "f4", ["Yes", "No"], "Choose only one option."),
    ("Every kind", "f5", None, "Please choose at least one option."),
    ("Every kind", "f5", ["Email", "Fax"], "Choose from the options shown."),
    ("Every kind", "f6", "  ", "Type your full name to sign."),
    ("Every kind", "f6", "x" * 201, "Please keep this under 200 characters (it has 201)."),
    ("Informed consent", "acknowledged", None, "Tick the box to confirm you have read this document."),
    ("Informed consent", "signature", "", "Type your full name to sign."),
], ids=lambda value: value if isinstance(value, str) and len(value) < 30 else None)
def test_each_field_type_validates_with_the_message_beside_it(app, client, alex, smtp_server, every_kind,
                                                              title, key, value, message):
    sign_in(app, client, smtp_server)
    share = share_of(alex, title)
    answers = dict(VALID[title])
    if value is None:
        del answers[key]
    else:
        answers[key] = value
    response = submit(client, share, answers)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert error_beside(page, key) == message
    assert [k for k in VALID[title] if error_beside(page, k)] == [key]  # only that field is marked
    assert "Please check the answer marked below." in visible_text(page)
    assert reloaded(share).completed_at is None
    assert reloaded(share).draft_json is not None  # what was typed is kept


def test_valid_answers_of_every_kind_are_stored_as_json_with_the_version(app, client, alex, smtp_server, every_kind):
    sign_in(app, client, smtp_server)
    share = share_of(alex, "Every kind")
    response = submit(client, share, {**VALID["Every kind"], "f1": "  Alex   Morgan "})
    assert (response.status_code, response.headers["Location"]) == (303, f"/portal/documents/{share.id}")
    stored = json.loads(reloaded(share).answers_json)
    assert stored == {
        "template": share.template_id, "version": 1, "title": "Every kind", "submitted_at": "2026-03-02T09:00:00Z",
        "answers": {"f1": "Alex Morgan", "f2": "A story.", "f3": "1990-04-21", "f4": "No", "f5": ["Email"],
                    "f6": {"name": "Alex Morgan", "date": "2026-03-02"}},
    }
    consent = share_of(alex, "Informed consent")
    assert submit(client, consent, VALID["Informed consent"]).status_code == 303
    assert json.loads(reloaded(consent).answers_json)["answers"] == {
        "acknowledged": True, "signature": {"name": "Alex Morgan", "date": "2026-03-02"}}


# ---- filling in, drafts, submitting ---------------------------------------------------------

def test_typing_saves_a_draft_and_answers_with_a_small_saved_status(client, alex, intake_shared):
    response = type_draft(client, intake_shared, {"f1": "Alex Mor", "f7": ["Email", "Fax"]})
    assert response.status_code == 200
    assert response.get_data(as_text=True).strip() == "Saved at 9:00:00 AM."
    assert "HX-Trigger" in response.headers["Vary"]
    draft = json.loads(reloaded(intake_shared).draft_json)
    assert draft["f1"] == "Alex Mor" and draft["f7"] == ["Email"]  # only the form's own choices
    page = client.get(f"/portal/documents/{intake_shared.id}").get_data(as_text=True)
    assert 'value="Alex Mor"' in page and "Draft saved Mon 2 Mar 2026, 9:00 AM UTC." in page
    assert "Started, not submitted" in visible_text(client.get("/portal").get_data(as_text=True))


def test_save_and_finish_later_works_without_javascript(client, alex, intake_shared):
    response = client.post(f"/portal/documents/{intake_shared.id}/draft",
                           data={"f5": "Since the spring", "csrf_token": portal_csrf(client)})
    assert (response.status_code, response.headers["Location"]) == (303, f"/portal/documents/{intake_shared.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your answers are saved." in page and "Since the spring</textarea>" in page


def test_drafts_survive_a_session_timeout(app, client, alex, smtp_server, intake_shared, traveller):
    type_draft(client, intake_shared, {"f1": "Alex Morgan", "f5": "Trouble sleeping"})
    traveller.shift(IDLE)
    response = client.get(f"/portal/documents/{intake_shared.id}")
    assert response.headers["Location"] == "/sign-in"
    assert "signed out after a period of inactivity" in client.get("/sign-in").get_data(as_text=True)
    sign_in(app, client, smtp_server)
    page = client.get(f"/portal/documents/{intake_shared.id}").get_data(as_text=True)
    assert 'value="Alex Morgan"' in page and "Trouble sleeping</textarea>" in page


def test_a_draft_posted_after_the_session_timed_out_is_kept_and_the_browser_goes_to_sign_in(
        app, client, alex, smtp_server, intake_shared, traveller):
    """The client typed, left, came back and typed more: the browser posts the draft with a
    session that has timed out. htmx then follows HX-Redirect to the sign-in page and the
    page (and what was typed) is gone, so the server must have kept it."""
    token = portal_csrf(client)
    type_draft(client, intake_shared, {"f1": "Alex"}, token=token)
    traveller.shift(IDLE + 60)
    response = type_draft(client, intake_shared, {"f1": "Alex Morgan", "f5": "Typed after the timeout"}, token=token)
    assert (response.status_code, response.headers["HX-Redirect"]) == (200, "/sign-in")
    assert response.get_data(as_text=True) == ""  # nothing of the client's is shown
    assert Session.get(Session.client == alex).end_reason == "idle"
    # The whole-page Submit, pressed after the timeout, keeps the answers as a draft too.
    plain = client.post(f"/portal/documents/{intake_shared.id}",
                        data={"f1": "Alex Morgan", "f5": "Typed, then Submit", "csrf_token": token})
    assert plain.headers["Location"] == "/sign-in"
    assert reloaded(intake_shared).completed_at is None

    sign_in(app, client, smtp_server)
    assert "Your answers to \u201cIntake questionnaire\u201d were saved." in \
        html.unescape(client.get("/portal").get_data(as_text=True))
    page = client.get(f"/portal/documents/{intake_shared.id}").get_data(as_text=True)
    assert 'value="Alex Morgan"' in page and "Typed, then Submit</textarea>" in page


def test_after_signing_out_or_a_day_later_a_post_saves_nothing(app, client, alex, smtp_server, intake_shared,
                                                               traveller):
    token = portal_csrf(client)
    type_draft(client, intake_shared, {"f1": "Kept"}, token=token)
    client.post("/sign-out", data={"csrf_token": token})
    response = type_draft(client, intake_shared, {"f1": "After signing out"}, token=token)
    assert response.headers["HX-Redirect"] == "/sign-in"
    assert json.loads(reloaded(intake_shared).draft_json)["f1"] == "Kept"

    sign_in(app, client, smtp_server)
    token = portal_csrf(client)
    traveller.shift(25 * 3600)  # timed out, and a day has passed
    type_draft(client, intake_shared, {"f1": "A day later"}, token=token)
    assert json.loads(reloaded(intake_shared).draft_json)["f1"] == "Kept"


def test_a_timed_out_cookie_replayed_later_changes_nothing(app, client, alex, smtp_server, intake_shared, traveller):
    """Keeping a late draft is for the browser that was typing as the session timed out, a few
    minutes at most: the same cookie (and CSRF token) replayed later saves nothing."""
    token = portal_csrf(client)
    type_draft(client, intake_shared, {"f1": "Kept"}, token=token)
    traveller.shift(IDLE + 11 * 60)  # eleven minutes past the timeout
    response = type_draft(client, intake_shared, {"f1": "Replayed"}, token=token)
    assert response.headers["HX-Redirect"] == "/sign-in" and response.get_data(as_text=True) == ""
    submitted = client.post(f"/portal/documents/{intake_shared.id}", data={"f1": "Replayed", "csrf_token": token})
    assert submitted.headers["Location"] == "/sign-in"
    share = reloaded(intake_shared)
    assert json.loads(share.draft_json)["f1"] == "Kept" and share.completed_at is None
    assert "were saved" not in client.get("/sign-in").get_data(as_text=True)


def test_a_late_draft_is_kept_only_from_the_browser_whose_session_timed_out(app, client, alex, smtp_server,
                                                                           intake_shared, traveller):
    token = portal_csrf(client)
    type_draft(client, intake_shared, {"f1": "Kept"}, token=token)
    traveller.shift(IDLE + 60)
    elsewhere = client.post(f"/portal/documents/{intake_shared.id}/draft", data={"f1": "Copied", "csrf_token": token},
                            headers={**HTMX_TYPING, "User-Agent": "Another browser/1.0"})
    assert elsewhere.headers["HX-Redirect"] == "/sign-in"
    assert json.loads(reloaded(intake_shared).draft_json)["f1"] == "Kept"


def test_the_client_submits_and_sees_what_they_sent(client, clinic, alex, intake_shared):
    response = submit(client, intake_shared, INTAKE_ANSWERS)
    assert response.status_code == 303
    page = visible_text(client.get(response.headers["Location"]).get_data(as_text=True))
    assert "Thank you: your answers are submitted." in page
    assert "You submitted this on Mon 2 Mar 2026, 9:00 AM UTC." in page
    assert "Date of birth 21 April 1990" in page
    assert "How may we contact you? Email, Text message" in page
    assert "Pronouns (no answer)" in page
    assert "Type your full name to sign Alex Morgan, signed 2 March 2026" in page
    assert "<input" not in client.get(f"/portal/documents/{intake_shared.id}").get_data(as_text=True).split("<main>")[1]
    listed = visible_text(client.get("/portal/documents").get_data(as_text=True))
    assert "Completed Intake questionnaire Completed Mon 2 Mar 2026" in listed and "Nothing left to do." in listed

    again = submit(client, intake_shared, {**INTAKE_ANSWERS, "f1": "Someone else"})
    assert again.status_code == 303
    assert json.loads(reloaded(intake_shared).answers_json)["answers"]["f1"] == "Alex Morgan"
    late_draft = type_draft(client, intake_shared, {"f1": "Someone else"})
    assert late_draft.status_code == 422 and "already submitted" in late_draft.get_data(as_text=True)

    markup = clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True)
    row = visible_text(markup)
    assert "Intake questionnaire Completed" in row and "Completed Mon 2 Mar 2026, 9:00 AM UTC" in row
    assert "What brings you to therapy now? Trouble sleeping since the spring." in row
    assert f"/documents/{intake_shared.id}/resend" not in markup and f"/documents/{intake_shared.id}/unshare" not in markup


def test_a_template_edited_later_does_not_change_what_a_client_submitted(app, client, clinic, alex, dana,
                                                                         intake_shared):
    submit(client, intake_shared, INTAKE_ANSWERS)
    intake = template("Intake questionnaire")
    assert clinic.get(f"/clinic/documents/{intake.id}/edit").status_code == 200
    form = {"title": "Intake questionnaire", "body": "New intro.", "csrf_token": clinic_csrf(clinic)}
    for index, field in enumerate(json.loads(intake_shared.version.fields_json)):  # as the editor posts them
        form.update({f"questions-{index}-key": field["key"], f"questions-{index}-question": field["label"],
                     f"questions-{index}-answer_type": field["type"],
                     f"questions-{index}-choices": "\n".join(field["options"])})
        if field["required"]:
            form[f"questions-{index}-required"] = "y"
    form.update({"questions-0-question": "Legal name", "questions-2-remove": "y"})  # rename one, drop Pronouns
    assert clinic.post(f"/clinic/documents/{intake.id}/edit", data=form).status_code == 303
    assert template("Intake questionnaire").version == 2

    page = visible_text(client.get(f"/portal/documents/{intake_shared.id}").get_data(as_text=True))
    assert "Full name Alex Morgan" in page and "Legal name" not in page and "Pronouns" in page
    assert json.loads(reloaded(intake_shared).answers_json)["version"] == 1
    # Shared from now on, it is the new version.
    sam = add_client("sam@example.com", "Sam Rivera")
    share_through_the_page(clinic, sam, "Intake questionnaire")
    fields = json.loads(share_of(sam, "Intake questionnaire").version.fields_json)
    assert fields[0]["label"] == "Legal name" and "Pronouns" not in [f["label"] for f in fields]


def test_a_share_not_yet_done_keeps_the_version_it_was_sent(app, client, alex, dana, intake_shared):
    from practice.documents import update_template
    intake = template("Intake questionnaire")
    with app.app_context():
        update_template(intake, title="Intake questionnaire (2026)", body="", rows=[
            {"key": "f1", "label": "Legal name", "type": "short_text", "required": True}], by=dana)
    page = visible_text(client.get(f"/portal/documents/{intake_shared.id}").get_data(as_text=True))
    assert "Full name" in page and "Legal name" not in page


# ---- resend and unshare ------------------------------------------------------------------

def test_resend_sends_a_fresh_link_and_the_previous_one_is_replaced(app, clinic, alex, dana, smtp_server):
    share_through_the_page(clinic, alex, "Intake questionnaire", "Informed consent")
    deliver(app)
    first = token_from(smtp_server.to("alex@example.com")[-1])
    share = share_of(alex, "Intake questionnaire")

    response = clinic.post(f"/clinic/clients/{alex.id}/documents/{share.id}/resend",
                           data={"csrf_token": clinic_csrf(clinic)})
    assert response.status_code == 303
    deliver(app)
    messages = smtp_server.to("alex@example.com")
    assert len(messages) == 2 and messages[-1]["Subject"].startswith("Reminder: Intake questionnaire to complete")
    assert "You also have 1 other document still to do" in text_part(messages[-1])
    second = token_from(messages[-1])

    dead = app.test_client().get(f"/s/{first}")
    assert dead.status_code == 410 and "replaced" in dead.get_data(as_text=True)
    landed = continue_with(app.test_client(), second)
    assert landed.headers["Location"] == f"/portal/documents/{share.id}"
    event = AuditEvent.get(AuditEvent.kind == "document_resent")
    assert (event.clinician_id, event.client_id, event.detail) == (dana.id, alex.id, "Intake questionnaire")
    page = visible_text(clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True))
    assert "sent again to alex@example.com with a fresh link" in page
    assert "Document resent (Intake questionnaire)" in page


def test_nothing_to_resend_once_complete(app, client, clinic, alex, intake_shared):
    submit(client, intake_shared, INTAKE_ANSWERS)
    before = Email.select().count()
    response = clinic.post(f"/clinic/clients/{alex.id}/documents/{intake_shared.id}/resend",
                           data={"csrf_token": clinic_csrf(clinic)})
    assert response.status_code == 303
    assert "already complete: nothing to resend" in html.unescape(clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True))
    assert Email.select().count() == before


def test_unshare_while_not_complete(client, clinic, alex, dana, intake_shared):
    type_draft(client, intake_shared, {"f1": "Alex"})
    response = clinic.post(f"/clinic/clients/{alex.id}/documents/{intake_shared.id}/unshare",
                           data={"csrf_token": clinic_csrf(clinic)})
    assert response.status_code == 303
    assert reloaded(intake_shared).unshared_by_id == dana.id
    assert "Intake questionnaire" not in visible_text(client.get("/portal").get_data(as_text=True))
    withdrawn = client.get(f"/portal/documents/{intake_shared.id}")
    assert withdrawn.status_code == 410 and "withdrawn" in withdrawn.get_data(as_text=True)
    assert submit(client, intake_shared, INTAKE_ANSWERS).status_code == 303
    assert reloaded(intake_shared).completed_at is None
    page = visible_text(clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True))
    assert "Intake questionnaire Unshared" in page and "Document unshared (Intake questionnaire)" in page


def test_a_completed_document_cannot_be_unshared(client, clinic, alex, intake_shared):
    submit(client, intake_shared, INTAKE_ANSWERS)
    clinic.post(f"/clinic/clients/{alex.id}/documents/{intake_shared.id}/unshare",
                data={"csrf_token": clinic_csrf(clinic)})
    assert reloaded(intake_shared).unshared_at is None
    assert "already complete and stays on record" in \
        html.unescape(clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True))


# ---- nobody reads another client's documents ------------------------------------------------

def test_a_client_cannot_read_another_clients_documents_by_guessing_ids(app, client, alex, dana, kim, smtp_server,
                                                                        traveller):
    sam = add_client("sam@example.com", "Sam Rivera", clinician=dana)
    with app.app_context():
        [theirs] = share_documents(sam, [template("Intake questionnaire").id], by=dana)
        [mine] = share_documents(alex, [template("Informed consent").id], by=dana)
    deliver(app)
    sign_in(app, client, smtp_server)
    token = portal_csrf(client)
    assert client.get(f"/portal/documents/{mine.id}").status_code == 200
    for response in (client.get(f"/portal/documents/{theirs.id}"),
                     client.post(f"/portal/documents/{theirs.id}", data={**INTAKE_ANSWERS, "csrf_token": token}),
                     type_draft(client, theirs, {"f1": "Alex was here"}, token=token),
                     client.get(f"/portal/documents/{theirs.id + 100}")):
        assert response.status_code == 404
        assert "Intake questionnaire" not in response.get_data(as_text=True)
    traveller.shift(IDLE)  # nor by a draft posted after a timeout
    type_draft(client, theirs, {"f1": "Alex was here"}, token=token)
    assert (reloaded(theirs).opened_at, reloaded(theirs).draft_json, reloaded(theirs).completed_at) == (None, None, None)

    # A clinician sees only their clients' shares, and a share only under its own client.
    kims_browser = clinician_browser(app, kim)
    kim_token = clinic_csrf(kims_browser)
    assert kims_browser.get(f"/clinic/clients/{sam.id}").status_code == 404
    assert kims_browser.post(f"/clinic/clients/{sam.id}/documents/{theirs.id}/resend",
                             data={"csrf_token": kim_token}).status_code == 404
    danas_browser = clinician_browser(app, dana)
    assert danas_browser.post(f"/clinic/clients/{alex.id}/documents/{theirs.id}/unshare",
                              data={"csrf_token": clinic_csrf(danas_browser)}).status_code == 404
    assert reloaded(theirs).unshared_at is None


def test_a_clinician_has_no_portal_documents(app, clinic, alex, intake_shared):
    assert clinic.get(f"/portal/documents/{intake_shared.id}").status_code == 403


@pytest.mark.parametrize("path", [
    "/portal/documents/{share}", "/portal/documents/{share}/draft",
    "/clinic/clients/{client}/documents/share", "/clinic/clients/{client}/documents/{share}/resend",
    "/clinic/clients/{client}/documents/{share}/unshare", "/clinic/documents/new",
    "/clinic/documents/{template}/edit", "/clinic/documents/{template}/archive",
])
def test_every_document_form_needs_its_csrf_token(app, client, clinic, alex, intake_shared, path):
    url = path.format(share=intake_shared.id, client=alex.id, template=intake_shared.template_id)
    browser = clinic if url.startswith("/clinic") else client
    response = browser.post(url, data={"f1": "x", "template": [intake_shared.template_id], "title": "x"})
    assert response.status_code == 400 and "This form has expired" in response.get_data(as_text=True)
    share = reloaded(intake_shared)
    assert (share.draft_json, share.completed_at, share.unshared_at) == (None, None, None)
    assert template("Intake questionnaire").version == 1 and Email.select().count() == 1  # the share's


def test_a_document_sent_again_within_the_minute_gets_a_subject_of_its_own(app, alex, dana, smtp_server, traveller):
    from practice.documents import resend_share
    with app.app_context():
        [share] = share_documents(alex, [template("Intake questionnaire").id], by=dana)
        resend_share(share, by=dana)
        traveller.shift(20)
        resend_share(share, by=dana)
    deliver(app)
    subjects = [m["Subject"] for m in smtp_server.to("alex@example.com")]
    assert subjects[0] == "Intake questionnaire to complete for Portico (sent Mon 2 Mar 2026, 9:00 AM UTC)"
    assert subjects[1:] == ["Reminder: Intake questionnaire to complete for Portico (sent Mon 2 Mar 2026, 9:00 AM UTC)",
                            "Reminder: Intake questionnaire to complete for Portico (sent Mon 2 Mar 2026, 9:00 AM UTC) (2)"]
