"""Retention: answered sign-in requests and sent emails are pruned once they are older than
the retention period (90 days unless PORTAL_RETENTION_DAYS says otherwise); mail not sent,
requests not answered, links and the audit trail are kept."""
import pytest

from practice import jobs
from practice.models import AuditEvent, Email, Link, SignInRequest
from practice.sign_in import request_sign_in_link
from tests.conftest import ask_for_link, clinic_sign_in, deliver
from tests.test_clinic_clients import link_row

DAY = 86400

pytestmark = pytest.mark.usefixtures("traveller")


def test_answered_requests_and_sent_mail_are_kept_90_days_then_pruned(app, client, alex, smtp_server, traveller):
    ask_for_link(client, alex.email)
    ask_for_link(client, "stranger@example.com")  # answered too ("unknown"), with no mail
    deliver(app)
    assert SignInRequest.select().count() == 2 and Email.get().status == "sent"

    traveller.shift(90 * DAY - 60)
    assert jobs.retention_tick() == 0
    assert SignInRequest.select().count() == 2 and Email.select().count() == 1

    traveller.shift(120)
    assert jobs.retention_tick() == 3

    assert SignInRequest.select().count() == 0 and Email.select().count() == 0
    # What the audit needs stays: the link and what happened to it.
    assert Link.select().count() == 1
    assert [e.kind for e in AuditEvent.select().where(AuditEvent.client == alex)] == ["client_added", "link_issued"]


def test_mail_not_sent_and_requests_not_answered_are_never_pruned(app, client, alex, smtp_server, traveller):
    smtp_server.refuse.add(alex.email)
    ask_for_link(client, alex.email)
    deliver(app)  # refused: queued again for a later try
    request_sign_in_link("later@example.com")  # nobody has answered it yet
    waiting = SignInRequest.get(SignInRequest.email == "later@example.com")

    traveller.shift(400 * DAY)
    jobs.retention_tick()

    assert Email.get().status == "queued"
    assert [r.id for r in SignInRequest.select()] == [waiting.id]


def test_the_retention_period_is_the_practices_to_set(make_app, client, alex, smtp_server, traveller):
    app = make_app(PORTAL_RETENTION_DAYS=30)
    browser = app.test_client()
    ask_for_link(browser, alex.email)
    deliver(app)

    traveller.shift(29 * DAY)
    with app.app_context():
        assert jobs.retention_tick() == 0
    traveller.shift(2 * DAY)
    with app.app_context():
        assert jobs.retention_tick() == 2


@pytest.mark.parametrize("days", [0, 3, -1])
def test_a_retention_shorter_than_a_week_is_refused_at_start(make_app, days):
    with pytest.raises(ValueError, match="PORTAL_RETENTION_DAYS"):
        make_app(PORTAL_RETENTION_DAYS=days)


def test_a_pruned_email_is_explained_in_the_link_history(app, client, dana, alex, smtp_server, traveller):
    ask_for_link(client, alex.email)
    deliver(app)
    traveller.shift(91 * DAY)
    jobs.retention_tick()

    clinic = app.test_client()
    clinic_sign_in(clinic, dana.email)
    page = clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True)

    outcome, text = link_row(page, 1)
    assert outcome == "expired"
    assert "Its email's delivery record is no longer kept (sent mail is kept 90 days)" in text
    assert "No email was queued" not in text


def test_the_retention_job_prunes_a_long_backlog_in_batches(app, alex, traveller):
    from practice.clock import utcnow
    SignInRequest.insert_many([{"email": f"c{n}@example.com", "requested_at": utcnow(), "processed_at": utcnow(),
                                "outcome": "unknown"} for n in range(1203)]).execute()
    traveller.shift(91 * DAY)

    assert jobs.retention_tick() == 1203
    assert SignInRequest.select().count() == 0
