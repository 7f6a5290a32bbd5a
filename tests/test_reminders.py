"""Reminders: due at the practice's offsets, out of quiet hours, right after a booking, a
move or a cancel, and never carrying a link that dies before the appointment."""
import re
from datetime import datetime, timedelta
from math import ceil

import pytest
from icalendar import Calendar

from practice import jobs
from practice.appointments import cancel_appointment, create_appointment, move_appointment
from practice.clients import add_client, archive_client, update_client
from practice.models import Email, Practice, Reminder, SignInRequest, db
from practice.reminders import claim_due_reminders, out_of_quiet_hours, queue_claimed_reminders
from practice.runtime import settings
from practice.settings import update_settings
from tests.conftest import START, text_part

STEP = timedelta(minutes=15)
URL = re.compile(r"http://portal\.test/[^\s\"<>]+")


@pytest.fixture
def practice_week(app, dana, traveller, smtp_server):
    """Runs the scheduler's ticks as time passes, and records when each mail arrived."""

    class Week:
        arrivals = []  # (arrived at, message)

        def run_until(self, moment):
            """Tick every STEP until `moment`, as a scheduler would. Steps before anything is due
            are skipped, their ticks would find nothing to do: time jumps to the first step at or
            after the next due row, so each mail leaves at the very step it would have."""
            while (now := datetime.now().replace(microsecond=0)) < moment:
                steps = max(1, ceil((min(self.next_due(), moment) - now) / STEP))
                traveller.shift((steps * STEP).total_seconds())
                self.tick()

        def next_due(self):
            """The earliest time a tick could act: a reminder is claimed once it is due, a mail
            sent at its next attempt (or once a sender's lease on it is over), and a sign-in
            request answered at the next tick."""
            with app.app_context(), db.connection_context():
                if SignInRequest.pending().exists():
                    return datetime.now()
                times = [earliest(Reminder.due_at, Reminder.status == "pending"),
                         earliest(Email.next_attempt_at, Email.status == "queued"),
                         earliest(Email.lease_until, Email.status == "sending")]
            return min((t for t in times if t is not None), default=datetime.max)

        def tick(self):
            before = len(smtp_server.messages)
            jobs.reminder_tick()
            jobs.mail_tick()
            now = datetime.now().replace(microsecond=0)
            self.arrivals.extend((now, m) for m in smtp_server.messages[before:])

        def subjects(self):
            return [m["Subject"] for _, m in self.arrivals]

    return Week()


def earliest(field, where):
    row = field.model.select(field).where(where).order_by(field).first()
    return None if row is None else getattr(row, field.name)


def book(app, clinician, client, start, minutes=50, kind="in_person"):
    with app.app_context():
        return create_appointment(clinician=clinician, client=client, starts_at=start,
                                  ends_at=start + timedelta(minutes=minutes), kind=kind)


@pytest.fixture
def sam(app):
    return add_client("sam@example.com", "Sam Rivera")


def test_reminders_go_out_72_and_24_hours_before(app, dana, sam, practice_week):
    start = START + timedelta(days=5, hours=1)  # Sat 7 Mar 10:00 UTC
    book(app, dana, sam, start)
    practice_week.run_until(start)
    assert practice_week.subjects() == ["Reminder: your appointment on Sat 7 Mar at 10:00 AM"] * 2
    sent_at = [at for at, _ in practice_week.arrivals]
    assert start - timedelta(hours=72) <= sent_at[0] < start - timedelta(hours=72) + STEP
    assert start - timedelta(hours=24) <= sent_at[1] < start - timedelta(hours=24) + STEP


def test_booked_inside_a_window_no_reminder_for_a_passed_offset_one_confirmation(app, dana, sam, practice_week):
    start = START + timedelta(days=2)  # 48 h out: the 72 h reminder's time has passed
    book(app, dana, sam, start)
    practice_week.tick()
    assert practice_week.subjects() == ["Confirmed: your appointment on Wed 4 Mar at 9:00 AM"]
    practice_week.run_until(start)
    assert practice_week.subjects() == ["Confirmed: your appointment on Wed 4 Mar at 9:00 AM",
                                        "Reminder: your appointment on Wed 4 Mar at 9:00 AM"]


def test_booked_three_hours_out_gets_only_the_confirmation(app, dana, sam, practice_week):
    start = START + timedelta(hours=3)
    book(app, dana, sam, start)
    practice_week.run_until(start + timedelta(hours=1))
    assert practice_week.subjects() == ["Confirmed: your appointment on Mon 2 Mar at 12:00 PM"]
    assert Reminder.select().count() == 0


def test_a_booking_ahead_of_every_reminder_gets_no_confirmation_mail(app, dana, sam, practice_week):
    book(app, dana, sam, START + timedelta(days=5))
    practice_week.tick()
    assert practice_week.subjects() == []
    assert Reminder.select().count() == 2


def test_moved_appointment_gets_new_due_times_and_a_moved_mail(app, dana, sam, practice_week, traveller):
    appointment = book(app, dana, sam, START + timedelta(days=5))
    practice_week.run_until(START + timedelta(days=2, hours=1))  # the 72 h reminder has gone
    new_start = START + timedelta(days=6, hours=5)  # Sun 8 Mar 14:00
    with app.app_context():
        move_appointment(appointment, starts_at=new_start, ends_at=new_start + timedelta(minutes=50))
    practice_week.run_until(new_start)
    assert practice_week.subjects() == [
        "Reminder: your appointment on Sat 7 Mar at 9:00 AM",
        "Moved: your appointment is now on Sun 8 Mar at 2:00 PM",
        # Only unsent reminders move: the 72 h one went out, the moved mail names the new time.
        "Reminder: your appointment on Sun 8 Mar at 2:00 PM",
    ]
    last = practice_week.arrivals[-1][0]
    assert new_start - timedelta(hours=24) <= last < new_start - timedelta(hours=24) + STEP


def test_cancelled_appointment_gets_a_cancellation_and_no_more_reminders(app, dana, sam, practice_week):
    appointment = book(app, dana, sam, START + timedelta(days=5))
    practice_week.run_until(START + timedelta(days=3))
    with app.app_context():
        cancel_appointment(appointment)
    practice_week.run_until(START + timedelta(days=6))
    assert practice_week.subjects() == ["Reminder: your appointment on Sat 7 Mar at 9:00 AM",
                                        "Cancelled: your appointment on Sat 7 Mar at 9:00 AM"]
    ics = ics_of(practice_week.arrivals[-1][1])
    assert ics.get("method") == "CANCEL"
    assert Reminder.select().where(Reminder.status == "cancelled").count() == 1


def test_an_archived_client_gets_no_more_reminders(app, dana, sam, practice_week):
    book(app, dana, sam, START + timedelta(days=5))
    practice_week.run_until(START + timedelta(days=3))  # the 72 h reminder has gone out
    with app.app_context():
        archive_client(sam, by=dana)
    practice_week.run_until(START + timedelta(days=6))
    assert practice_week.subjects() == ["Reminder: your appointment on Sat 7 Mar at 9:00 AM"]
    assert [r.status for r in Reminder.select().order_by(Reminder.due_at)] == ["queued", "cancelled"]


def test_changed_offsets_apply_to_future_reminders(app, dana, sam, practice_week):
    start = START + timedelta(days=5, hours=5)  # Sat 14:00, so 2 h before is not in quiet hours
    book(app, dana, sam, start)
    with app.app_context():
        update_settings({"reminder_offsets": "48,2"})
    practice_week.run_until(start)
    sent = [at for at, _ in practice_week.arrivals]
    assert len(sent) == 2
    assert start - timedelta(hours=48) <= sent[0] < start - timedelta(hours=48) + STEP
    assert start - timedelta(hours=2) <= sent[1] < start - timedelta(hours=2) + STEP


def test_quiet_hours_send_the_reminder_before_they_begin(app, dana, practice_week):
    # 7:30 AM in New York: the 24 h reminder would land at 7:30 AM, inside 21:00-08:00.
    early = add_client("early@example.com", "Early Bird", "America/New_York")
    start = datetime(2026, 3, 6, 12, 30)  # Fri 6 Mar 07:30 EST
    book(app, dana, early, start)
    practice_week.run_until(start)
    reminders = [at for at, m in practice_week.arrivals if m["Subject"].startswith("Reminder")]
    evening_before = datetime(2026, 3, 5, 1, 50)  # Wed 4 Mar 20:50 EST, ten minutes before quiet hours
    assert evening_before <= reminders[1] < evening_before + STEP
    assert Reminder.get(Reminder.offset_hours == 24).due_at == evening_before


@pytest.mark.parametrize("whose", ["client", "practice"])
def test_unsent_reminders_leave_the_quiet_hours_of_a_new_time_zone(app, dana, sam, traveller, whose):
    """The client's own zone, or the practice's for a client without one, sets the quiet hours."""
    with app.app_context():
        Practice.update(reminder_offsets="24").execute()
    book(app, dana, sam, datetime(2026, 3, 7, 14, 0))  # Sat 14:00 UTC: the reminder, Fri 14:00, is fine in UTC
    assert Reminder.get(Reminder.status == "pending").due_at == datetime(2026, 3, 6, 14, 0)
    with app.app_context():
        if whose == "client":
            update_client(sam, email=sam.email, name=sam.name, zone="Asia/Tokyo")
        else:
            update_settings({"timezone": "Asia/Tokyo"})
    # Fri 14:00 UTC is 23:00 in Tokyo, inside 21:00-08:00: ten minutes before 21:00 there instead.
    assert Reminder.get(Reminder.status == "pending").due_at == datetime(2026, 3, 6, 11, 50)


def test_quiet_hours_follow_the_clients_zone_across_midnight():
    practice = Practice(quiet_hours_start="21:00", quiet_hours_end="08:00")
    late = datetime(2026, 3, 6, 3, 0)  # 22:00 in New York
    assert out_of_quiet_hours(late, "America/New_York", practice) == datetime(2026, 3, 6, 1, 50)
    noon = datetime(2026, 3, 6, 17, 0)
    assert out_of_quiet_hours(noon, "America/New_York", practice) == noon
    assert out_of_quiet_hours(late, "UTC", Practice(quiet_hours_start="00:00", quiet_hours_end="00:00")) == late


def test_sign_in_link_only_in_a_reminder_it_outlives(app, dana, sam, practice_week):
    with app.app_context():
        update_settings({"reminder_offsets": "72,24,2"})
    start = START + timedelta(days=5)
    book(app, dana, sam, start)
    practice_week.run_until(start)
    bodies = [text_part(m) for _, m in practice_week.arrivals]
    assert len(bodies) == 3
    assert all("/s/" not in body and "http://portal.test/sign-in" in body for body in bodies[:2])
    assert "http://portal.test/s/" in bodies[2]


@pytest.mark.parametrize("kind", ["in_person", "telehealth"])
def test_every_link_in_every_reminder_works_at_the_appointment_start(app, dana, sam, practice_week, kind):
    with app.app_context():
        update_settings({"reminder_offsets": "72,24,2"})
    start = START + timedelta(days=5)
    book(app, dana, sam, start, kind=kind)
    practice_week.run_until(start)
    parts = [part for _, m in practice_week.arrivals
             for part in (text_part(m), m.get_body(preferencelist=("html",)).get_content())]
    links = {url for part in parts for url in URL.findall(part)}
    joins = {url for url in links if "/t/" in url}
    assert len(practice_week.arrivals) == 3 and links
    assert bool(joins) == (kind == "telehealth")  # a video appointment's reminders carry its join link
    browser = app.test_client()
    for url in links:
        page = browser.get(url.replace("http://portal.test", ""))
        assert page.status_code == 200, url
        if url in joins:  # at the start, the room is open to enter
            assert 'data-state="open"' in page.get_data(as_text=True), url


def test_reminders_reply_to_the_practice_contact_address(app, dana, sam, practice_week):
    with app.app_context():
        update_settings({"contact_email": "office@willow.example"})
    start = START + timedelta(days=5)
    book(app, dana, sam, start)
    practice_week.run_until(start)
    assert {m["Reply-To"] for _, m in practice_week.arrivals} == {"office@willow.example"}


def test_reminder_mail_has_its_own_id_a_dated_subject_reply_to_two_parts_and_an_ics(app, dana, sam, practice_week):
    start = START + timedelta(days=5)
    appointment = book(app, dana, sam, start)
    practice_week.run_until(start)
    first, second = (m for _, m in practice_week.arrivals)
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Reply-To"] == "portal@portal.test"
    assert re.fullmatch(r"Reminder: your appointment on \w{3} \d{1,2} \w{3} at \d{1,2}:\d\d [AP]M", first["Subject"])
    assert first.get_body(preferencelist=("plain",)) and first.get_body(preferencelist=("html",))
    event = ics_of(first).walk("VEVENT")[0]
    assert str(event["uid"]) == f"appointment-{appointment.id}@portal.test"
    assert event.decoded("dtstart").replace(tzinfo=None) == start
    assert "Dana Hale" in text_part(first) and "in person" in text_part(first)


def test_a_move_keeps_the_calendar_uid_and_raises_its_sequence(app, dana, sam, practice_week):
    start = START + timedelta(days=5)
    appointment = book(app, dana, sam, start)
    with app.app_context():
        move_appointment(appointment, starts_at=start + timedelta(hours=2), ends_at=start + timedelta(hours=3))
    practice_week.tick()
    event = ics_of(practice_week.arrivals[-1][1]).walk("VEVENT")[0]
    assert str(event["uid"]) == f"appointment-{appointment.id}@portal.test"
    assert int(event["sequence"]) == 1


def test_a_process_that_was_down_sends_what_is_still_useful_and_marks_the_rest_missed(
        app, dana, sam, practice_week, traveller):
    start = START + timedelta(days=5)
    book(app, dana, sam, start)
    traveller.shift(timedelta(days=4, hours=12).total_seconds())  # down through both due times
    practice_week.tick()
    assert practice_week.subjects() == ["Reminder: your appointment on Sat 7 Mar at 9:00 AM"] * 2
    other = book(app, dana, sam, datetime(2026, 3, 9, 12, 0))  # Mon noon; its 24 h reminder is due Sun noon
    practice_week.tick()  # (booked inside the 72 h window: a confirmation)
    traveller.shift(timedelta(days=3).total_seconds())  # down past the appointment itself
    practice_week.tick()
    assert Reminder.get(Reminder.appointment == other.id).status == "missed"
    assert practice_week.subjects()[2:] == ["Confirmed: your appointment on Mon 9 Mar at 12:00 PM"]


def test_each_reminder_is_sent_once_however_often_the_tick_runs(app, dana, sam, practice_week):
    start = START + timedelta(days=5)
    book(app, dana, sam, start)
    practice_week.run_until(start)
    for _ in range(3):
        practice_week.tick()
    assert len(practice_week.arrivals) == 2
    assert Email.select().where(Email.kind == "reminder").count() == 2


def ics_of(message) -> Calendar:
    for part in message.iter_attachments():
        if part.get_content_type() == "text/calendar":
            return Calendar.from_ical(part.get_content() if isinstance(part.get_content(), str)
                                      else part.get_content().decode())
    raise AssertionError("no .ics attachment")


def test_extending_a_session_under_way_sends_the_client_no_mail(app, dana, sam, practice_week, traveller):
    from practice.appointments import extend_appointment
    start = START + timedelta(hours=2)
    appointment = book(app, dana, sam, start)
    practice_week.tick()  # the confirmation
    traveller.shift(timedelta(hours=2, minutes=30).total_seconds())
    with app.app_context():
        extend_appointment(appointment, 15)
    practice_week.tick()
    assert practice_week.subjects() == ["Confirmed: your appointment on Mon 2 Mar at 11:00 AM"]


def test_a_new_end_before_the_day_is_sent_so_calendars_stay_right(app, dana, sam, practice_week):
    from practice.appointments import extend_appointment
    start = START + timedelta(days=5)
    appointment = book(app, dana, sam, start)
    with app.app_context():
        extend_appointment(appointment, 30)
    practice_week.tick()
    assert practice_week.subjects() == ["Updated: your appointment on Sat 7 Mar now ends at 10:20 AM"]
    assert Reminder.select().where(Reminder.status == "pending").count() == 2


def test_a_longer_appointment_is_an_update_that_names_the_new_end_not_a_move(app, dana, sam, practice_week):
    from practice.appointments import extend_appointment
    start = START + timedelta(days=5)
    appointment = book(app, dana, sam, start)
    with app.app_context():
        extend_appointment(appointment, 15)
    practice_week.tick()
    ((_, message),) = practice_week.arrivals
    assert not message["Subject"].startswith("Moved")
    assert message["Subject"] == "Updated: your appointment on Sat 7 Mar now ends at 10:05 AM"
    assert "Updated: your appointment on Sat 7 Mar now ends at 10:05 AM" in text_part(message)
    assert "has moved" not in text_part(message)
    assert Email.get(Email.kind == "appointment_updated").subject == message["Subject"]
    event = ics_of(message).walk("VEVENT")[0]
    assert int(event["SEQUENCE"]) == 1  # the client's calendar takes the new end
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=65)


# ---- claiming: a lease on each claimed reminder --------------------------------------------

def due_reminders(app, dana, count):
    """`count` appointments five days out, each with its 24 h reminder due now."""
    with app.app_context():
        Practice.update(reminder_offsets="24").execute()
        people = [add_client(f"client{n}@example.com", f"Client {n}") for n in range(count)]
    for n, person in enumerate(people):
        book(app, dana, person, START + timedelta(days=5, hours=n))
    with app.app_context():
        Reminder.update(due_at=START - timedelta(minutes=1)).execute()


def test_two_claimers_get_disjoint_reminders(app, dana, traveller):
    due_reminders(app, dana, 5)
    with app.app_context():
        first = claim_due_reminders(START, batch=3)
        second = claim_due_reminders(START, batch=10)
        third = claim_due_reminders(START, batch=10)
    assert len(first) == 3 and len(second) == 2 and third == []
    assert not set(first) & set(second)


def test_a_claim_whose_lease_expired_is_claimed_again(app, dana, smtp_server, traveller):
    due_reminders(app, dana, 2)
    with app.app_context():
        claimed = claim_due_reminders(START)  # ...and the worker dies before queueing them
        assert len(claimed) == 2 and claim_due_reminders(START) == []
    assert jobs.reminder_tick() == 0  # held by the lease
    traveller.shift(settings().lease.total_seconds() + 1)
    assert jobs.reminder_tick() == 2
    jobs.mail_tick()
    assert len(smtp_server.messages) == 2
    assert {r.status for r in Reminder.select()} == {"queued"}


def test_a_reminder_held_by_two_claims_is_sent_once(app, dana, smtp_server, traveller):
    due_reminders(app, dana, 3)
    with app.app_context():
        slow = claim_due_reminders(START)  # a worker stalls past its lease...
    traveller.shift(settings().lease.total_seconds() + 1)
    assert jobs.reminder_tick() == 3  # ...another takes the reminders over and queues them
    with app.app_context():
        assert queue_claimed_reminders(slow, START) == 0  # the stalled one resumes
    jobs.reminder_tick()
    jobs.mail_tick()
    assert len(smtp_server.messages) == 3
    assert len({m["Message-ID"] for m in smtp_server.messages}) == 3
    assert Email.select().count() == 3
