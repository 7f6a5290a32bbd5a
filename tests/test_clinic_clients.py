"""Clients on the clinician side: list and search, add, edit, archive, sign out everywhere,
send a link, invite, and the link history that says why a link did not work."""
import html
import re
from datetime import timedelta

import pytest

from practice import jobs
from practice.appointments import cancel_appointment, create_appointment
from practice.clients import add_client
from practice.links import MAX_CODE_ATTEMPTS
from practice.models import AuditEvent, Client, Email, Link, Practice
from tests.conftest import (START, ask_for_link, clinic_csrf, clinic_sign_in, code_from, continue_with,
                            csrf_token, deliver, mailed_link, text_part, token_from)

pytestmark = pytest.mark.usefixtures("traveller")

NEW = {"name": "Sam Rivera", "email": "Sam@Example.com", "phone": "+44 20 7946 0958", "timezone": "Europe/London"}


def visible_text(markup: str) -> str:
    """What a person reads: tags dropped, entities decoded, whitespace collapsed."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())
    return re.sub(r" ([,.;:])", r"\1", text)


def errors_beside_fields(response) -> list[str]:
    return [visible_text(m) for m in re.findall(r'<p class="error" id="\w+-error">(.*?)</p>',
                                                 response.get_data(as_text=True), re.S)]


def link_row(page: str, number: int) -> tuple[str, str]:
    """(outcome, text) of "Link N" in a client's link history."""
    match = re.search(rf'<li class="link-row" id="link-{number}" data-outcome="(\w+)">(.*?)</li>', page, re.S)
    assert match, f"no link {number} in the history"
    return match.group(1), visible_text(match.group(2))


def results(response) -> str:
    """The client list's results, as read."""
    return visible_text(response.get_data(as_text=True).split('id="client-results"', 1)[1])


def activity(page: str) -> str:
    return visible_text(page.split('id="activity-heading"', 1)[1])


def signed_in_as(client, clinician):
    clinic_sign_in(client, clinician.email)
    return clinic_csrf(client)


def client_page(client, someone) -> str:
    response = client.get(f"/clinic/clients/{someone.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.fixture
def sam(dana):
    """A client assigned to Dana."""
    return add_client("sam@example.com", "Sam Rivera", clinician=dana)


@pytest.fixture
def jo(kim):
    """A client assigned to Kim."""
    return add_client("jo@example.com", "Jo Chen", clinician=kim)


# ---- list and search ---------------------------------------------------------------------

def test_list_shows_active_clients_and_archived_ones_apart(client, dana, alex, sam):
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{sam.id}/archive", data={"csrf_token": clinic_csrf(client)})
    active = results(client.get("/clinic/clients"))
    assert "Alex Morgan" in active and "Sam Rivera" not in active
    archived = results(client.get("/clinic/clients?show=archived"))
    assert "Sam Rivera" in archived and "Alex Morgan" not in archived


def test_search_works_as_a_plain_get_form_without_javascript(client, dana, alex, sam):
    signed_in_as(client, dana)
    page = client.get("/clinic/clients").get_data(as_text=True)
    assert 'role="search" method="get" action="/clinic/clients"' in page and 'name="q"' in page
    response = client.get("/clinic/clients?q=RIVERA")
    text = visible_text(response.get_data(as_text=True))
    assert "<html" in response.get_data(as_text=True)
    assert "Sam Rivera" in text and "Alex Morgan" not in text
    by_email = visible_text(client.get("/clinic/clients?q=alex@").get_data(as_text=True))
    assert "Alex Morgan" in by_email and "Sam Rivera" not in by_email
    assert "No active client matches “nobody”" in visible_text(client.get("/clinic/clients?q=nobody").get_data(as_text=True))


def test_live_search_box_gets_only_the_results_fragment(client, dana, alex, sam):
    signed_in_as(client, dana)
    page = client.get("/clinic/clients").get_data(as_text=True)
    assert re.search(r'id="client-search"[^>]*hx-get="/clinic/clients"[^>]*hx-trigger="keyup changed delay:\d+ms', page, re.S)
    assert 'hx-target="#client-results"' in page
    response = client.get("/clinic/clients?q=sam", headers={"HX-Request": "true", "HX-Trigger": "client-search"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="client-results"') and "<html" not in body
    assert "Sam Rivera" in body and "Alex Morgan" not in body
    assert "HX-Trigger" in response.headers["Vary"]


def test_boosted_or_history_requests_for_the_list_get_the_whole_page(client, dana, alex):
    signed_in_as(client, dana)
    for extra in ({"HX-Boosted": "true"}, {"HX-History-Restore-Request": "true"}):
        response = client.get("/clinic/clients", headers={"HX-Request": "true", "HX-Trigger": "client-search", **extra})
        assert "<html" in response.get_data(as_text=True)


def test_a_clinician_sees_only_their_own_clients_and_an_admin_sees_all(app, dana, kim, sam, jo):
    as_kim, as_dana = app.test_client(), app.test_client()
    signed_in_as(as_kim, kim)
    signed_in_as(as_dana, dana)
    kims = visible_text(as_kim.get("/clinic/clients").get_data(as_text=True))
    assert "Jo Chen" in kims and "Sam Rivera" not in kims
    assert "Sam Rivera" not in as_kim.get("/clinic/clients?q=sam", headers={
        "HX-Request": "true", "HX-Trigger": "client-search"}).get_data(as_text=True)
    danas = visible_text(as_dana.get("/clinic/clients").get_data(as_text=True))
    assert "Jo Chen jo@example.com Kim Park" in danas and "Sam Rivera sam@example.com Dana Hale" in danas


# ---- add and edit ------------------------------------------------------------------------

def test_admin_adds_a_client_and_assigns_a_clinician(client, dana, kim):
    signed_in_as(client, dana)
    response = client.post("/clinic/clients/new", data=dict(NEW, clinician=kim.id, csrf_token=clinic_csrf(client)))
    sam = Client.get()
    assert (response.status_code, response.headers["Location"]) == (303, f"/clinic/clients/{sam.id}")
    assert (sam.email, sam.name, sam.phone, sam.timezone, sam.clinician_id) == (
        "sam@example.com", "Sam Rivera", "+44 20 7946 0958", "Europe/London", kim.id)
    assert "Sam Rivera added." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert AuditEvent.get(AuditEvent.kind == "client_added").clinician_id == dana.id


def test_phone_and_time_zone_are_optional(client, dana):
    signed_in_as(client, dana)
    client.post("/clinic/clients/new", data=dict(NEW, phone="", timezone="", csrf_token=clinic_csrf(client)))
    sam = Client.get()
    assert (sam.phone, sam.timezone, sam.clinician_id) == ("", None, dana.id)


def test_a_non_admins_new_client_is_assigned_to_themself(client, dana, kim):
    signed_in_as(client, kim)
    page = client.get("/clinic/clients/new").get_data(as_text=True)
    assert 'name="clinician"' not in page
    client.post("/clinic/clients/new", data=dict(NEW, clinician=dana.id, csrf_token=clinic_csrf(client)))
    assert Client.get().clinician_id == kim.id
    assert "Sam Rivera" in client.get("/clinic/clients").get_data(as_text=True)


ADD_ERRORS = [
    ({"name": "  "}, "Enter the client's name."),
    ({"email": ""}, "Enter the client's email address."),
    ({"email": "sam.example.com"}, "That email address is not valid"),
    ({"email": "ALEX@Example.COM"}, "A client with the address alex@example.com already exists"),
    ({"phone": "call me maybe"}, "Use digits, spaces and + ( ) - only"),
    ({"timezone": "Mars/Olympus"}, "Not a valid choice"),
    ({"name": "x" * 201}, "Keep the name under 200 characters."),
]


@pytest.mark.parametrize("change, message", ADD_ERRORS)
def test_adding_a_client_validates_each_field_beside_it(client, dana, alex, change, message):
    signed_in_as(client, dana)
    response = client.post("/clinic/clients/new", data=dict(NEW, **change, csrf_token=clinic_csrf(client)))
    assert response.status_code == 422
    assert any(message in error for error in errors_beside_fields(response))
    assert Client.select().count() == 1  # only Alex: nothing saved


def test_admin_edits_a_client_and_the_change_is_audited(client, dana, kim, sam):
    signed_in_as(client, dana)
    form = client.get(f"/clinic/clients/{sam.id}/edit").get_data(as_text=True)
    assert 'value="Sam Rivera"' in form
    response = client.post(f"/clinic/clients/{sam.id}/edit", data=dict(
        NEW, name="Samantha Rivera", email="sam@example.com", phone="", clinician=kim.id,
        csrf_token=clinic_csrf(client)))
    assert (response.status_code, response.headers["Location"]) == (303, f"/clinic/clients/{sam.id}")
    sam = Client.get_by_id(sam.id)
    assert (sam.name, sam.phone, sam.timezone, sam.clinician_id) == ("Samantha Rivera", "", "Europe/London", kim.id)
    event = AuditEvent.get(AuditEvent.kind == "client_updated")
    assert event.clinician_id == dana.id and event.detail == "changed name, timezone, clinician"


@pytest.mark.parametrize("change, message", [
    ({"email": "Alex@EXAMPLE.com"}, "A client with the address alex@example.com already exists"),
    ({"email": "not an address"}, "That email address is not valid"),
    ({"name": ""}, "Enter the client's name."),
    ({"phone": "12;DROP"}, "Use digits, spaces and + ( ) - only"),
])
def test_editing_a_client_validates_each_field_and_saves_nothing(client, dana, alex, sam, change, message):
    signed_in_as(client, dana)
    response = client.post(f"/clinic/clients/{sam.id}/edit", data={
        **NEW, "name": "Changed", **change, "csrf_token": clinic_csrf(client)})
    assert response.status_code == 422
    assert any(message in error for error in errors_beside_fields(response))
    sam = Client.get_by_id(sam.id)
    assert (sam.name, sam.email) == ("Sam Rivera", "sam@example.com")


def test_a_new_address_switches_off_links_sent_to_the_old_one(app, client, dana, sam, smtp_server):
    token = mailed_link(app, app.test_client(), smtp_server, "sam@example.com")
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{sam.id}/edit", data=dict(NEW, email="sam.rivera@example.com",
                                                           csrf_token=clinic_csrf(client)))
    assert continue_with(app.test_client(), token).status_code == 410
    page = client_page(client, sam)
    assert link_row(page, 1)[0] == "email_changed"
    assert "Link 1 refused: switched off by a new email address" in activity(page)


# ---- archive -----------------------------------------------------------------------------

def test_archive_asks_for_confirmation_first(client, dana, sam):
    signed_in_as(client, dana)
    page = client.get(f"/clinic/clients/{sam.id}/archive").get_data(as_text=True)
    assert "Archive Sam Rivera?" in page and "cannot sign in" in page
    assert Client.get_by_id(sam.id).archived_at is None


def test_archiving_ends_sessions_kills_links_and_answers_like_a_stranger(app, client, dana, alex, smtp_server):
    alexs_browser = app.test_client()
    continue_with(alexs_browser, mailed_link(app, alexs_browser, smtp_server))
    unused = mailed_link(app, app.test_client(), smtp_server)
    signed_in_as(client, dana)
    response = client.post(f"/clinic/clients/{alex.id}/archive", data={"csrf_token": clinic_csrf(client)})
    assert response.status_code == 303
    assert alexs_browser.get("/portal").headers["Location"] == "/sign-in"
    assert continue_with(app.test_client(), unused).status_code == 404  # "we don't recognise this link"
    mails = len(smtp_server.to("alex@example.com"))
    visitor = app.test_client()
    stranger = ask_for_link(visitor, "nobody@example.com").get_data(as_text=True)
    archived = ask_for_link(visitor, "alex@example.com").get_data(as_text=True)
    strip = lambda text, who: re.sub(r'value="[^"]{20,}"', "", text.replace(who, "ADDRESS"))  # noqa: E731
    assert strip(archived, "alex@example.com") == strip(stranger, "nobody@example.com")
    deliver(app)
    assert len(smtp_server.to("alex@example.com")) == mails
    page = client_page(client, alex)
    assert "Archived" in page and link_row(page, 2)[0] == "archived"
    assert AuditEvent.get(AuditEvent.kind == "client_archived").clinician_id == dana.id


def test_an_archived_client_can_be_restored_but_old_links_stay_dead(app, client, dana, alex, smtp_server):
    token = mailed_link(app, app.test_client(), smtp_server)
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{alex.id}/archive", data={"csrf_token": clinic_csrf(client)})
    client.post(f"/clinic/clients/{alex.id}/restore", data={"csrf_token": clinic_csrf(client)})
    assert Client.get_by_id(alex.id).archived_at is None
    assert continue_with(app.test_client(), token).status_code == 404
    assert continue_with(app.test_client(), mailed_link(app, app.test_client(), smtp_server)).status_code == 303


# ---- sign out everywhere -----------------------------------------------------------------

def test_sign_out_everywhere_ends_every_session_of_the_client(app, client, dana, alex, smtp_server):
    phone, laptop = app.test_client(), app.test_client()
    continue_with(phone, mailed_link(app, phone, smtp_server))
    continue_with(laptop, mailed_link(app, laptop, smtp_server))
    assert phone.get("/portal").status_code == laptop.get("/portal").status_code == 200
    signed_in_as(client, dana)
    assert "Signed in now on 2 devices" in visible_text(client_page(client, alex))
    response = client.post(f"/clinic/clients/{alex.id}/sign-out", data={"csrf_token": clinic_csrf(client)})
    assert response.status_code == 303
    for device in (phone, laptop):
        assert device.get("/portal").headers["Location"] == "/sign-in"
    assert "Your session was ended by the practice" in phone.get("/sign-in").get_data(as_text=True)
    event = AuditEvent.get(AuditEvent.kind == "signed_out_everywhere")
    assert (event.clinician_id, event.detail) == (dana.id, "2 sessions ended")
    page = client_page(client, alex)
    assert "Alex Morgan is signed out everywhere." in page
    assert "Session ended by the practice (sign out everywhere)" in activity(page)


# ---- send a sign-in link, invite ---------------------------------------------------------

def test_send_sign_in_link_mails_the_client_and_replaces_earlier_links(app, client, dana, alex, smtp_server):
    earlier = mailed_link(app, app.test_client(), smtp_server)
    signed_in_as(client, dana)
    response = client.post(f"/clinic/clients/{alex.id}/send-link", data={"csrf_token": clinic_csrf(client)})
    assert response.status_code == 303
    assert "A sign-in link is on its way to alex@example.com" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert Email.select().where(Email.status == "queued").count() == 1  # the request only wrote rows
    deliver(app)
    message = smtp_server.to("alex@example.com")[-1]
    assert message["Subject"] == f"{code_from(message)} is your sign-in code for Portico"
    replaced = continue_with(app.test_client(), earlier)
    assert replaced.status_code == 410 and "A newer link was sent" in replaced.get_data(as_text=True)
    assert continue_with(app.test_client(), token_from(message)).headers["Location"] == "/portal"
    assert AuditEvent.get(AuditEvent.kind == "link_sent_by_clinician").clinician_id == dana.id
    assert "Sent by a clinician (Dana Hale)" in link_row(client_page(client, alex), 2)[1]


def test_no_link_or_invitation_for_an_archived_client(app, client, dana, alex):
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{alex.id}/archive", data={"csrf_token": clinic_csrf(client)})
    for action in ("send-link", "invite"):
        response = client.post(f"/clinic/clients/{alex.id}/{action}", data={"csrf_token": clinic_csrf(client)})
        assert "is archived and cannot sign in" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert Link.select().count() == 0


def test_invitation_welcomes_the_client_with_a_72_hour_link_to_the_portal_home(app, client, dana, alex,
                                                                                smtp_server, traveller):
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{alex.id}/invite", data={"csrf_token": clinic_csrf(client)})
    deliver(app)
    message = smtp_server.to("alex@example.com")[-1]
    body = text_part(message)
    assert message["Subject"].startswith("Welcome to Portico's client portal")
    assert "Welcome to Portico's client portal" in body and "It works once, for 72 hours" in body
    assert "Open your portal" in message.get_body(preferencelist=("html",)).get_content()
    link = Link.get()
    assert (link.reason, link.expires_at - link.issued_at) == ("invitation", timedelta(hours=72))
    assert AuditEvent.get(AuditEvent.kind == "invitation_sent").clinician_id == dana.id
    traveller.shift(71 * 3600)
    alexs_browser = app.test_client()
    response = continue_with(alexs_browser, token_from(message))
    assert (response.status_code, response.headers["Location"]) == (303, "/portal")
    assert "Hello, Alex Morgan" in alexs_browser.get("/portal").get_data(as_text=True)


def test_invitation_link_dies_after_its_lifetime_and_follows_the_setting(app, client, dana, alex, smtp_server,
                                                                          traveller):
    Practice.update(invitation_link_hours=48).execute()
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{alex.id}/invite", data={"csrf_token": clinic_csrf(client)})
    deliver(app)
    message = smtp_server.to("alex@example.com")[-1]
    assert "It works once, for 48 hours" in text_part(message)
    traveller.shift(48 * 3600)
    assert continue_with(app.test_client(), token_from(message)).status_code == 410


# ---- the link history --------------------------------------------------------------------

def test_history_shows_a_used_link_when_and_how(app, client, dana, alex, smtp_server, traveller):
    alexs_browser = app.test_client()
    token = mailed_link(app, alexs_browser, smtp_server)
    traveller.shift(5 * 60)
    continue_with(alexs_browser, token)
    signed_in_as(client, dana)
    outcome, row = link_row(client_page(client, alex), 1)
    assert outcome == "used"
    assert "Link 1 Used" in row
    assert "Why The client asked for it on the sign-in page" in row
    assert "Queued Mon 2 Mar 2026, 9:00 AM UTC; sent Mon 2 Mar 2026, 9:00 AM UTC." in row
    assert "Used to sign in Mon 2 Mar 2026, 9:05 AM UTC with the link, from 127.0.0.1." in row


def test_history_says_which_link_replaced_an_earlier_one(app, client, dana, alex, smtp_server, traveller):
    mailed_link(app, app.test_client(), smtp_server)
    traveller.shift(3600)
    mailed_link(app, app.test_client(), smtp_server)
    signed_in_as(client, dana)
    page = client_page(client, alex)
    assert page.index('id="link-2"') < page.index('id="link-1"')  # newest first
    outcome, row = link_row(page, 1)
    assert outcome == "replaced"
    assert "Replaced Mon 2 Mar 2026, 10:00 AM UTC by link 2; only the newest link works." in row
    outcome, row = link_row(page, 2)
    assert outcome == "live" and "Still works, until Tue 3 Mar 2026, 10:00 AM UTC." in row


def test_history_shows_an_expired_link_and_that_the_client_was_told_so(app, client, dana, alex, smtp_server,
                                                                        traveller):
    token = mailed_link(app, app.test_client(), smtp_server)
    traveller.shift(26 * 3600)
    app.test_client().get(f"/s/{token}")  # "my link says expired"
    signed_in_as(client, dana)
    page = client_page(client, alex)
    outcome, row = link_row(page, 1)
    assert outcome == "expired"
    assert "Expired Tue 3 Mar 2026, 9:00 AM UTC without being used (it worked for 24 hours)." in row
    assert "Opened Tue 3 Mar 2026, 11:00 AM UTC and refused as “expired”, from 127.0.0.1." in row
    assert "Link 1 refused: expired" in activity(page)


def test_history_shows_a_code_switched_off_by_wrong_codes_and_the_link_still_live(app, client, dana, alex,
                                                                                  smtp_server):
    phone = app.test_client()
    mailed_link(app, phone, smtp_server)
    wrong = f"{(int(code_from(smtp_server.messages[-1])) + 1) % 10**6:06d}"
    form = {"email": "alex@example.com", "code": wrong, "csrf_token": csrf_token(phone)}
    for _ in range(MAX_CODE_ATTEMPTS):
        phone.post("/sign-in/code", data=form)
    signed_in_as(client, dana)
    page = client_page(client, alex)
    outcome, row = link_row(page, 1)
    assert outcome == "live"
    assert f"{MAX_CODE_ATTEMPTS} wrong codes entered; its code no longer works, the link itself still does." in row
    assert ("Wrong code for link 1 (attempt 5 of 5; the code no longer works, the link still does)"
            in activity(page))


def test_history_marks_an_open_by_head_as_probably_a_mail_scanner(app, client, dana, alex, smtp_server):
    token = mailed_link(app, app.test_client(), smtp_server)
    app.test_client().head(f"/s/{token}", headers={"User-Agent": "Mimecast-Scanner/1.0"})
    signed_in_as(client, dana)
    row = link_row(client_page(client, alex), 1)[1]
    assert "Probably a mail scanner" in row and "HEAD request" in row
    assert "in “Mimecast-Scanner/1.0”, with a HEAD request" in row
    assert "Still works" in row  # a scanner's open never uses a link up


def browser_at(app, ip, agent="Mozilla/5.0 (Windows NT 10.0) Firefox/133.0"):
    browser = app.test_client()
    browser.environ_base.update(REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    return browser


def test_history_marks_an_open_seconds_after_sending_from_another_network_as_a_scanner(
        app, client, dana, alex, smtp_server, traveller):
    home = browser_at(app, "198.51.100.7")
    token = mailed_link(app, home, smtp_server)
    traveller.shift(8)
    browser_at(app, "40.94.0.12", "Mozilla/5.0 (compatible; SafeLinks)").get(f"/s/{token}")
    traveller.shift(20 * 60)
    continue_with(home, token)
    signed_in_as(client, dana)
    outcome, row = link_row(client_page(client, alex), 1)
    assert outcome == "used"
    assert "8 seconds after the mail left, in “compatible; SafeLinks”, from 40.94.0.12" in row
    assert "opened 2 times in all" in row
    assert ("Probably a mail scanner, not the client: it was opened 8 seconds after sending from 40.94.0.12, "
            "but used from 198.51.100.7") in row


def test_an_unused_link_opened_at_once_from_another_network_than_the_request_is_a_scanner(
        app, client, dana, alex, smtp_server, traveller):
    token = mailed_link(app, browser_at(app, "198.51.100.7"), smtp_server)
    traveller.shift(30)
    browser_at(app, "40.94.0.12").get(f"/s/{token}")
    signed_in_as(client, dana)
    row = link_row(client_page(client, alex), 1)[1]
    assert "Probably a mail scanner" in row and "but requested from 198.51.100.7" in row


@pytest.mark.parametrize("opener_ip, delay", [("198.51.100.7", 8), ("40.94.0.12", 5 * 60)])
def test_a_person_opening_their_link_is_not_called_a_scanner(app, client, dana, alex, smtp_server, traveller,
                                                             opener_ip, delay):
    """Same network as the request, or minutes later: a person, not a scanner."""
    home = browser_at(app, "198.51.100.7")
    token = mailed_link(app, home, smtp_server)
    traveller.shift(delay)
    continue_with(browser_at(app, opener_ip), token)
    signed_in_as(client, dana)
    assert "Probably a mail scanner" not in link_row(client_page(client, alex), 1)[1]


def test_history_shows_the_smtp_error_and_attempts_while_mail_cannot_leave(app, client, dana, alex, smtp_server,
                                                                            traveller):
    smtp_server.refuse.add("alex@example.com")
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{alex.id}/send-link", data={"csrf_token": clinic_csrf(client)})
    deliver(app)
    traveller.shift(60)
    deliver(app)
    row = link_row(client_page(client, alex), 1)[1]
    assert ("Queued Mon 2 Mar 2026, 9:00 AM UTC; not sent yet: 2 attempts failed, "
            "next try Mon 2 Mar 2026, 9:02 AM UTC. Last SMTP error: refused:") in row
    assert "550" in row and "mailbox unavailable" in row
    smtp_server.refuse.clear()
    traveller.shift(3600)
    deliver(app)
    signed_in_as(client, dana)  # the clinician's own session timed out meanwhile
    row = link_row(client_page(client, alex), 1)[1]
    assert "sent Mon 2 Mar 2026, 10:01 AM UTC (after 3 attempts)." in row


def test_history_shows_when_the_mail_actually_left(app, client, dana, alex, smtp_server, traveller):
    signed_in_as(client, dana)
    client.post(f"/clinic/clients/{alex.id}/send-link", data={"csrf_token": clinic_csrf(client)})
    row = link_row(client_page(client, alex), 1)[1]
    assert "Queued Mon 2 Mar 2026, 9:00 AM UTC; waiting to be sent." in row
    traveller.shift(3 * 60)
    deliver(app)
    row = link_row(client_page(client, alex), 1)[1]
    assert "Queued Mon 2 Mar 2026, 9:00 AM UTC; sent Mon 2 Mar 2026, 9:03 AM UTC." in row


def other_mail(page: str) -> list[tuple[str, str, str]]:
    """(kind, delivery state, text) of each row of a client's "Other emails", in page order."""
    return [(kind, state, visible_text(text)) for kind, state, text in re.findall(
        r'<li class="other-mail-row" data-kind="(\w+)" data-state="(\w+)">(.*?)</li>', page, re.S)]


def book_with_reminder_due_in_half_an_hour(app, clinician, someone, minutes_past=30):
    """An appointment 72 hours and a bit ahead: its 72-hour reminder is due minutes_past 9 AM
    today, and it carries no sign-in link (one would be dead by the appointment)."""
    with app.app_context():
        start = START + timedelta(hours=72, minutes=minutes_past)
        return create_appointment(clinician=clinician, client=someone, starts_at=start,
                                  ends_at=start + timedelta(minutes=50), kind="in_person")


def test_a_reminder_smtp_refuses_shows_its_retry_time_and_the_smtp_error(app, client, dana, alex, smtp_server,
                                                                          traveller):
    smtp_server.refuse.add("alex@example.com")
    book_with_reminder_due_in_half_an_hour(app, dana, alex)
    traveller.shift(30 * 60)
    jobs.reminder_tick()
    deliver(app)
    traveller.shift(60)
    deliver(app)
    signed_in_as(client, dana)
    page = client_page(client, alex)
    assert "No link has been sent to Alex Morgan yet." in page  # the reminder carries none
    [(kind, state, text)] = other_mail(page)
    assert (kind, state) == ("reminder", "retrying")
    assert text.startswith("Appointment reminder: \u201cReminder: your appointment on Thu 5 Mar at 9:30 AM\u201d")
    assert ("Queued Mon 2 Mar 2026, 9:30 AM UTC; not sent yet: 2 attempts failed, "
            "next try Mon 2 Mar 2026, 9:32 AM UTC. Last SMTP error: refused:") in text
    assert "550" in text and "mailbox unavailable" in text


def test_a_reminder_shows_waiting_then_when_it_was_sent_newest_mail_first(app, client, dana, alex, smtp_server,
                                                                           traveller):
    appointment = book_with_reminder_due_in_half_an_hour(app, dana, alex)
    traveller.shift(30 * 60)
    jobs.reminder_tick()
    signed_in_as(client, dana)
    [(kind, state, text)] = other_mail(client_page(client, alex))
    assert (kind, state) == ("reminder", "waiting")
    assert "Queued Mon 2 Mar 2026, 9:30 AM UTC; waiting to be sent." in text
    traveller.shift(3 * 60)
    deliver(app)
    [(kind, state, text)] = other_mail(client_page(client, alex))
    assert (kind, state) == ("reminder", "sent")
    assert "Queued Mon 2 Mar 2026, 9:30 AM UTC; sent Mon 2 Mar 2026, 9:33 AM UTC." in text
    traveller.shift(60)
    with app.app_context():
        cancel_appointment(appointment)
    rows = other_mail(client_page(client, alex))
    assert [(kind, state) for kind, state, _ in rows] == [("appointment_cancelled", "waiting"), ("reminder", "sent")]
    assert rows[0][2].startswith("Appointment cancelled: \u201cCancelled: your appointment on Thu 5 Mar at 9:30 AM\u201d")


def test_another_clients_emails_never_show(app, client, dana, alex, sam, smtp_server, traveller):
    book_with_reminder_due_in_half_an_hour(app, dana, alex, minutes_past=30)
    book_with_reminder_due_in_half_an_hour(app, dana, sam, minutes_past=45)
    traveller.shift(45 * 60)
    jobs.reminder_tick()
    deliver(app)
    mailed_link(app, app.test_client(), smtp_server, "sam@example.com")  # carries a link: not an "other" email
    signed_in_as(client, dana)
    alexs, sams = other_mail(client_page(client, alex)), other_mail(client_page(client, sam))
    assert [text.split("\u201d")[0] for _, _, text in alexs] == [
        "Appointment reminder: \u201cReminder: your appointment on Thu 5 Mar at 9:30 AM"]
    assert [text.split("\u201d")[0] for _, _, text in sams] == [
        "Appointment reminder: \u201cReminder: your appointment on Thu 5 Mar at 9:45 AM"]
    assert "Thu 5 Mar at 9:45 AM" not in client_page(client, alex)


def test_history_shows_times_in_the_practice_time_zone(app, client, dana, alex, smtp_server):
    Practice.update(timezone="America/New_York").execute()
    mailed_link(app, app.test_client(), smtp_server)
    signed_in_as(client, dana)
    page = client_page(client, alex)
    assert "Issued Mon 2 Mar 2026, 4:00 AM EST" in link_row(page, 1)[1]
    assert "(America/New_York)" in page


def test_recent_activity_lists_sign_ins_timeouts_refusals_and_throttling(app, client, dana, alex, smtp_server,
                                                                          traveller):
    alexs_browser = browser_at(app, "198.51.100.7")
    continue_with(alexs_browser, mailed_link(app, alexs_browser, smtp_server))
    traveller.shift(16 * 60)
    alexs_browser.get("/portal")  # timed out
    for _ in range(5):
        ask_for_link(alexs_browser, "alex@example.com")
        deliver(app)
    signed_in_as(client, dana)
    events = activity(client_page(client, alex))
    assert "Link 1 used to sign in with the link 198.51.100.7" in events
    assert "Signed in" in events
    assert "Signed out after a period of inactivity (timeout)" in events
    assert "Asked for a link, refused: too many requests in an hour (5 links mailed in the last hour)" in events
    assert events.index("too many requests") < events.index("Signed out after")  # newest first


def test_history_refresh_link_swaps_in_only_the_history(app, client, dana, alex, smtp_server):
    signed_in_as(client, dana)
    page = client_page(client, alex)
    assert 'id="history-refresh" href="/clinic/clients/%d/history"' % alex.id in page
    assert "No link has been sent to Alex Morgan yet." in page
    mailed_link(app, app.test_client(), smtp_server)
    fragment = client.get(f"/clinic/clients/{alex.id}/history",
                          headers={"HX-Request": "true", "HX-Trigger": "history-refresh"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="link-history"')
    assert "<html" not in body and link_row(body, 1)[0] == "live"
    assert "HX-Trigger" in fragment.headers["Vary"]
    whole = client.get(f"/clinic/clients/{alex.id}/history").get_data(as_text=True)
    assert "<html" in whole and "Alex Morgan: links and activity" in whole


# ---- who may see what --------------------------------------------------------------------

def client_paths(someone):
    return [("get", f"/clinic/clients/{someone.id}"), ("get", f"/clinic/clients/{someone.id}/edit"),
            ("post", f"/clinic/clients/{someone.id}/edit"), ("get", f"/clinic/clients/{someone.id}/archive"),
            ("post", f"/clinic/clients/{someone.id}/archive"), ("post", f"/clinic/clients/{someone.id}/restore"),
            ("post", f"/clinic/clients/{someone.id}/sign-out"), ("post", f"/clinic/clients/{someone.id}/send-link"),
            ("post", f"/clinic/clients/{someone.id}/invite"), ("get", f"/clinic/clients/{someone.id}/history")]


def test_another_clinicians_client_is_not_found_everywhere(app, client, kim, sam):
    token = signed_in_as(client, kim)
    for method, path in client_paths(sam):
        response = getattr(client, method)(path, data=dict(NEW, csrf_token=token) if method == "post" else None)
        assert response.status_code == 404, path
        assert "Sam Rivera" not in response.get_data(as_text=True) and "sam@example.com" not in response.get_data(as_text=True)
    sam = Client.get_by_id(sam.id)
    assert (sam.name, sam.archived_at) == ("Sam Rivera", None)
    assert Link.select().count() == 0 and Email.select().count() == 0


def test_a_clinician_works_with_their_own_client(app, client, kim, jo, smtp_server):
    signed_in_as(client, kim)
    assert "Jo Chen" in client_page(client, jo)
    client.post(f"/clinic/clients/{jo.id}/send-link", data={"csrf_token": clinic_csrf(client)})
    deliver(app)
    assert len(smtp_server.to("jo@example.com")) == 1


def test_an_admin_reaches_every_client(client, dana, jo):
    signed_in_as(client, dana)
    for method, path in client_paths(jo):
        if method == "get":
            assert client.get(path).status_code == 200, path


def test_a_client_session_is_refused_on_every_client_page(app, client, alex, sam, smtp_server):
    continue_with(client, mailed_link(app, client, smtp_server))
    token = csrf_token(client, "/portal")
    for method, path in client_paths(sam) + [("get", "/clinic/clients"), ("get", "/clinic/clients/new"),
                                             ("post", "/clinic/clients/new")]:
        response = getattr(client, method)(path, data={"csrf_token": token} if method == "post" else None)
        assert response.status_code == 403, path
        assert "Sam Rivera" not in response.get_data(as_text=True)
    assert Client.get_by_id(sam.id).archived_at is None


def test_nobody_signed_in_is_sent_to_the_clinician_sign_in(client, sam):
    token = csrf_token(client, "/clinic/sign-in")
    for method, path in client_paths(sam):
        response = getattr(client, method)(path, data={"csrf_token": token} if method == "post" else None)
        assert response.headers["Location"] == "/clinic/sign-in", path


@pytest.mark.parametrize("name", ["Robin\nLee", "Robin\rLee", "Robin\u2028Lee", "Robin\u2029Lee", "Robin\x0bLee",
                                  "Robin\x1bLee", "Robin\x85Lee", "Robin\tLee"])
def test_control_characters_are_refused_in_every_value_that_reaches_an_email_header(app, dana, name):
    """At the domain, so the command line cannot store them either."""
    from practice.clients import ClientError
    from practice.clinicians import ClinicianError, create_clinician
    from practice.documents import DocumentError, create_template
    from practice.settings import SettingsError, update_settings
    with pytest.raises(ClientError):
        add_client("robin@example.com", name)
    with pytest.raises(ClientError):
        add_client(name.replace(" ", "").replace("Robin", "robin@").replace("Lee", "example.com"), "Robin Lee")
    with pytest.raises(ClinicianError):
        create_clinician("robin@example.com", name, "a long enough password")
    with pytest.raises(SettingsError):
        update_settings({"name": name})
    with pytest.raises(SettingsError):
        update_settings({"contact_email": "office@example.com" + name[5]})
    with pytest.raises(DocumentError):
        create_template(title=name, kind="acknowledge", body="Read me.")
    assert Client.select().count() == 0 and Practice.current().name == "Portico"


def test_a_client_name_with_a_line_break_is_refused_at_the_form(client, dana):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/clients/new", data={"name": "Robin\r\nLee", "email": "robin@example.com",
                                                        "phone": "", "timezone": "", "clinician": str(dana.id),
                                                        "csrf_token": clinic_csrf(client)})
    assert response.status_code == 422
    assert "no line breaks, tabs or other control characters" in response.get_data(as_text=True)
    assert Client.select().count() == 0
