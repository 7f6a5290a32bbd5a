"""The .ics of an emailed invitation and of the feed (practice/feeds.py writes its content lines
itself, for speed) are byte for byte what icalendar's Calendar and Event objects write of the
same appointments: the reference below is how feeds.py built them before. Names and addresses
with every character iCalendar escapes, quotes or folds, in both languages. And what is written
reads back, with icalendar and with vobject, as the values put in."""
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr

import pytest
import vobject
from hypothesis import HealthCheck, event, given, settings, strategies as st
from icalendar import Calendar, Event, vCalAddress, vText, vUri

from practice import feeds, runtime
from practice.clock import utcnow
from practice.feeds import REFRESH, feed_calendar
from practice.i18n import LANGUAGES, gettext as _, in_language
from practice.models import Appointment, Client, Practice
from practice.reminders import appointment_ics
from tests.conftest import START

pytestmark = [pytest.mark.usefixtures("traveller"),  # an invitation's DTSTAMP is the time it is written
              # Nothing here is read from the database: the app is for its settings and languages.
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]

EQUIVALENCE = settings(max_examples=150, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# The reference: practice/feeds.py's icalendar Component code, as it was.

def reference_calendar(practice, method):
    calendar = Calendar()
    calendar.add("prodid", "-//Portico//client portal//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add("x-wr-calname", vText(practice.name))  # TEXT, escaped (icalendar writes an X- name verbatim)
    return calendar


def _utc(moment):
    return moment.replace(tzinfo=timezone.utc)


def reference_event(appointment, practice, *, host, join_url, stamp=None, invitation=False):
    cancelled = appointment.status == "cancelled"
    event = Event()
    event.add("uid", f"appointment-{appointment.id}@{host}")
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", _utc(stamp or utcnow()))
    event.add("last-modified", _utc(appointment.updated_at))
    event.add("dtstart", _utc(appointment.starts_at))
    event.add("dtend", _utc(appointment.ends_at))
    event.add("summary", _("Appointment with %(practice)s", practice=practice.name))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if invitation:
        address = practice.contact_email or parseaddr(runtime.settings().mail_sender)[1]
        organizer = vCalAddress(f"mailto:{address}")
        organizer.params["cn"] = vText(practice.name)
        event.add("organizer", organizer)
        attendee = vCalAddress(f"mailto:{appointment.client.email}")
        attendee.params.update({"cn": vText(appointment.client.name), "role": "REQ-PARTICIPANT",
                                "partstat": "ACCEPTED", "rsvp": "FALSE"})
        event.add("attendee", attendee)
    if join_url and not cancelled:
        event.add("location", vText(join_url))
        event.add("url", vUri(join_url))
        event.add("conference", vUri(join_url), parameters={"value": "URI", "feature": "VIDEO",
                                                             "label": _("Video session")})
        event.add("description", _("Join the video session: %(url)s", url=join_url))
    else:
        event.add("location", vText(practice.name))
    return event


def reference_invitation(appointment, practice, join_url) -> str:
    calendar = reference_calendar(practice, "CANCEL" if appointment.status == "cancelled" else "REQUEST")
    calendar.add_component(reference_event(appointment, practice, host=runtime.settings().host,
                                           join_url=join_url, invitation=True))
    return calendar.to_ical().decode()


def reference_feed(practice, appointments, joins) -> bytes:
    calendar = reference_calendar(practice, "PUBLISH")
    calendar.add("refresh-interval", REFRESH, parameters={"value": "DURATION"})
    calendar.add("x-published-ttl", vText("PT1H"))
    for appointment in appointments:
        live = appointment.kind == "telehealth" and appointment.status != "cancelled"
        calendar.add_component(reference_event(appointment, practice, host=runtime.settings().host,
                                               join_url=joins[appointment.id] if live else None,
                                               stamp=appointment.updated_at))
    return calendar.to_ical()


# What can be in a name or an address: what TEXT escapes (\ ; , and line breaks), what a
# parameter quotes (: ; , and ") or escapes (RFC 6868: ^, " and line breaks), what is folded
# (non-ASCII, length), and anything else.
AWKWARD = st.sampled_from(list("\"',;:\\\n\r\t ^=@/éñ漢🙂\u0301\u202e"))
TEXT = st.one_of(st.text(max_size=30), st.text(alphabet=AWKWARD | st.characters(), max_size=30),
                 st.text(alphabet=AWKWARD | st.characters(codec="ascii"), min_size=60, max_size=300))
# Mostly without line breaks where they are refused (addresses, URLs, the practice's name):
# so that most examples are compared, and some are refused.
ONE_LINE = TEXT.map(lambda text: text.replace("\r", " ").replace("\n", " "))
NAME = st.one_of(st.sampled_from(["Portico", "Clínica Ñandú", 'Dr. "Ana" López, PhD; Ltd.', "a\\b\nc"]), TEXT)
PRACTICE_NAMES = st.one_of(st.sampled_from(["Portico", "Clínica Ñandú", 'Dr. "Ana" López, PhD; Ltd.']),
                           ONE_LINE, ONE_LINE, TEXT)
EMAIL = st.one_of(st.sampled_from(["alex@example.com", "ana.lópez@clínica.es", '"a,b;c:d"@example.com']),
                  st.builds("{}@{}".format, ONE_LINE, ONE_LINE), st.builds("{}@{}".format, ONE_LINE, ONE_LINE),
                  st.builds("{}@{}".format, TEXT, TEXT))
MOMENT = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1))
JOIN_URL = st.one_of(st.none(), st.just(""), st.just("https://portal.test/t/abc123"),
                     *(st.builds("https://portal.test/t/{}".format, path) for path in (ONE_LINE, ONE_LINE, TEXT)))


@st.composite
def appointments(draw, ids=st.integers(1, 2**31 - 1)):
    starts = draw(MOMENT)
    appointment = Appointment(
        id=draw(ids), client=Client(id=1, name=draw(NAME), email=draw(EMAIL)),
        kind=draw(st.sampled_from(["telehealth", "in_person"])),
        status=draw(st.sampled_from(["scheduled", "cancelled"])), sequence=draw(st.integers(0, 10**6)),
        starts_at=starts, ends_at=starts + draw(st.sampled_from([timedelta(minutes=50), timedelta(seconds=1)])),
        updated_at=draw(MOMENT))
    return appointment, draw(JOIN_URL)


practices = st.builds(lambda name, email: Practice(id=1, name=name, contact_email=email),
                      PRACTICE_NAMES, st.one_of(st.just(""), EMAIL))
languages = st.sampled_from(sorted(LANGUAGES))


def same_or_refused_alike(ours, reference):
    """icalendar refuses a line break in an address or a URL (ValueError), and in a value it
    writes verbatim (AssertionError): so must we, rather than write a broken line."""
    try:
        expected = reference()
    except (AssertionError, ValueError) as refused:
        event(f"refused: {type(refused).__name__}")
        with pytest.raises(type(refused)):
            ours()
        return
    assert ours() == expected


@given(practice=practices, drawn=appointments(), language=languages)
@EQUIVALENCE
def test_an_invitation_is_what_icalendar_writes(app, practice, drawn, language):
    appointment, join_url = drawn
    with app.app_context(), in_language(language):
        same_or_refused_alike(lambda: appointment_ics(appointment, practice, join_url),
                              lambda: reference_invitation(appointment, practice, join_url))


@given(practice=practices, count=st.sampled_from([0, 1, 2, 5]), data=st.data(), language=languages)
@EQUIVALENCE
def test_a_feed_is_what_icalendar_writes(app, monkeypatch, practice, count, data, language):
    drawn = data.draw(st.lists(appointments(), min_size=count, max_size=count,
                               unique_by=lambda drawn: drawn[0].id))
    listed = [appointment for appointment, _join in drawn]
    joins = {appointment.id: join for appointment, join in drawn}
    client = Client(id=1, name="Alex", email="alex@example.com", language=language)
    monkeypatch.setattr(Appointment, "in_feed_for", staticmethod(lambda _client, _now: listed))
    monkeypatch.setattr(Practice, "current", staticmethod(lambda: practice))
    monkeypatch.setattr(feeds, "join_url", lambda appointment: joins[appointment.id])
    with app.app_context():
        def reference():
            with in_language(language):
                return reference_feed(practice, listed, joins)
        same_or_refused_alike(lambda: feed_calendar(client, utcnow()), reference)


PRACTICE_NAME = "Clínica Ñandú: terapia; familia, pareja \\ " + "niños " * 12
CLIENT_NAME = "María-José O'Brien, Jr.; née Ñúñez: " + "á" * 40


def awkward_appointment(status="scheduled"):
    return Appointment(id=7, client=Client(id=1, name=CLIENT_NAME, email="maria.jose@example.com"),
                       kind="telehealth", status=status, sequence=3, starts_at=START + timedelta(days=1),
                       ends_at=START + timedelta(days=1, minutes=50), updated_at=START - timedelta(hours=2))


def test_an_invitation_reads_back_the_same_with_icalendar_and_vobject(app):
    practice = Practice(id=1, name=PRACTICE_NAME, contact_email="hola@clinica.example")
    join_url = "https://portal.test/t/" + "x" * 120
    with app.app_context():
        ics = appointment_ics(awkward_appointment(), practice, join_url)
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    other = vobject.readOne(ics).vevent
    summary = f"Appointment with {PRACTICE_NAME}"
    starts, ends = _utc(START + timedelta(days=1)), _utc(START + timedelta(days=1, minutes=50))
    assert (str(event["summary"]), other.summary.value) == (summary, summary)
    assert (event.decoded("dtstart"), other.dtstart.value) == (starts, starts)
    assert (event.decoded("dtend"), other.dtend.value) == (ends, ends)
    assert (event.decoded("dtstamp"), other.dtstamp.value) == (_utc(START), _utc(START))
    assert (event.decoded("last-modified"), other.last_modified.value) == (_utc(START - timedelta(hours=2)),) * 2
    assert (str(event["uid"]), other.uid.value) == ("appointment-7@portal.test",) * 2
    assert (int(event["sequence"]), int(other.sequence.value)) == (3, 3)
    assert (str(event["location"]), other.location.value) == (join_url, join_url)
    assert (str(event["url"]), other.url.value) == (join_url, join_url)
    assert (str(event["description"]), other.description.value) == (f"Join the video session: {join_url}",) * 2
    assert (str(event["organizer"]), other.organizer.value) == ("mailto:hola@clinica.example",) * 2
    assert (event["organizer"].params["cn"], other.organizer.params["CN"]) == (PRACTICE_NAME, [PRACTICE_NAME])
    assert (str(event["attendee"]), other.attendee.value) == ("mailto:maria.jose@example.com",) * 2
    assert (event["attendee"].params["cn"], other.attendee.params["CN"]) == (CLIENT_NAME, [CLIENT_NAME])
    assert (event["attendee"].params["partstat"], other.attendee.params["PARTSTAT"]) == ("ACCEPTED", ["ACCEPTED"])
    assert (str(event["conference"]), other.conference.value) == (join_url, join_url)
    assert (event["conference"].params["label"], other.conference.params["LABEL"]) == ("Video session",
                                                                                        ["Video session"])


def feed_of(app, monkeypatch, practice, listed, language="en") -> str:
    monkeypatch.setattr(Appointment, "in_feed_for", staticmethod(lambda _client, _now: listed))
    monkeypatch.setattr(Practice, "current", staticmethod(lambda: practice))
    monkeypatch.setattr(feeds, "join_url", lambda appointment: "https://portal.test/t/abc")
    with app.app_context():
        return feed_calendar(Client(id=1, name="Alex", email="alex@example.com", language=language)).decode()


FEED_NAME = "Clínica Ñandú " * 8  # folded


def test_a_feed_reads_back_the_same_with_icalendar_and_vobject(app, monkeypatch):
    practice = Practice(id=1, name=FEED_NAME, contact_email="")
    listed = [awkward_appointment(), awkward_appointment("cancelled")]
    listed[1].id = 8
    ics = feed_of(app, monkeypatch, practice, listed, language="es")
    calendar, other = Calendar.from_ical(ics), vobject.readOne(ics)
    assert (calendar.decoded("refresh-interval"), other.refresh_interval.value) == (REFRESH, "PT1H")
    assert (str(calendar["x-published-ttl"]), other.x_published_ttl.value) == ("PT1H", "PT1H")
    assert (str(calendar["x-wr-calname"]), other.x_wr_calname.value) == (FEED_NAME, FEED_NAME)
    assert (str(calendar["method"]), other.method.value) == ("PUBLISH", "PUBLISH")
    read = [(str(e["uid"]), str(e["status"]), str(e["location"]), e.decoded("dtstamp"), "organizer" in e)
            for e in calendar.walk("VEVENT")]
    read_other = [(e.uid.value, e.status.value, e.location.value, e.dtstamp.value, hasattr(e, "organizer"))
                  for e in other.vevent_list]
    stamp = _utc(START - timedelta(hours=2))  # each event's last change, so that the feed's ETag holds
    assert read == read_other == [("appointment-7@portal.test", "CONFIRMED", "https://portal.test/t/abc", stamp, False),
                                  ("appointment-8@portal.test", "CANCELLED", FEED_NAME, stamp, False)]
    (summary, _cancelled) = [str(e["summary"]) for e in calendar.walk("VEVENT")]
    assert summary.endswith(FEED_NAME) and not summary.startswith("Appointment")  # in the client's language


def test_a_practice_name_with_a_comma_reads_back_whole_as_the_calendar_name(app, monkeypatch):
    ics = feed_of(app, monkeypatch, Practice(id=1, name="Hale, Morgan; Partners", contact_email=""), [])
    assert vobject.readOne(ics).x_wr_calname.value == "Hale, Morgan; Partners"
