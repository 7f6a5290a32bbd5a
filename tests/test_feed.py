"""The client's private calendar feed: shown on the portal home, switched off by a clinician."""
import re
from datetime import timedelta

import pytest
from icalendar import Calendar

from practice.appointments import cancel_appointment, create_appointment
from practice.feeds import feed_token, revoke_feed
from practice.links import issue_link
from practice.models import AuditEvent
from practice.telehealth import join_url
from tests.conftest import START, clinic_csrf, clinic_sign_in, continue_with, mailed_link

FEED_URL = re.compile(r'id="feed-url"[^>]* value="http://portal\.test(/feed/[^"]+\.ics)"')

pytestmark = pytest.mark.usefixtures("traveller")
SECRET = b"test-secret-key"


def feed_of(client, token):
    response = client.get(f"/feed/{token}.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    return Calendar.from_ical(response.data)


def test_feed_lists_upcoming_appointments_a_cancelled_one_as_cancelled_and_not_past_ones(
        app, client, alex, dana, traveller):
    # A cancelled appointment stays in the feed, marked cancelled, until its original end:
    # a calendar that already shows it removes it, rather than keep it for good.
    with app.app_context():
        create_appointment(clinician=dana, client=alex, kind="in_person",  # over by the time the feed is read
                                  starts_at=START + timedelta(hours=1), ends_at=START + timedelta(hours=2))
        upcoming = create_appointment(clinician=dana, client=alex, kind="in_person",
                                      starts_at=START + timedelta(days=1), ends_at=START + timedelta(days=1, hours=1))
        gone = create_appointment(clinician=dana, client=alex, kind="in_person",
                                  starts_at=START + timedelta(days=2), ends_at=START + timedelta(days=2, hours=1))
        cancel_appointment(gone)
    traveller.shift(timedelta(hours=3).total_seconds())
    events = feed_of(client, feed_token(alex, SECRET)).walk("VEVENT")
    assert [(str(e["uid"]), str(e["status"])) for e in events] == [
        (f"appointment-{upcoming.id}@portal.test", "CONFIRMED"), (f"appointment-{gone.id}@portal.test", "CANCELLED")]
    assert str(events[0]["summary"]) == "Appointment with Portico"
    traveller.shift(timedelta(days=2).total_seconds())  # past the cancelled one's original end
    assert [str(e["uid"]) for e in feed_of(client, feed_token(alex, SECRET)).walk("VEVENT")] == []


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
    link_token = issue_link(alex, "client_request").token
    assert client.get(f"/feed/{link_token}.ics").status_code == 404
    assert client.get(f"/s/{feed_token(alex, SECRET)}").status_code == 404


def feed_path_on_portal(client) -> str:
    page = client.get("/portal").get_data(as_text=True)
    match = FEED_URL.search(page)
    assert match, "no calendar address on the portal home"
    assert f'href="webcal://portal.test{match.group(1)}"' in page  # one tap subscribes a phone
    return match.group(1)


def test_the_portal_home_gives_the_client_their_private_calendar_address(app, client, alex, dana, smtp_server):
    continue_with(client, mailed_link(app, client, smtp_server))
    with app.app_context():
        visit = create_appointment(clinician=dana, client=alex, kind="telehealth",
                                   starts_at=START + timedelta(days=1), ends_at=START + timedelta(days=1, hours=1))
    path = feed_path_on_portal(client)
    assert feed_path_on_portal(client) == path  # the same address every time
    (event,) = feed_of(app.test_client(), path[len("/feed/"):-len(".ics")]).walk("VEVENT")
    assert str(event["uid"]) == f"appointment-{visit.id}@portal.test"
    with app.app_context():
        assert str(event["location"]) == join_url(visit)  # the video link, in the phone's calendar


def test_a_clinician_switches_off_a_calendar_address_and_the_portal_shows_a_new_one(
        app, client, alex, dana, smtp_server):
    continue_with(client, mailed_link(app, client, smtp_server))
    old = feed_path_on_portal(client)
    clinic = app.test_client()
    clinic_sign_in(clinic, dana.email)
    assert "Switch off calendar address" in clinic.get(f"/clinic/clients/{alex.id}").get_data(as_text=True)
    response = clinic.post(f"/clinic/clients/{alex.id}/feed/revoke", data={"csrf_token": clinic_csrf(clinic)},
                           follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "calendar address no longer works" in page and "No calendar address in use" in page
    assert "Calendar address switched off" in page  # the client's recent activity
    assert AuditEvent.get(AuditEvent.kind == "feed_revoked").clinician_id == dana.id
    assert app.test_client().get(old).status_code == 404
    new = feed_path_on_portal(client)
    assert new != old and app.test_client().get(new).status_code == 200


def test_switching_off_a_calendar_address_needs_the_form_token_and_the_clients_clinician(app, client, alex, kim):
    token = feed_token(alex, SECRET)
    clinic = app.test_client()
    clinic_sign_in(clinic, kim.email)  # not an admin, and Alex is not Kim's client
    assert clinic.post(f"/clinic/clients/{alex.id}/feed/revoke", data={}).status_code == 400
    assert clinic.post(f"/clinic/clients/{alex.id}/feed/revoke",
                       data={"csrf_token": clinic_csrf(clinic)}).status_code == 404
    assert client.get(f"/feed/{token}.ics").status_code == 200

