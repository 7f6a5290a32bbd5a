"""Client passkeys, server side: whole registration and sign-in ceremonies with a software
authenticator (a real P-256 key), and every refusal answering in the same words."""
import json
import logging
import re

import pytest

from practice.clients import archive_client
from practice.models import AuditEvent, Passkey, PasskeyChallenge, Session
from tests._authenticator import SoftAuthenticator
from tests.conftest import clinic_csrf, clinic_sign_in, continue_with, csrf_token, mailed_link

ORIGIN = "http://portal.test"  # the test apps' PORTAL_BASE_URL
CSRF_HEADER = re.compile(r'"X-CSRFToken": "([^"]+)"')


def page_csrf(client, path="/portal") -> str:
    return CSRF_HEADER.search(client.get(path).get_data(as_text=True)).group(1)


def post_json(client, path, body=None, *, csrf):
    return client.post(path, json=body if body is not None else {}, headers={"X-CSRFToken": csrf})


def link_sign_in(app, client, smtp_server):
    response = continue_with(client, mailed_link(app, client, smtp_server))
    assert response.status_code == 303


def register(client, authenticator, **answer_options):
    csrf = page_csrf(client)
    options = post_json(client, "/portal/passkeys/options", csrf=csrf)
    assert options.status_code == 200
    return post_json(client, "/portal/passkeys", authenticator.create(options.get_data(as_text=True), ORIGIN,
                                                                      **answer_options), csrf=csrf)


def sign_in_options(client) -> tuple[str, str]:
    csrf = csrf_token(client, "/sign-in")
    options = post_json(client, "/sign-in/passkey/options", csrf=csrf)
    assert options.status_code == 200
    return options.get_data(as_text=True), csrf


def passkey_sign_in(client, authenticator, *, origin=ORIGIN, **answer_options):
    options, csrf = sign_in_options(client)
    return post_json(client, "/sign-in/passkey", authenticator.get(options, origin, **answer_options), csrf=csrf)


def sign_out(client):
    client.post("/sign-out", data={"csrf_token": page_csrf(client)})


@pytest.fixture
def registered(app, client, alex, smtp_server):
    """Alex signed in with a link, made a passkey on this device, and signed out."""
    link_sign_in(app, client, smtp_server)
    authenticator = SoftAuthenticator()
    response = register(client, authenticator)
    assert response.status_code == 201, response.get_data(as_text=True)
    sign_out(client)
    return authenticator


def kinds(client_row):
    return [event.kind for event in AuditEvent.select().where(AuditEvent.client == client_row).order_by(AuditEvent.id)]


def test_passkey_made_after_a_link_sign_in_signs_in_with_a_new_session_and_no_email(
        app, client, alex, smtp_server, registered, traveller):
    mails = len(smtp_server.messages)
    passkey = Passkey.get(Passkey.client == alex)
    assert passkey.sign_count == 0 and passkey.credential_id == registered.id
    assert Passkey.select().count() == 1

    response = passkey_sign_in(client, registered)
    assert response.status_code == 200
    assert response.get_json() == {"redirect": "/portal"}  # where a link lands
    assert "Hello, Alex Morgan" in client.get("/portal").get_data(as_text=True)
    assert len(smtp_server.messages) == mails  # no email at all

    sessions = list(Session.select().where(Session.client == alex).order_by(Session.id))
    assert len(sessions) == 2 and sessions[0].end_reason == "signed_out" and sessions[1].ended_at is None
    passkey = Passkey.get_by_id(passkey.id)
    assert passkey.sign_count == 1 and passkey.last_used_at is not None
    assert kinds(alex)[-2:] == ["passkey_used", "signed_in"]

    # The same idle limit as a link's session.
    traveller.shift(15 * 60 + 1)
    response = client.get("/portal")
    assert response.status_code == 303 and response.headers["Location"].endswith("/sign-in")


def test_every_refusal_gives_the_same_answer(app, client, alex, registered, traveller):
    stranger = SoftAuthenticator()
    stranger.user_handle = b"someone"
    answers = {"unknown passkey": passkey_sign_in(client, stranger)}

    # A replayed answer: the challenge it signed is used up.
    options, csrf = sign_in_options(client)
    answer = registered.get(options, ORIGIN)
    assert post_json(client, "/sign-in/passkey", answer, csrf=csrf).status_code == 200
    sign_out(client)
    answers["replayed"] = post_json(client, "/sign-in/passkey", answer, csrf=csrf)

    answers["another origin"] = passkey_sign_in(client, registered, origin="https://evil.test")
    answers["another RP ID"] = passkey_sign_in(client, registered, rp_id="evil.test")
    answers["a lowered counter"] = passkey_sign_in(client, registered, count=0)

    options, csrf = sign_in_options(client)
    traveller.shift(5 * 60 + 1)  # past the challenge's five minutes
    answers["a stale challenge"] = post_json(client, "/sign-in/passkey", registered.get(options, ORIGIN), csrf=csrf)

    forged = registered.get(sign_in_options(client)[0], ORIGIN)
    forged["response"]["clientDataJSON"] = "not-json"
    answers["malformed"] = post_json(client, "/sign-in/passkey", forged, csrf=csrf)

    bodies = {case: (response.status_code, response.get_data(as_text=True)) for case, response in answers.items()}
    assert {status for status, _ in bodies.values()} == {400}, bodies
    assert len({body for _, body in bodies.values()}) == 1, bodies
    assert answers["unknown passkey"].get_json() == {
        "error": "That passkey did not sign you in. Try again, or sign in with an email link."}
    assert not any(response.headers.get("Set-Cookie") for response in answers.values())  # nobody signed in
    assert client.get("/portal").status_code == 303
    refused = AuditEvent.select().where(AuditEvent.kind == "passkey_refused")
    assert refused.count() == len(answers)
    assert refused.where(AuditEvent.client.is_null()).count() == 1  # the unknown one is nobody's


def test_a_sign_in_challenge_cannot_register_and_a_registration_needs_user_verification(
        app, client, alex, smtp_server):
    link_sign_in(app, client, smtp_server)
    csrf = page_csrf(client)
    options = json.loads(post_json(client, "/portal/passkeys/options", csrf=csrf).get_data(as_text=True))
    options["challenge"] = json.loads(sign_in_options(app.test_client())[0])["challenge"]
    wrong_kind = SoftAuthenticator().create(json.dumps(options), ORIGIN)
    assert post_json(client, "/portal/passkeys", wrong_kind, csrf=csrf).status_code == 400
    response = register(client, SoftAuthenticator(), verified=False)
    assert response.status_code == 400
    assert response.get_json() == {"error": "That passkey could not be saved. Please try again."}
    assert Passkey.select().count() == 0


def test_challenges_are_kept_only_as_hashes_and_go_once_used(app, client, alex, registered):
    options, csrf = sign_in_options(client)
    challenge = re.search(r'"challenge": ?"([^"]+)"', options).group(1)
    rows = list(PasskeyChallenge.select().where(PasskeyChallenge.used_at.is_null()))
    assert len(rows) == 1 and challenge not in rows[0].challenge_hash and len(rows[0].challenge_hash) == 64
    post_json(client, "/sign-in/passkey", registered.get(options, ORIGIN), csrf=csrf)
    assert PasskeyChallenge.get_by_id(rows[0].id).used_at is not None


def test_client_lists_and_removes_a_passkey_and_it_no_longer_signs_in(app, client, alex, registered, smtp_server):
    link_sign_in(app, client, smtp_server)
    page = client.get("/portal/passkeys", headers={"User-Agent": "x"}).get_data(as_text=True)
    assert "Your passkeys" in page and "Not yet" in page  # never used yet
    passkey = Passkey.get(Passkey.client == alex)
    response = client.post(f"/portal/passkeys/{passkey.id}/remove", data={"csrf_token": page_csrf(client)})
    assert response.status_code == 303
    assert "You have no passkeys yet." in client.get("/portal/passkeys").get_data(as_text=True)
    sign_out(client)
    assert passkey_sign_in(client, registered).status_code == 400
    assert "passkey_removed" in kinds(alex)


def test_a_client_cannot_remove_someone_elses_passkey(app, client, alex, registered, smtp_server):
    from practice.clients import add_client
    add_client("sam@example.com", "Sam Lee")
    other = app.test_client()
    token = mailed_link(app, other, smtp_server, "sam@example.com")
    continue_with(other, token)
    passkey = Passkey.get(Passkey.client == alex)
    other.post(f"/portal/passkeys/{passkey.id}/remove", data={"csrf_token": page_csrf(other)})
    assert Passkey.get_or_none(Passkey.id == passkey.id) is not None


def test_archiving_refuses_the_passkey_at_once(app, client, alex, registered):
    archive_client(alex)
    assert passkey_sign_in(client, registered).status_code == 400
    assert AuditEvent.select().where(AuditEvent.kind == "passkey_refused").get().detail.endswith(
        "the client is archived")


def test_clinician_sees_the_count_and_removes_all_and_the_history_says_so(
        app, client, alex, registered, dana):
    passkey_sign_in(client, registered)
    clinic = app.test_client()
    clinic_sign_in(clinic, "dana@example.com")
    page = clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True)
    assert "<dt>Passkeys</dt><dd>1 (signs in without email)</dd>" in page
    for words in ("Passkey added (", "Signed in with a passkey ("):
        assert words in page
    response = clinic.post(f"/clinic/clients/{alex.id}/passkeys/remove-all", data={"csrf_token": clinic_csrf(clinic)})
    assert response.status_code == 303
    page = clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True)
    assert "<dt>Passkeys</dt><dd>None</dd>" in page and "Remove all passkeys" not in page
    assert "Passkeys removed by the practice (1 passkey)" in page
    assert Passkey.select().count() == 0
    sign_out(client)
    assert passkey_sign_in(client, registered).status_code == 400


def test_the_timeout_page_offers_the_passkey_first(app, client, alex, registered, traveller):
    passkey_sign_in(client, registered)
    traveller.shift(15 * 60 + 1)
    client.get("/portal")
    page = client.get("/sign-in").get_data(as_text=True)
    assert "You were signed out after a period of inactivity" in page
    assert page.index("Sign in with a passkey") < page.index('id="email"')
    assert 'autocomplete="username webauthn"' in page and 'value="alex@example.com"' in page


def test_the_offer_shows_once_per_device_until_dismissed(app, client, alex, smtp_server):
    link_sign_in(app, client, smtp_server)
    assert "Sign in faster next time" in client.get("/portal").get_data(as_text=True)
    response = client.post("/portal/passkeys/offer/dismiss", data={"csrf_token": page_csrf(client)})
    assert response.status_code == 303
    assert "Sign in faster next time" not in client.get("/portal").get_data(as_text=True)
    another_device = app.test_client()
    link_sign_in(app, another_device, smtp_server)
    assert "Sign in faster next time" in another_device.get("/portal").get_data(as_text=True)
    assert register(another_device, SoftAuthenticator()).status_code == 201
    assert "Sign in faster next time" not in another_device.get("/portal").get_data(as_text=True)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:5000", "http://[::1]:5000"])
def test_no_passkeys_where_the_base_url_is_an_ip_address(make_app, base_url, smtp_server):
    app = make_app(PORTAL_BASE_URL=base_url)
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in with a passkey" not in page and "passkeys.js" not in page
    assert 'autocomplete="email"' in page
    csrf = csrf_token(client, "/sign-in")
    assert post_json(client, "/sign-in/passkey/options", csrf=csrf).status_code == 404


def test_no_challenge_or_credential_reaches_a_log_line(app, client, alex, registered, caplog):
    caplog.set_level(logging.DEBUG)
    options, csrf = sign_in_options(client)
    answer = registered.get(options, ORIGIN)
    post_json(client, "/sign-in/passkey", answer, csrf=csrf)
    post_json(client, "/sign-in/passkey", answer, csrf=csrf)  # refused too
    challenge = re.search(r'"challenge": ?"([^"]+)"', options).group(1)
    logged = caplog.text
    for secret in (challenge, registered.id, answer["response"]["signature"], answer["response"]["clientDataJSON"]):
        assert secret not in logged


def test_unreadable_json_is_refused_with_a_400(app, client, alex, registered):
    csrf = csrf_token(client, "/sign-in")
    for body in (b"[" * 5000, b'{"\\ud800": 1}', b"[]", b"not json"):
        response = client.post("/sign-in/passkey", data=body, content_type="application/json",
                               headers={"X-CSRFToken": csrf})
        assert response.status_code == 400 and "error" in response.get_json()
