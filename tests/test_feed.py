"""The client's private calendar feed."""
from datetime import timedelta

import pytest
from icalendar import Calendar

from practice.appointments import cancel_appointment, create_appointment
from practice.feeds import feed_token, revoke_feed
from practice.links import issue_link
from tests.conftest import START

pytestmark = pytest.mark.usefixtures("traveller")
SECRET = b"test-secret-key"


def feed_of(client, token):
    response = client.get(f"/feed/{token}.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.data)


def test_feed_lists_upcoming_appointments_and_not_cancelled_or_past_ones(app, client, alex, dana):
    with app.app_context():
        upcoming = create_appointment(clinician=dana, client=alex, kind="in_person",
                                      starts_at=START + timedelta(days=1), ends_at=START + timedelta(days=1, hours=1))
        gone = create_appointment(clinician=dana, client=alex, kind="in_person",
                                  starts_at=START + timedelta(days=2), ends_at=START + timedelta(days=2, hours=1))
        cancel_appointment(gone)
    events = feed_of(client, feed_token(alex, SECRET)).walk("VEVENT")
    assert [str(e["uid"]) for e in events] == [f"appointment-{upcoming.id}@portal.test"]
    assert str(events[0]["summary"]) == "Appointment with Portico"


def test_feed_url_is_stable_until_revoked(app, client, alex):
    token = feed_token(alex, SECRET)
    assert feed_token(alex, SECRET) == token
    revoke_feed(alex)
    assert client.get(f"/feed/{token}.ics").status_code == 404
    assert feed_token(alex, SECRET) != token


@pytest.mark.parametrize("token", ["1.AAAA", "nope", "1.", ".x"])
def test_wrong_feed_tokens_are_not_recognised(client, alex, token):
    assert client.get(f"/feed/{token}.ics").status_code == 404


def test_feed_and_sign_in_tokens_do_not_cross(app, client, alex):
    link_token = issue_link(alex, "client_request", code_key=SECRET).token
    assert client.get(f"/feed/{link_token}.ics").status_code == 404
    assert client.get(f"/s/{feed_token(alex, SECRET)}").status_code == 404
