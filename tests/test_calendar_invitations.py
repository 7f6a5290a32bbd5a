"""Calendar entries that follow the appointment: every appointment email is an iTIP invitation
(RFC 5546) a mail app updates in place, and the private feed refreshes cheaply. What the SMTP
server received and what the feed answered are read by vobject as well as icalendar, so that
no test only checks what our own library writes back."""
from datetime import timedelta

import pytest
import vobject
from icalendar import Calendar

from practice import jobs
from practice.appointments import cancel_appointment, create_appointment, extend_appointment, move_appointment
from practice.feeds import feed_token
from practice.settings import update_settings
from practice.telehealth import join_url
from tests.conftest import START, deliver, text_part

SECRET = b"test-secret-key"
SIGN_IN_PATH = "/s/"


def calendar_parts(message) -> tuple:
    """The text/calendar part inside the multipart/alternative, and the .ics attachment."""
    (alternative,) = [part for part in message.walk() if part.get_content_type() == "multipart/alternative"]
    (inline,) = [part for part in alternative.iter_parts() if part.get_content_type() == "text/calendar"]
    (attached,) = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    return inline, attached


def ics_text(part) -> str:
    content = part.get_content()
    return content if isinstance(content, str) else content.decode()


def invitation(message):
    """The email's calendar as vobject reads it; the inline part and the attachment agree."""
    inline, attached = calendar_parts(message)
    assert ics_text(inline) == ics_text(attached)
    Calendar.from_ical(ics_text(inline))  # icalendar reads it too
    return vobject.readOne(ics_text(inline))


def params(prop) -> dict:
    return {name.upper(): values[0] for name, values in prop.params.items()}


@pytest.fixture
def mails(app, smtp_server):
    """Sends what the outbox holds and returns every message Alex has received, in order."""

    def received():
        deliver(app)
        return smtp_server.to("alex@example.com")

    return received


def book(app, dana, alex, start, kind="telehealth", minutes=50):
    with app.app_context():
        return create_appointment(clinician=dana, client=alex, kind=kind, starts_at=start,
                                  ends_at=start + timedelta(minutes=minutes))


def book_move_extend(app, dana, alex):
    """Booked two days out (inside the 72 h window: a confirmation), moved, then extended."""
    start = START + timedelta(days=2)
    appointment = book(app, dana, alex, start)
    with app.app_context():
        move_appointment(appointment, starts_at=start + timedelta(hours=2), ends_at=start + timedelta(hours=3))
        extend_appointment(appointment, 15)
    return appointment


@pytest.mark.usefixtures("traveller")
def test_book_move_extend_cancel_keep_one_uid_with_rising_sequences_and_end_in_a_cancel(
        app, dana, alex, mails):
    appointment = book_move_extend(app, dana, alex)
    with app.app_context():
        cancel_appointment(appointment)
    messages = mails()
    assert [m["Subject"].split(":")[0] for m in messages] == ["Confirmed", "Moved", "Updated", "Cancelled"]
    calendars = [invitation(m) for m in messages]
    events = [c.vevent for c in calendars]
    assert {e.uid.value for e in events} == {f"appointment-{appointment.id}@portal.test"}
    sequences = [int(e.sequence.value) for e in events]
    assert sequences == sorted(set(sequences)) and len(sequences) == 4  # strictly rising
    assert [c.method.value for c in calendars] == ["REQUEST", "REQUEST", "REQUEST", "CANCEL"]
    cancel = events[-1]
    assert cancel.status.value == "CANCELLED"
    assert cancel.organizer.value == "mailto:portal@portal.test"
    inline, attached = calendar_parts(messages[-1])
    assert inline.get_param("method") == attached.get_param("method") == "CANCEL"


@pytest.mark.usefixtures("traveller")
def test_every_booking_move_and_extension_email_is_an_invitation_from_the_practice_needing_no_reply(
        app, dana, alex, mails):
    with app.app_context():
        update_settings({"contact_email": "office@willow.example", "name": "Willow Counselling"})
    book_move_extend(app, dana, alex)
    messages = mails()
    assert len(messages) == 3
    for message in messages:
        event = invitation(message).vevent
        assert invitation(message).method.value == "REQUEST"
        assert event.organizer.value == "mailto:office@willow.example"
        assert params(event.organizer)["CN"] == "Willow Counselling"
        assert event.attendee.value == "mailto:alex@example.com"
        assert {k: params(event.attendee)[k] for k in ("RSVP", "PARTSTAT")} == {"RSVP": "FALSE",
                                                                               "PARTSTAT": "ACCEPTED"}
        inline, attached = calendar_parts(message)
        assert inline.get_param("method") == "REQUEST" and inline.get_content_charset() == "utf-8"
        assert attached.get_filename() == "appointment.ics"
        # Where calendars are ignored, the email still reads as it did.
        assert message.get_body(preferencelist=("plain",)) and message.get_body(preferencelist=("html",))
        assert "Dana Hale" in text_part(message)


@pytest.mark.usefixtures("traveller")
def test_the_organizer_is_the_mail_sender_when_the_practice_has_no_contact_address(app, dana, alex, mails):
    book(app, dana, alex, START + timedelta(days=2))
    (message,) = mails()
    assert invitation(message).vevent.organizer.value == "mailto:portal@portal.test"


def test_a_reminder_repeats_the_current_uid_and_sequence(app, dana, alex, mails, traveller):
    start = START + timedelta(days=5)
    appointment = book(app, dana, alex, start)  # ahead of every reminder: no confirmation
    with app.app_context():
        move_appointment(appointment, starts_at=start + timedelta(hours=2), ends_at=start + timedelta(hours=3))
    (moved,) = mails()
    traveller.shift(timedelta(days=2, hours=2, minutes=1).total_seconds())  # the 72 h reminder is due
    with app.app_context():
        jobs.reminder_tick()
    moved_event, reminder = invitation(moved).vevent, invitation(mails()[-1])
    assert mails()[-1]["Subject"].startswith("Reminder: ")
    assert reminder.method.value == "REQUEST"
    assert reminder.vevent.uid.value == moved_event.uid.value
    assert reminder.vevent.sequence.value == moved_event.sequence.value == "1"
    assert reminder.vevent.attendee.value == "mailto:alex@example.com"


def test_the_join_link_is_in_every_telehealth_event_and_no_sign_in_link_in_any_calendar(
        app, client, dana, alex, mails, traveller):
    with app.app_context():
        update_settings({"reminder_offsets": "3"})  # a reminder close enough to carry a one-time link
    start = START + timedelta(days=1)
    appointment = book(app, dana, alex, start)
    with app.app_context():
        extend_appointment(appointment, 15)
        join = join_url(appointment)
    traveller.shift(timedelta(hours=21, minutes=1).total_seconds())
    with app.app_context():
        jobs.reminder_tick()
    messages = mails()
    assert [m["Subject"].split(":")[0] for m in messages] == ["Updated", "Reminder"]
    assert "http://portal.test/s/" in text_part(messages[-1])  # the reminder's sign-in link...
    feed = client.get(f"/feed/{feed_token(alex, SECRET)}.ics").get_data(as_text=True)
    for ics in [ics_text(part) for m in messages for part in calendar_parts(m)] + [feed]:
        assert SIGN_IN_PATH not in ics  # ...is in the email, never in a calendar
        event = vobject.readOne(ics).vevent
        assert event.url.value == join and event.location.value == join
        assert event.conference.value == join


@pytest.mark.usefixtures("traveller")
def test_the_feed_refreshes_hourly_with_the_uid_and_sequence_of_the_emails(app, client, dana, alex, mails):
    appointment = book_move_extend(app, dana, alex)
    last_email = invitation(mails()[-1]).vevent
    response = client.get(f"/feed/{feed_token(alex, SECRET)}.ics")
    feed = vobject.readOne(response.get_data(as_text=True))
    assert feed.contents["refresh-interval"][0].value == "PT1H"
    assert params(feed.contents["refresh-interval"][0]) == {"VALUE": "DURATION"}
    assert feed.contents["x-published-ttl"][0].value == "PT1H"
    assert feed.method.value == "PUBLISH"  # a subscription, not an invitation
    assert feed.vevent.uid.value == last_email.uid.value == f"appointment-{appointment.id}@portal.test"
    assert feed.vevent.sequence.value == last_email.sequence.value == "2"
    assert "attendee" not in feed.vevent.contents


@pytest.mark.usefixtures("traveller")
def test_a_cancelled_appointment_shows_in_the_feed_as_cancelled_with_the_cancellations_sequence(
        app, client, dana, alex, mails):
    appointment = book(app, dana, alex, START + timedelta(days=2))
    with app.app_context():
        cancel_appointment(appointment)
    cancellation = invitation(mails()[-1]).vevent
    event = vobject.readOne(client.get(f"/feed/{feed_token(alex, SECRET)}.ics").get_data(as_text=True)).vevent
    assert event.status.value == "CANCELLED"
    assert (event.uid.value, event.sequence.value) == (cancellation.uid.value, cancellation.sequence.value)
    assert "url" not in event.contents  # a cancelled appointment's join link is dead


def test_a_feed_that_did_not_change_answers_304_and_a_change_makes_a_new_etag(app, client, dana, alex, traveller):
    appointment = book(app, dana, alex, START + timedelta(days=2))
    path = f"/feed/{feed_token(alex, SECRET)}.ics"
    first = client.get(path)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    traveller.shift(600)  # a later refresh: the same feed, though DTSTAMP would say "now"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    with app.app_context():
        extend_appointment(appointment, 30)
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert vobject.readOne(changed.get_data(as_text=True)).vevent.sequence.value == "1"
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 200
