"""Client sessions: server-side, opaque cookie, idle and absolute timeouts, sign-out."""
import hashlib

import pytest

from practice.clients import archive_client
from practice.models import AuditEvent, Practice, Session
from tests.conftest import continue_with, csrf_token, mailed_link

pytestmark = pytest.mark.usefixtures("traveller")


@pytest.fixture
def signed_in(app, client, alex, smtp_server):
    """A client signed in through a mailed link; returns the raw session id from the cookie."""
    token = mailed_link(app, client, smtp_server)
    response = continue_with(client, token)
    assert response.status_code == 303
    return client.get_cookie("portico").value


def test_cookie_holds_only_an_opaque_id_httponly_samesite_lax(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    header = continue_with(client, token).headers["Set-Cookie"]
    raw_id = header.split(";")[0].split("=", 1)[1]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Max-Age" not in header
    assert "alex" not in raw_id and len(raw_id) >= 43
    # Only the hash is stored.
    assert Session.get().id_hash == hashlib.sha256(raw_id.encode()).hexdigest()


def test_https_base_url_makes_the_cookie_secure_with_host_prefix(make_app, alex, smtp_server):
    app = make_app(PORTAL_BASE_URL="https://portal.test")
    client = app.test_client()
    from practice.links import issue_link
    issued = issue_link(alex, "client_request")
    page = client.get(f"https://portal.test/s/{issued.token}")
    assert "__Host-portico_csrf" in page.headers["Set-Cookie"] and "Secure" in page.headers["Set-Cookie"]
    response = continue_with_https(client, issued.token)
    assert response.headers["Set-Cookie"].startswith("__Host-portico=")
    assert "Secure" in response.headers["Set-Cookie"] and "Path=/" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def continue_with_https(client, token):
    from tests.conftest import CSRF_INPUT
    page = client.get(f"https://portal.test/s/{token}").get_data(as_text=True)
    return client.post(f"https://portal.test/s/{token}", data={"csrf_token": CSRF_INPUT.search(page).group(1)})


def test_each_sign_in_gets_a_new_session_id(app, client, alex, smtp_server, signed_in):
    token = mailed_link(app, app.test_client(), smtp_server)
    continue_with(client, token)
    assert client.get_cookie("portico").value != signed_in
    assert Session.select().count() == 2
    # The browser's earlier session is over, not left open beside the new one.
    assert Session.select().where(Session.ended_at.is_null()).count() == 1


def test_portal_home_shows_name_sections_and_sign_out(client, signed_in):
    page = client.get("/portal").get_data(as_text=True)
    for text in ("Hello, Alex Morgan", "Upcoming appointments", "Documents", "Sign out",
                 "You have no upcoming appointments."):
        assert text in page


def test_portal_pages_ask_for_the_timeout_warning_two_minutes_before_the_idle_limit(client, signed_in, traveller):
    traveller.shift(60)  # a minute in: the idle limit (15 minutes) is 14 minutes away
    for path in ("/portal", "/portal/documents"):
        page = client.get(path).get_data(as_text=True)  # a page view counts as activity again
        assert 'id="session-warning" hx-get="/session/warning"' in page, path
        assert 'hx-trigger="load delay:780s"' in page, path  # 15 minutes less the 2 of warning


def test_portal_needs_a_signed_in_client(client):
    response = client.get("/portal")
    assert (response.status_code, response.headers["Location"]) == (303, "/sign-in")


def test_unauthorised_htmx_request_gets_hx_redirect_to_sign_in(client):
    response = client.get("/session/warning", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/sign-in"


def test_sign_out_ends_the_session_and_a_replayed_cookie_signs_nobody_in(app, client, signed_in):
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/portal")})
    assert Session.get().end_reason == "signed_out"
    replay = app.test_client()
    replay.set_cookie("portico", signed_in)
    assert replay.get("/portal").headers["Location"] == "/sign-in"
    assert AuditEvent.select().where(AuditEvent.kind == "signed_out").count() == 1


def test_after_sign_out_the_sign_in_page_says_so_with_the_email_filled_in(client, signed_in):
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/portal")})
    page = client.get("/sign-in").get_data(as_text=True)
    assert "You have signed out." in page and 'value="alex@example.com"' in page


def test_idle_timeout_signs_out_after_15_minutes(client, signed_in, traveller):
    traveller.shift(15 * 60 - 1)
    assert client.get("/portal").status_code == 200
    traveller.shift(15 * 60)
    response = client.get("/portal")
    assert response.headers["Location"] == "/sign-in"
    page = client.get("/sign-in").get_data(as_text=True)
    assert "signed out after a period of inactivity" in page
    assert 'value="alex@example.com"' in page
    assert Session.get().end_reason == "idle"
    assert AuditEvent.get(AuditEvent.kind == "session_ended").detail == "idle"


def test_idle_limit_follows_the_practice_setting(client, signed_in, traveller):
    Practice.update(client_idle_minutes=5).execute()
    traveller.shift(5 * 60)
    assert client.get("/portal").status_code == 303


def test_activity_keeps_the_session_alive_until_the_absolute_12_hours(client, signed_in, traveller):
    for _ in range(12 * 6 - 1):
        traveller.shift(10 * 60)
        assert client.get("/portal").status_code == 200
    traveller.shift(10 * 60)  # 12 hours since sign-in
    assert client.get("/portal").status_code == 303
    assert Session.get().end_reason == "absolute"
    assert "signed in for a long time" in client.get("/sign-in").get_data(as_text=True)


def test_stay_signed_in_is_offered_two_minutes_before_the_idle_limit(client, signed_in, traveller):
    assert "Stay signed in" not in client.get("/session/warning").get_data(as_text=True)
    traveller.shift(12 * 60)
    assert "Stay signed in" not in client.get("/session/warning").get_data(as_text=True)
    traveller.shift(60)
    warning = client.get("/session/warning").get_data(as_text=True)
    assert "Stay signed in" in warning
    # Checking for the warning is not activity: the session still ends on time...
    traveller.shift(2 * 60)
    assert client.get("/session/warning").headers.get("Location") == "/sign-in"


def test_stay_signed_in_restarts_the_idle_clock(client, signed_in, traveller):
    traveller.shift(14 * 60)
    response = client.post("/session/keep-alive", data={"csrf_token": csrf_token(client, "/portal")},
                           headers={"HX-Request": "true", "HX-Trigger": "stay-signed-in"})
    assert response.status_code == 200 and "Stay signed in" not in response.get_data(as_text=True)
    traveller.shift(14 * 60)
    assert client.get("/portal").status_code == 200


def test_a_timed_out_htmx_poll_is_sent_to_sign_in(client, signed_in, traveller):
    traveller.shift(16 * 60)
    response = client.get("/session/warning", headers={"HX-Request": "true", "HX-Trigger": "session-warning"})
    assert response.headers["HX-Redirect"] == "/sign-in"


def test_archiving_a_client_ends_their_session_at_once(client, alex, signed_in):
    archive_client(alex)
    assert client.get("/portal").status_code == 303
    assert Session.get().end_reason == "archived"


def test_sign_out_clears_the_session_cookie(client, signed_in):
    response = client.post("/sign-out", data={"csrf_token": csrf_token(client, "/portal")})
    assert response.status_code == 303
    assert "portico=;" in response.headers.get("Set-Cookie", "")
    assert client.get_cookie("portico") is None


@pytest.mark.parametrize("how", ["signed_out", "idle"])
def test_an_old_session_cookie_replayed_months_later_tells_nobody_who_used_it(app, client, signed_in, traveller, how):
    if how == "signed_out":
        client.post("/sign-out", data={"csrf_token": csrf_token(client, "/portal")})
    else:
        traveller.shift(16 * 60)
        client.get("/portal")  # the timeout is noticed and written
    traveller.shift(90 * 24 * 3600)
    replay = app.test_client()
    replay.set_cookie("portico", signed_in)
    response = replay.get("/sign-in")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "alex@example.com" not in page and "signed out" not in page
    assert "portico=;" in response.headers.get("Set-Cookie", "")  # and the stale cookie goes


def test_a_session_that_ended_within_the_absolute_limit_is_still_explained(app, client, signed_in, traveller):
    traveller.shift(16 * 60)
    traveller.shift(11 * 3600)  # within the 12-hour absolute limit of the timeout
    page = client.get("/sign-in").get_data(as_text=True)
    assert "after a period of inactivity" in page and 'value="alex@example.com"' in page
