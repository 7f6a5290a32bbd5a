"""The existing-client sign-in page: asking for a link."""
import pytest

from practice.models import AuditEvent, Email, Link, SignInRequest
from tests.conftest import ask_for_link, csrf_token, deliver

pytestmark = pytest.mark.usefixtures("traveller")


def test_sign_in_page_shows_practice_name_one_email_field_and_bookmark_line(client):
    page = client.get("/sign-in").get_data(as_text=True)
    assert "Sign in to Portico" in page
    assert page.count("<input") - page.count('type="hidden"') == 1
    assert 'type="email"' in page and ">Continue</button>" in page
    assert "bookmark this page" in page


def test_sign_in_form_works_without_javascript(client):
    page = client.get("/sign-in").get_data(as_text=True)
    assert 'method="post" action="/sign-in"' in page


def test_answer_is_the_same_for_a_client_and_a_stranger(app, client, alex):
    for_client = ask_for_link(client, "alex@example.com")
    for_stranger = ask_for_link(client, "nobody@example.com")
    assert for_client.status_code == for_stranger.status_code == 200
    normalise = lambda r, who: r.get_data(as_text=True).replace(who, "ADDRESS")  # noqa: E731
    import re
    strip_tokens = lambda text: re.sub(r'value="[^"]{20,}"', "", text)  # noqa: E731
    assert strip_tokens(normalise(for_client, "alex@example.com")) == strip_tokens(
        normalise(for_stranger, "nobody@example.com"))
    assert "If that address belongs to a client of Portico, a sign-in link is on its way." in for_client.get_data(as_text=True)
    assert "It works once, for 24 hours." in for_client.get_data(as_text=True)


def test_request_only_writes_a_row_mail_goes_through_the_outbox(app, client, alex, smtp_server):
    ask_for_link(client, "alex@example.com")
    ask_for_link(client, "nobody@example.com")
    # The request wrote one identical row each and nothing else: no link, no mail yet.
    assert SignInRequest.select().count() == 2
    assert Link.select().count() == 0 and Email.select().count() == 0
    deliver(app)
    assert [m["To"] for m in smtp_server.messages] == ["alex@example.com"]
    outcomes = {r.email: r.outcome for r in SignInRequest.select()}
    assert outcomes == {"alex@example.com": "issued", "nobody@example.com": "unknown"}


def test_email_address_is_matched_case_insensitively(app, client, alex, smtp_server):
    ask_for_link(client, "  Alex@Example.COM ")
    deliver(app)
    assert len(smtp_server.to("alex@example.com")) == 1


@pytest.mark.parametrize("address, message", [
    ("", "Please enter your email address."),
    ("not-an-email", "That does not look like an email address."),
    ("alex@", "That does not look like an email address."),
    ("a" * 250 + "@example.com", "That email address is too long."),
])
def test_malformed_email_gets_a_clear_message(client, address, message):
    response = ask_for_link(client, address)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert SignInRequest.select().count() == 0


def test_at_most_five_links_mailed_per_address_per_hour(app, client, alex, smtp_server, traveller):
    for attempt in range(7):
        response = ask_for_link(client, "alex@example.com")
        assert ("a sign-in link is on its way" in response.get_data(as_text=True)) == (attempt < 5)
        deliver(app)
        traveller.shift(60)
    assert len(smtp_server.to("alex@example.com")) == 5
    assert AuditEvent.select().where(AuditEvent.kind == "link_throttled").count() == 2
    assert SignInRequest.select().where(SignInRequest.outcome == "throttled").count() == 2
    traveller.shift(3600)
    ask_for_link(client, "alex@example.com")
    deliver(app)
    assert len(smtp_server.to("alex@example.com")) == 6


def test_requests_for_a_stranger_are_throttled_as_a_clients_are(app, client, alex, traveller):
    """Each answered request restarts an address's count of wrong codes: a stranger's must
    stop restarting it when a client's would, or the code page would tell them apart."""
    for _ in range(7):
        ask_for_link(client, "zed@example.com")
        deliver(app)
        traveller.shift(60)
    outcomes = [r.outcome for r in SignInRequest.select().order_by(SignInRequest.id)]
    assert outcomes == ["unknown"] * 5 + ["throttled"] * 2


def test_per_ip_limit_answers_with_a_friendly_429_page(make_app):
    app = make_app(SIGN_IN_IP_LIMIT="3 per minute")
    client = app.test_client()
    statuses = [ask_for_link(client, f"someone{i}@example.com").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    page = ask_for_link(client, "someone@example.com").get_data(as_text=True)
    assert "Please wait a moment" in page and "Traceback" not in page


def test_htmx_request_from_the_form_gets_only_the_fragment(client, alex):
    token = csrf_token(client)
    response = client.post("/sign-in", data={"email": "alex@example.com", "csrf_token": token},
                           headers={"HX-Request": "true", "HX-Trigger": "sign-in-form"})
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<section id="sign-in-sent"')
    assert "<html" not in body
    assert "HX-Trigger" in response.headers["Vary"]


def test_boosted_or_other_htmx_requests_get_the_whole_page(client, alex):
    token = csrf_token(client)
    response = client.post("/sign-in", data={"email": "alex@example.com", "csrf_token": token},
                           headers={"HX-Request": "true", "HX-Boosted": "true", "HX-Trigger": "sign-in-form"})
    assert "<html" in response.get_data(as_text=True)


def test_invalid_form_via_htmx_rerenders_the_form_in_place(client):
    token = csrf_token(client)
    response = client.post("/sign-in", data={"email": "nope", "csrf_token": token},
                           headers={"HX-Request": "true", "HX-Trigger": "sign-in-form"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<form id="sign-in-form"') and "does not look like an email" in body


def test_sign_in_post_without_csrf_token_is_refused_kindly(client):
    response = client.post("/sign-in", data={"email": "alex@example.com"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert SignInRequest.select().count() == 0


def test_an_address_over_the_limit_is_told_nothing_was_sent_and_when_asking_again_will(
        app, client, alex, smtp_server, traveller):
    traveller.shift(30)  # 9:00:30: the answer names the first whole minute asking again sends
    for _ in range(5):
        ask_for_link(client, "alex@example.com")
        deliver(app)
        traveller.shift(60)
    page = " ".join(ask_for_link(client, "alex@example.com").get_data(as_text=True).split())
    assert "a sign-in link is on its way" not in page
    assert "we have already sent it 5 sign-in links in the last hour, so we have not sent another." in page
    assert "The newest of those emails is the one that works" in page
    assert "Asking again from 10:01 AM will send a new one." in page
    assert 'role="alert"' in page
    deliver(app)
    assert len(smtp_server.to("alex@example.com")) == 5
    traveller.shift(3600 - 5 * 60)  # 10:00:30: the first request is an hour old
    assert "a sign-in link is on its way" in ask_for_link(client, "alex@example.com").get_data(as_text=True)
    deliver(app)
    assert len(smtp_server.to("alex@example.com")) == 6


def test_over_the_limit_a_client_and_a_stranger_get_byte_identical_answers(app, client, alex, traveller):
    """Counted per address, whoever it is: the throttled answer tells a client from nobody."""
    import re
    for _ in range(5):
        ask_for_link(client, "alex@example.com")
        ask_for_link(client, "nobody@example.com")
        deliver(app)
        traveller.shift(60)
    answers = [ask_for_link(client, address) for address in ("alex@example.com", "nobody@example.com")]
    assert [a.status_code for a in answers] == [200, 200]
    bodies = [re.sub(r'value="[^"]{20,}"', "", a.get_data(as_text=True).replace(address, "ADDRESS"))
              for a, address in zip(answers, ("alex@example.com", "nobody@example.com"))]
    assert "we have not sent another" in bodies[0]
    assert bodies[0].encode() == bodies[1].encode()
