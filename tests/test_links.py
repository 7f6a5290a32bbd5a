"""One-time sign-in links: lifetime, one use, replacement, codes, and the dead-link page."""
import base64
import hashlib
import re

import pytest
from peewee import OperationalError

import blueprints._auth
from practice.clients import add_client, archive_client, update_client
from practice.links import MAX_CODE_ATTEMPTS, issue_link
from practice.models import AuditEvent, Link, Practice, Session
from tests.conftest import (CSRF_INPUT, ask_for_link, code_from, continue_with, csrf_token, deliver,
                            mailed_link, text_part)

pytestmark = pytest.mark.usefixtures("traveller")
KEY = b"test-secret-key"


def test_link_is_32_random_bytes_and_only_its_sha256_is_stored(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    link = Link.get()
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(v) for v in Link.select().dicts().get().values())
    assert token not in stored


def test_link_is_valid_for_24_hours(app, client, alex, smtp_server, traveller):
    token = mailed_link(app, client, smtp_server)
    traveller.shift(24 * 3600 - 1)
    assert "Continue to the portal" in client.get(f"/s/{token}").get_data(as_text=True)
    traveller.shift(1)
    response = continue_with(client, token)
    assert response.status_code == 410
    assert "worked for 24 hours" in response.get_data(as_text=True)


def test_link_lifetime_follows_the_practice_setting(app, client, alex, smtp_server, traveller):
    Practice.update(sign_in_link_minutes=10).execute()
    token = mailed_link(app, client, smtp_server)
    assert "It works once, for 10 minutes" in text_part(smtp_server.messages[-1])
    traveller.shift(10 * 60)
    assert continue_with(client, token).status_code == 410


def test_opening_a_link_never_uses_it_up(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    for _ in range(3):
        assert client.get(f"/s/{token}").status_code == 200
    for _ in range(2):
        assert client.head(f"/s/{token}").status_code == 200
    assert Link.get().used_at is None
    assert Link.get().first_opened_method == "GET"
    assert continue_with(client, token).status_code == 303


def test_live_link_page_has_practice_name_and_one_continue_button(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "<h1>Portico</h1>" in page
    assert page.count("<button") == 1 and "Continue to the portal" in page


def test_continue_signs_in_and_lands_on_the_portal(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    response = continue_with(client, token)
    assert (response.status_code, response.headers["Location"]) == (303, "/portal")
    assert "Hello, Alex Morgan" in client.get("/portal").get_data(as_text=True)
    assert Link.get().used_at is not None and Link.get().used_by == "link"


@pytest.mark.parametrize("form", [{}, {"csrf_token": "not-the-token"}])
def test_continue_without_the_forms_csrf_token_does_not_use_the_link(app, client, alex, smtp_server, form):
    token = mailed_link(app, client, smtp_server)
    client.get(f"/s/{token}")  # the CSRF cookie, as a browser would have it
    response = client.post(f"/s/{token}", data=form)
    assert response.status_code == 400 and "This form has expired" in response.get_data(as_text=True)
    assert Link.get().used_at is None and Session.select().count() == 0
    assert continue_with(client, token).status_code == 303


def test_link_works_once(app, client, alex, smtp_server, traveller):
    token = mailed_link(app, client, smtp_server)
    continue_with(client, token)
    other = app.test_client()
    response = continue_with(other, token)
    assert response.status_code == 410
    page = response.get_data(as_text=True)
    assert "already used on Mon 2 Mar 2026, 9:00 AM UTC" in page
    assert Session.select().count() == 1


def test_new_link_replaces_earlier_ones(app, alex):
    first = issue_link(alex, "client_request")
    second = issue_link(alex, "clinician")
    old = Link.get_by_id(first.link.id)
    assert old.revoked_reason == "replaced" and old.replaced_by_id == second.link.id
    assert Link.get_by_id(second.link.id).revoked_at is None


def test_replaced_link_page_says_when_the_newer_link_was_sent(app, client, alex, smtp_server, traveller):
    old_token = mailed_link(app, client, smtp_server)
    traveller.shift(3600)
    mailed_link(app, client, smtp_server)
    response = client.get(f"/s/{old_token}")
    assert response.status_code == 410
    assert "A newer link was sent on Mon 2 Mar 2026, 10:00 AM UTC" in response.get_data(as_text=True)


@pytest.mark.parametrize("token", ["x" * 43, "not-a-token", "A" * 300])
def test_unrecognised_or_foreign_token_is_not_recognised(client, token):
    # A telehealth or calendar-feed token is not in the link table either: same answer.
    response = client.get(f"/s/{token}")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "We don&#39;t recognise this link" in page or "We don't recognise this link" in page
    assert 'value=""' in page  # the new-link form is there, with nothing to fill in


def test_dead_link_page_fills_in_the_email_and_sends_a_new_link_in_one_click(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    continue_with(client, token)
    visitor = app.test_client()
    page = visitor.get(f"/s/{token}").get_data(as_text=True)
    assert 'value="alex@example.com"' in page and "Send me a new link" in page
    form_token = CSRF_INPUT.search(page).group(1)
    response = visitor.post("/sign-in", data={"email": "alex@example.com", "csrf_token": form_token})
    assert "a sign-in link is on its way" in response.get_data(as_text=True)
    deliver(app)
    assert len(smtp_server.to("alex@example.com")) == 2


def test_link_switched_off_by_an_address_change_says_so_without_showing_the_new_address(
        app, client, alex, smtp_server, traveller):
    token = mailed_link(app, client, smtp_server)
    traveller.shift(3600)
    update_client(alex, email="alex.new@example.com", name=alex.name)
    response = client.get(f"/s/{token}")
    assert response.status_code == 410
    page = response.get_data(as_text=True)
    assert "This link no longer works" in page and "recognise" not in page
    assert ("The practice changed your email address on Mon 2 Mar 2026, 10:00 AM UTC, so links sent to the "
            "old address no longer work. Ask for a new link below with your new address") in page
    assert 'data-reason="email_changed"' in page
    # Whoever holds the old address must not learn the new one from the prefilled form.
    assert "alex.new@example.com" not in page and 'value=""' in page and "Send me a new link" in page


def test_new_link_from_the_dead_link_page_replaces_its_heading_too(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    continue_with(client, token)
    visitor = app.test_client()
    page = visitor.get(f"/s/{token}").get_data(as_text=True)
    # The form swaps the whole block that holds the heading and the reason, not only itself.
    block = page[page.index('<div id="dead-link">'):]
    assert block.index("<h1>This link no longer works</h1>") < block.index('id="new-link-form"')
    assert 'hx-target="#dead-link" hx-swap="outerHTML"' in block
    answer = visitor.post("/sign-in", data={"email": "alex@example.com", "csrf_token": CSRF_INPUT.search(page).group(1)},
                          headers={"HX-Request": "true", "HX-Trigger": "new-link-form"})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "HX-Trigger" in answer.headers["Vary"]
    assert body.lstrip().startswith('<div id="check-your-email">') and "<html" not in body
    assert "<h1>Check your email</h1>" in body and "a sign-in link is on its way" in body
    assert "no longer works" not in body


def test_new_link_form_on_the_dead_link_page_works_without_javascript(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    continue_with(client, token)
    visitor = app.test_client()
    page = visitor.get(f"/s/{token}").get_data(as_text=True)
    assert 'method="post" action="/sign-in"' in page
    answer = visitor.post("/sign-in", data={"email": "alex@example.com", "csrf_token": CSRF_INPUT.search(page).group(1)})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "<html" in body and "<h1>Check your email</h1>" in body


def test_invalid_address_on_the_dead_link_page_rerenders_only_its_form(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    continue_with(client, token)
    visitor = app.test_client()
    page = visitor.get(f"/s/{token}").get_data(as_text=True)
    answer = visitor.post("/sign-in", data={"email": "nope", "csrf_token": CSRF_INPUT.search(page).group(1)},
                          headers={"HX-Request": "true", "HX-Trigger": "new-link-form"})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert (answer.headers["HX-Retarget"], answer.headers["HX-Reswap"]) == ("#new-link-form", "outerHTML")
    assert body.lstrip().startswith('<form id="new-link-form"') and "does not look like an email" in body
    assert "Send me a new link" in body


def test_link_pages_keep_the_token_private(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    for response in (client.get(f"/s/{token}"), client.get("/s/unknown")):
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Robots-Tag"] == "noindex"


def test_code_signs_in_and_uses_the_link(app, client, alex, smtp_server):
    ask_for_link(client, "alex@example.com")
    deliver(app)
    code = code_from(smtp_server.messages[-1])
    response = client.post("/sign-in/code", data={"email": "alex@example.com", "code": code,
                                                  "csrf_token": csrf_token(client)})
    assert (response.status_code, response.headers["Location"]) == (303, "/portal")
    assert Link.get().used_by == "code"
    assert "Hello, Alex Morgan" in client.get("/portal").get_data(as_text=True)


@pytest.mark.parametrize("way", ["link", "code"])
def test_a_sign_in_whose_session_could_not_start_leaves_the_link_unused(app, client, alex, smtp_server,
                                                                       monkeypatch, way):
    """The session starts in the transaction that uses the link up: neither without the other,
    so the client can simply try again."""
    token = mailed_link(app, client, smtp_server)
    code = code_from(smtp_server.messages[-1])

    def press():
        if way == "link":
            return continue_with(client, token)
        return client.post("/sign-in/code", data={"email": "alex@example.com", "code": code,
                                                  "csrf_token": csrf_token(client)})

    def database_gone(**_):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(blueprints._auth, "start_session", database_gone)
    assert press().status_code == 503
    assert Link.get().used_at is None and Session.select().count() == 0
    monkeypatch.undo()
    assert press().status_code == 303
    assert Link.get().used_by == way and Session.select().count() == 1


def test_the_code_page_says_what_is_wrong_beside_each_field_and_keeps_the_address(app, client, alex, smtp_server):
    ask_for_link(client, "alex@example.com")
    deliver(app)
    laptop = app.test_client()
    form = {"entry": "page", "csrf_token": csrf_token(laptop, "/sign-in/code")}
    missing = laptop.post("/sign-in/code", data={**form, "email": "", "code": "12"})
    page = missing.get_data(as_text=True)
    assert missing.status_code == 422 and "Sign in with a code" in page
    assert "Please enter the email address the code was sent to." in page and "The code is 6 digits" in page
    wrong = laptop.post("/sign-in/code", data={**form, "email": "alex@example.com", "code": "000000"},
                        headers={"HX-Request": "true", "HX-Trigger": "code-entry-form"})
    fragment = wrong.get_data(as_text=True)
    assert wrong.status_code == 422 and fragment.lstrip().startswith('<div id="code-entry">')  # swapped in place
    assert 'value="alex@example.com"' in fragment and "That code is not right" in fragment
    assert Link.get().used_at is None and Link.get().code_attempts == 1


def test_every_sign_in_email_sends_another_device_to_the_code_page(app, client, alex, smtp_server):
    ask_for_link(client, "alex@example.com")
    deliver(app)
    message = smtp_server.messages[-1]
    for part in (text_part(message), message.get_body(preferencelist=("html",)).get_content()):
        assert "http://portal.test/sign-in/code" in part and code_from(message) in part
        assert "ask for a link with this address" not in part  # that would replace this very link
    assert 'href="/sign-in/code"' in client.get("/sign-in").get_data(as_text=True)


def test_code_and_link_are_one_link_using_one_uses_the_other(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    code = code_from(smtp_server.messages[-1])
    continue_with(client, token)
    laptop = app.test_client()
    response = laptop.post("/sign-in/code", data={"email": "alex@example.com", "code": code,
                                                  "csrf_token": csrf_token(laptop)})
    assert response.status_code == 422


def wrong_code_for(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def enter_code(browser, address, code, ip="127.0.0.1"):
    form = {"entry": "page", "email": address, "code": code, "csrf_token": csrf_token(browser, "/sign-in/code")}
    return browser.post("/sign-in/code", data=form, environ_base={"REMOTE_ADDR": ip})


def test_five_wrong_codes_end_the_code_path_but_not_the_link(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    right = code_from(smtp_server.messages[-1])
    form = {"email": "alex@example.com", "code": wrong_code_for(right), "csrf_token": csrf_token(client)}
    for attempt in range(1, MAX_CODE_ATTEMPTS + 1):
        page = client.post("/sign-in/code", data=form).get_data(as_text=True)
        if attempt < MAX_CODE_ATTEMPTS:
            assert "That code is not right" in page
    assert "Too many wrong codes: the code from that email no longer works." in page
    assert "The link in the same email still does" in page and "Send me a new link" in page
    # The right code is refused now; the link from the email still signs in.
    form["code"] = right
    refused = client.post("/sign-in/code", data=form)
    assert refused.status_code == 422 and "Too many wrong codes" in refused.get_data(as_text=True)
    assert Session.select().count() == 0
    assert continue_with(client, token).headers["Location"] == "/portal"


def test_wrong_codes_from_someone_else_never_burn_the_clients_link(app, alex, smtp_server):
    phone = app.test_client()
    token = mailed_link(app, phone, smtp_server)
    attacker = app.test_client()
    for n in range(3 * MAX_CODE_ATTEMPTS):
        enter_code(attacker, "alex@example.com", f"{n:06d}", ip="203.0.113.50")
    link = Link.get()
    assert link.revoked_at is None and link.used_at is None
    opened = phone.get(f"/s/{token}")
    assert opened.status_code == 200 and "Continue to the portal" in opened.get_data(as_text=True)
    assert continue_with(phone, token).headers["Location"] == "/portal"
    assert phone.get("/portal").status_code == 200


def _answers(app, address, ip, traveller):
    """What someone sees entering wrong codes for `address` after asking for a link for it,
    with everything that differs by address alone (the address, the CSRF token) taken out."""
    browser = app.test_client()
    seen = []

    def look(response):
        text = re.sub(r'(value=|"X-CSRFToken": )"[\w.-]{60,}"', "", response.get_data(as_text=True))
        seen.append((response.status_code, text.replace(address, "ADDRESS")))

    look(browser.post("/sign-in", data={"email": address, "csrf_token": csrf_token(browser)},
                      environ_base={"REMOTE_ADDR": ip}))
    deliver(app)
    for n in range(MAX_CODE_ATTEMPTS + 2):
        look(enter_code(browser, address, f"{n:06d}", ip=ip))
    traveller.shift(60)
    look(browser.post("/sign-in", data={"email": address, "csrf_token": csrf_token(browser)},
                      environ_base={"REMOTE_ADDR": ip}))  # a new link: a new code, counted anew
    deliver(app)
    look(enter_code(browser, address, "999999", ip=ip))
    return seen


def test_the_code_page_answers_a_stranger_exactly_as_a_client(app, alex, smtp_server, traveller):
    client_answers = _answers(app, "alex@example.com", "203.0.113.1", traveller)
    stranger_answers = _answers(app, "zed@example.com", "203.0.113.2", traveller)
    assert [status for status, _ in client_answers] == [200] + [422] * 7 + [200, 422]
    for n, (one, other) in enumerate(zip(client_answers, stranger_answers)):
        assert one == other, f"answer {n} differs"
    assert "Too many wrong codes" in client_answers[5][1] and "Too many wrong codes" not in client_answers[4][1]
    assert "That code is not right" in client_answers[-1][1]


def test_wrong_codes_are_counted_per_network_address_across_every_email_address(make_app, alex):
    app = make_app(CODE_IP_LIMIT="1000 per minute")
    guesser = app.test_client()
    for n in range(20):
        assert enter_code(guesser, f"person{n // 4}@example.com", f"{n:06d}", ip="203.0.113.9").status_code == 422
    refused = enter_code(guesser, "alex@example.com", "123456", ip="203.0.113.9")
    assert refused.status_code == 429
    assert "Too many wrong codes from your network" in refused.get_data(as_text=True)
    assert enter_code(app.test_client(), "alex@example.com", "123456", ip="198.51.100.1").status_code == 422


def test_code_for_a_stranger_gets_the_same_answer_as_a_wrong_code(app, client, alex, smtp_server):
    ask_for_link(client, "alex@example.com")
    deliver(app)
    token = csrf_token(client)
    stranger = client.post("/sign-in/code", data={"email": "x@example.com", "code": "123456", "csrf_token": token})
    wrong = client.post("/sign-in/code", data={"email": "alex@example.com", "code": "000000", "csrf_token": token})
    assert stranger.status_code == wrong.status_code == 422
    assert "That code is not right" in stranger.get_data(as_text=True)


@pytest.mark.parametrize("code", ["", "12345", "abcdef", "1234567"])
def test_malformed_code_gets_a_clear_message(client, code):
    response = client.post("/sign-in/code", data={"email": "alex@example.com", "code": code,
                                                  "csrf_token": csrf_token(client)})
    assert response.status_code == 422
    assert "6-digit code" in response.get_data(as_text=True) or "The code is 6 digits" in response.get_data(as_text=True)


def test_archived_client_gets_the_strangers_answer_and_their_links_die(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    archive_client(alex)
    assert client.get(f"/s/{token}").status_code == 404
    ask_for_link(client, "alex@example.com")
    deliver(app)
    assert len(smtp_server.to("alex@example.com")) == 1


def test_link_events_are_audited(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    client.get(f"/s/{token}")
    continue_with(client, token)
    continue_with(app.test_client(), token)
    kinds = [e.kind for e in AuditEvent.select().order_by(AuditEvent.id)]
    for kind in ("link_issued", "link_opened", "link_redeemed", "link_rejected", "signed_in"):
        assert kind in kinds
    assert AuditEvent.get(AuditEvent.kind == "link_rejected").detail == "used"


def test_link_target_cannot_point_off_site(app):
    bob = add_client("bob@example.com", "Bob")
    for target in ("https://evil.example/", "//evil.example", "/portal/../\\evil"):
        assert issue_link(bob, "clinician", target=target).link.target == "/portal"


def test_invitation_links_live_72_hours(app, traveller):
    bob = add_client("bob@example.com", "Bob")
    issued = issue_link(bob, "invitation")
    assert (issued.link.expires_at - issued.link.issued_at).total_seconds() == 72 * 3600


def test_sign_in_email_says_what_a_client_needs(app, client, alex, smtp_server):
    # A request under another Host name is refused (TRUSTED_HOSTS); links go on PORTAL_BASE_URL.
    assert client.get("/sign-in", base_url="http://evil.example").status_code == 400
    page = client.get("/sign-in").get_data(as_text=True)
    client.post("/sign-in", data={"email": "alex@example.com", "csrf_token": CSRF_INPUT.search(page).group(1)})
    deliver(app)
    message = smtp_server.messages[-1]
    assert message["Subject"] == f"{code_from(message)} is your sign-in code for Portico"
    assert message["Reply-To"] == "portal@portal.test"
    assert re.fullmatch(r"<[^@>]+@portal\.test>", message["Message-ID"])
    text = text_part(message)
    html = message.get_body(preferencelist=("html",)).get_content()
    for part in (text, html):
        assert "http://portal.test/s/" in part and "evil.example" not in part
        assert "works once, for 24 hours" in part and "replaces any earlier link" in part
        assert code_from(message) in part


def test_each_email_has_its_own_message_id(app, client, alex, smtp_server, traveller):
    ask_for_link(client, "alex@example.com")
    deliver(app)
    traveller.shift(120)
    ask_for_link(client, "alex@example.com")
    deliver(app)
    first, second = smtp_server.to("alex@example.com")
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Subject"] != second["Subject"]


def test_links_issued_at_the_same_moment_leave_exactly_one_live(app, alex):
    """A clinician's 'send link' and the client's own request racing, on either database:
    whichever commits last must still have replaced the other."""
    import threading
    from practice.models import db
    for _ in range(10):
        barrier = threading.Barrier(2)

        def issue():
            with db.connection_context():
                barrier.wait()
                issue_link(alex, "client_request")

        threads = [threading.Thread(target=issue) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        live = Link.select().where((Link.client == alex) & Link.used_at.is_null() & Link.revoked_at.is_null())
        assert live.count() == 1
