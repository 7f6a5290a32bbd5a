"""A client's page in plain words: the browser and system from a user agent, activity without
codes, appointment times on the practice's clock, and the latest link's state in one sentence."""
from datetime import timedelta

import pytest

from practice.appointments import create_appointment, move_appointment
from practice.client_overview import client_overview
from practice.history import browser_words, recent_events
from practice.links import issue_link, redeem_link
from practice.models import Link, Practice
from practice.sessions import end_session, start_session
from tests.conftest import START

pytestmark = pytest.mark.usefixtures("traveller")


@pytest.mark.parametrize("agent, words", [
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
     "Safari/537.36", "Chrome on Android"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Mobile/15E148 Safari/604.1", "Safari on iOS"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Windows"),
    ("Mozilla/5.0 (compatible; SafeLinks)", "“compatible; SafeLinks”"),
    ("", "a browser that did not name itself"),
    (None, "a browser that did not name itself"),
])
def test_a_user_agent_is_said_as_browser_and_system(agent, words):
    assert browser_words(agent) == words


def test_activity_says_codes_and_utc_times_in_words_on_the_practice_clock(app, dana, alex):
    Practice.update(timezone="America/New_York").execute()
    start = START + timedelta(hours=30)  # Tue 3 Mar 2026, 3:00 PM UTC: 10:00 AM in New York
    appointment = create_appointment(clinician=dana, client=alex, starts_at=start, ends_at=start + timedelta(minutes=50),
                                     kind="telehealth", by=dana)
    move_appointment(appointment, starts_at=start, ends_at=start + timedelta(minutes=65), by=dana)
    end_session(start_session(client=alex)[1], "signed_out")
    redeem_link(issue_link(alex, "client_request").token, ip="198.51.100.7")
    events = [event.what for event in recent_events(alex)]
    assert "Appointment booked: Tue 3 Mar 2026, 10:00 AM – 10:50 AM EST, video session" in events
    assert "Appointment changed: now Tue 3 Mar 2026, 10:00 AM – 11:05 AM EST" in events
    assert "Signed out" in events and "Link 1 used to sign in with the link" in events
    assert not [what for what in events if "Z" in what or "(signed_out)" in what or "(by link)" in what]
    assert recent_events(alex)[0].at == "Today at 4:00 AM"  # 9:00 AM UTC


def test_the_latest_links_state_is_one_sentence(app, alex, traveller):
    assert client_overview(alex).link_state == "No sign-in link has been sent to Alex Morgan yet."
    issued = issue_link(alex, "client_request")
    assert client_overview(alex).link_state == (
        "The latest sign-in link, made today at 9:00 AM, works until tomorrow at 9:00 AM; it has not been opened yet.")
    traveller.shift(600)
    redeem_link(issued.token)
    overview = client_overview(alex)
    assert (overview.link_outcome, overview.link_state) == (
        "used", "The latest sign-in link, made today at 9:00 AM, was used to sign in today at 9:10 AM.")
    issue_link(alex, "client_request")
    traveller.shift(3 * 86400)
    assert client_overview(alex).link_state == (
        "The latest sign-in link, made Mon 2 Mar at 9:10 AM, expired unused Tue 3 Mar at 9:10 AM.")
    assert Link.select().count() == 2
