"""The calendar: day and week views in the practice's time zone, booking, moving, extending
and cancelling appointments, and who may see which."""
import re
from datetime import datetime

import pytest

from practice.appointments import create_appointment
from practice.availability import save_hours
from practice.models import Appointment, AuditEvent, Client, Practice
from tests.conftest import clinic_csrf, clinic_sign_in, continue_with, mailed_link

pytestmark = pytest.mark.usefixtures("traveller")  # Monday 2 March 2026, 09:00 UTC (04:00 in New York)

NEW_YORK = "America/New_York"


@pytest.fixture(autouse=True)
def new_york(app):
    """Most tests run in New York, so that local time and UTC differ (UTC-5 until 8 March)."""
    Practice.update(timezone=NEW_YORK).execute()


def book(app, clinician, client, start, end, kind="telehealth"):
    """An appointment straight through the domain; start and end in naive UTC."""
    with app.app_context():
        return create_appointment(clinician=clinician, client=client, starts_at=start, ends_at=end, kind=kind)


def assign(client, clinician):
    Client.update(clinician=clinician).where(Client.id == client.id).execute()


def page(client, path, **kwargs):
    response = client.get(path, **kwargs)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def card_in(html, appointment):
    """The HTML of one appointment's card."""
    match = re.search(rf'<article id="appointment-{appointment.id}".*?</article>', html, re.S)
    assert match, f"no card for appointment {appointment.id}"
    return match.group(0)


def text_of(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def appointment_form(http, **changes):
    """The booking form's fields as a browser would post them (Wednesday 4 March, 10:00–10:50)."""
    data = {"client": "", "date": "2026-03-04", "start_time": "10:00", "end_time": "10:50", "kind": "telehealth",
            "csrf_token": clinic_csrf(http)}
    data.update(changes)
    return data


# ---- views ------------------------------------------------------------------------------

def test_day_view_shows_client_time_kind_and_status_in_local_time(app, client, dana, alex):
    book(app, dana, alex, datetime(2026, 3, 2, 15, 0), datetime(2026, 3, 2, 15, 50), kind="in_person")
    clinic_sign_in(client, "dana@example.com")
    html = page(client, "/clinic/calendar?date=2026-03-02")
    assert "Monday 2 March 2026" in html and "Times are in America/New_York." in html
    card = text_of(card_in(html, Appointment.get()))
    assert "10:00 AM – 10:50 AM" in card  # 15:00 UTC is 10:00 in New York
    assert "Alex Morgan" in card and "In person" in card and "Scheduled" in card
    assert "Link open" not in card  # only telehealth has a link


def test_telehealth_appointment_shows_when_its_link_is_open_as_a_band(app, client, dana, alex, traveller):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15, 0), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    card = text_of(card_in(page(client, "/clinic/calendar?date=2026-03-02"), appointment))
    assert "Telehealth" in card
    assert "Link open 9:45 AM – 11:20 AM" in card  # 15 minutes early to 30 minutes after the end
    assert "open now" not in card
    traveller.shift(6 * 3600)  # 15:00 UTC, 10:00 in New York
    clinic_sign_in(client, "dana@example.com")
    assert "Link open 9:45 AM – 11:20 AM (open now)" in text_of(card_in(page(client, "/clinic/calendar"), appointment))


def test_a_telehealth_card_lets_the_clinician_join_the_video_session(app, client, dana, alex):
    video = book(app, dana, alex, datetime(2026, 3, 2, 15, 0), datetime(2026, 3, 2, 15, 50))
    in_person = book(app, dana, alex, datetime(2026, 3, 2, 17, 0), datetime(2026, 3, 2, 17, 50), kind="in_person")
    clinic_sign_in(client, "dana@example.com")
    html = page(client, "/clinic/calendar?date=2026-03-02")
    assert f'href="/clinic/appointments/{video.id}/join"' in card_in(html, video)
    assert "Join video session" not in card_in(html, in_person)


def test_band_follows_the_practice_grace_setting(app, client, dana, alex):
    Practice.update(telehealth_grace_minutes=60).execute()
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15, 0), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    assert "Link open 9:45 AM – 11:50 AM" in text_of(card_in(page(client, "/clinic/calendar"), appointment))


def test_calendar_opens_on_today_in_the_practice_time_zone(client, dana):
    Practice.update(timezone="Pacific/Honolulu").execute()  # 09:00 UTC Monday is 23:00 Sunday there
    clinic_sign_in(client, "dana@example.com")
    assert "<h1>Sunday 1 March 2026</h1>" in page(client, "/clinic/calendar")


def test_day_view_links_to_previous_next_and_today(client, dana):
    clinic_sign_in(client, "dana@example.com")
    html = page(client, "/clinic/calendar?date=2026-03-10")
    assert "<h1>Tuesday 10 March 2026</h1>" in html
    assert 'href="/clinic/calendar?date=2026-03-09" rel="prev"' in html
    assert 'href="/clinic/calendar?date=2026-03-11" rel="next"' in html
    assert '<a href="/clinic/calendar">Today</a>' in html


def test_a_date_that_is_not_one_in_the_address_shows_today(client, dana):
    clinic_sign_in(client, "dana@example.com")
    assert "<h1>Monday 2 March 2026</h1>" in page(client, "/clinic/calendar?date=2026-02-30")


def test_week_view_starts_on_monday_with_each_day_and_links_to_other_weeks(app, client, dana, alex):
    wednesday = book(app, dana, alex, datetime(2026, 3, 4, 19, 0), datetime(2026, 3, 4, 19, 50))
    next_monday = book(app, dana, alex, datetime(2026, 3, 9, 14, 0), datetime(2026, 3, 9, 14, 50))
    clinic_sign_in(client, "dana@example.com")
    html = page(client, "/clinic/calendar/week?date=2026-03-05")  # a Thursday
    assert "<h1>2 Mar – 8 Mar 2026</h1>" in html
    assert re.findall(r'<h2 id="day-[^"]+"><a [^>]*>([^<]+)</a>', html) == [
        "Mon 2 Mar", "Tue 3 Mar", "Wed 4 Mar", "Thu 5 Mar", "Fri 6 Mar", "Sat 7 Mar", "Sun 8 Mar"]
    assert "2:00 PM – 2:50 PM" in text_of(card_in(html, wednesday))
    assert f'id="appointment-{next_monday.id}"' not in html
    assert 'href="/clinic/calendar/week?date=2026-02-23" rel="prev"' in html
    assert 'href="/clinic/calendar/week?date=2026-03-09" rel="next"' in html
    assert f'id="appointment-{next_monday.id}"' in page(client, "/clinic/calendar/week?date=2026-03-09")


def test_the_day_of_a_clock_change_says_so(client, dana):
    clinic_sign_in(client, "dana@example.com")
    assert "Clocks go forward an hour today (EST → EDT)." in page(client, "/clinic/calendar?date=2026-03-08")
    assert "Clocks go" not in page(client, "/clinic/calendar?date=2026-03-09")


@pytest.mark.parametrize("zone, before, after", [
    ("Europe/London", ("2026-03-28", datetime(2026, 3, 28, 9)), ("2026-03-29", datetime(2026, 3, 29, 8))),
    ("Europe/London", ("2026-10-24", datetime(2026, 10, 24, 8)), ("2026-10-25", datetime(2026, 10, 25, 9))),
    ("America/New_York", ("2026-03-07", datetime(2026, 3, 7, 14)), ("2026-03-08", datetime(2026, 3, 8, 13))),
], ids=["london-spring", "london-autumn", "new-york-spring"])
def test_appointment_at_9_local_stays_at_9_on_both_sides_of_a_dst_change(client, dana, alex, zone, before, after):
    Practice.update(timezone=zone).execute()
    clinic_sign_in(client, "dana@example.com")
    for day, utc in (before, after):
        response = client.post("/clinic/appointments/new", data=appointment_form(
            client, client=str(alex.id), date=day, start_time="09:00", end_time="09:50"))
        assert response.status_code == 303
        assert Appointment.get(Appointment.starts_at == utc).ends_at == utc.replace(minute=50)
        assert "9:00 AM – 9:50 AM" in text_of(page(client, f"/clinic/calendar?date={day}"))
    week = text_of(page(client, f"/clinic/calendar/week?date={after[0]}"))
    assert week.count("9:00 AM – 9:50 AM") == 2  # both in the same week, both at nine


# ---- booking and changing -----------------------------------------------------------------

def test_clinician_books_an_appointment_stored_in_utc_and_audited(client, kim, alex):
    assign(alex, kim)
    clinic_sign_in(client, "kim@example.com")
    form = page(client, "/clinic/appointments/new?date=2026-03-04")
    assert 'name="clinician"' not in form  # a clinician books for themselves
    assert '<option value="%d">Alex Morgan</option>' % alex.id in form
    response = client.post("/clinic/appointments/new", data=appointment_form(client, client=str(alex.id)))
    assert (response.status_code, response.headers["Location"]) == (303, "/clinic/calendar?date=2026-03-04")
    appointment = Appointment.get()
    assert (appointment.clinician_id, appointment.client_id, appointment.kind) == (kim.id, alex.id, "telehealth")
    assert (appointment.starts_at, appointment.ends_at) == (datetime(2026, 3, 4, 15), datetime(2026, 3, 4, 15, 50))
    assert AuditEvent.get(AuditEvent.kind == "appointment_created").clinician_id == kim.id
    html = text_of(page(client, "/clinic/calendar?date=2026-03-04"))
    assert "Booked: Alex Morgan, Wed 4 Mar, 10:00 AM – 10:50 AM." in html


def test_admin_books_for_another_clinician_and_sees_whose_it_is(client, dana, kim, alex):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/appointments/new", data=appointment_form(
        client, client=str(alex.id), clinician=str(kim.id), kind="in_person"))
    assert response.status_code == 303
    assert Appointment.get().clinician_id == kim.id
    assert "Alex Morgan with Kim Park" in text_of(page(client, "/clinic/calendar?date=2026-03-04"))


@pytest.mark.parametrize("changes, field, message", [
    ({"end_time": "09:30"}, "end_time", "The end must be after the start."),
    ({"end_time": "10:00"}, "end_time", "The end must be after the start."),
    ({"client": "9999"}, "client", "Choose one of your clients."),
    ({"client": ""}, "client", "Choose one of your clients."),
    ({"date": "2026-02-30"}, "date", "2026-02-30 is not a date: February 2026 has no day 30."),
    ({"date": "2026-13-01"}, "date", "2026-13-01 is not a date: there is no month 13."),
    ({"date": "next tuesday"}, "date", "Enter a date like 2026-03-09."),
    ({"date": ""}, "date", "Enter the date."),
    ({"start_time": "25:00"}, "start_time", "Enter a time like 09:30."),
    ({"date": "2026-03-08", "start_time": "02:30", "end_time": "03:30"}, "start_time",
     "02:30 does not exist on 8 Mar 2026 in America/New_York: the clocks go forward then."),
    ({"date": "2026-03-08", "start_time": "01:30", "end_time": "02:15"}, "end_time",
     "02:15 does not exist on 8 Mar 2026 in America/New_York: the clocks go forward then."),
    ({"start_time": "08:00", "end_time": "20:30"}, "end_time", "An appointment can last at most 12 hours."),
    ({"kind": "carrier pigeon"}, "kind", "Not a valid choice."),
    ({"clinician": "9999"}, "clinician", "Choose a clinician."),
], ids=["end-before-start", "end-at-start", "unknown-client", "no-client", "february-30", "month-13",
        "words-for-a-date", "no-date", "hour-25", "start-in-dst-gap", "end-in-dst-gap", "over-12-hours",
        "unknown-kind", "unknown-clinician"])
def test_each_bad_input_gets_a_message_beside_its_field_and_nothing_is_saved(client, dana, alex, changes, field,
                                                                            message):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/appointments/new", data=appointment_form(
        client, **{"client": str(alex.id), "clinician": str(dana.id), **changes}))
    assert response.status_code == 422
    assert f'<p class="error" id="{field}-error">{message}</p>' in response.get_data(as_text=True)
    assert Appointment.select().count() == 0


@pytest.mark.parametrize("whose", ["another-clinicians", "unassigned", "archived"])
def test_a_clinician_cannot_book_a_client_who_is_not_theirs(client, dana, kim, alex, whose):
    from practice.clients import add_client, archive_client
    sam = add_client("sam@example.com", "Sam Rivera")
    assign(sam, kim)
    if whose == "another-clinicians":
        assign(alex, dana)
    elif whose == "archived":
        assign(alex, kim)
        archive_client(alex)
    clinic_sign_in(client, "kim@example.com")
    form = page(client, "/clinic/appointments/new")
    assert "Sam Rivera" in form and "Alex Morgan" not in form
    response = client.post("/clinic/appointments/new", data=appointment_form(client, client=str(alex.id)))
    assert response.status_code == 422
    assert '<p class="error" id="client-error">Choose one of your clients.</p>' in response.get_data(as_text=True)
    assert Appointment.select().count() == 0


def test_overlap_is_warned_about_and_saved_only_when_asked(app, client, kim, alex):
    assign(alex, kim)
    earlier = book(app, kim, alex, datetime(2026, 3, 4, 14, 30), datetime(2026, 3, 4, 15, 20))
    clinic_sign_in(client, "kim@example.com")
    data = appointment_form(client, client=str(alex.id))
    warned = client.post("/clinic/appointments/new", data=data)
    assert warned.status_code == 422
    html = text_of(warned.get_data(as_text=True))
    assert "This overlaps another appointment: Alex Morgan, Wed 4 Mar, 9:30 AM – 10:20 AM" in html
    assert '<button type="submit" name="save_anyway" value="y"' in warned.get_data(as_text=True)
    assert Appointment.select().count() == 1
    saved = client.post("/clinic/appointments/new", data=dict(data, save_anyway="y"))
    assert saved.status_code == 303
    assert Appointment.select().count() == 2
    day = page(client, "/clinic/calendar?date=2026-03-04")
    assert "Overlaps Alex Morgan, Wed 4 Mar, 10:00 AM – 10:50 AM" in text_of(card_in(day, earlier))


def test_another_clinicians_appointment_at_the_same_time_is_no_overlap(app, client, dana, kim, alex):
    book(app, kim, alex, datetime(2026, 3, 4, 15), datetime(2026, 3, 4, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/appointments/new", data=appointment_form(client, client=str(alex.id)))
    assert response.status_code == 303 and Appointment.select().count() == 2


def test_edit_moves_an_appointment_and_audits_it(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 4, 15), datetime(2026, 3, 4, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    form = page(client, f"/clinic/appointments/{appointment.id}/edit")
    assert 'value="2026-03-04"' in form and 'value="10:00"' in form and 'value="10:50"' in form
    assert "Alex Morgan" in form and 'name="client"' not in form  # another client is a new booking
    response = client.post(f"/clinic/appointments/{appointment.id}/edit", data=appointment_form(
        client, date="2026-03-05", start_time="13:00", end_time="14:00", kind="in_person"))
    assert (response.status_code, response.headers["Location"]) == (303, "/clinic/calendar?date=2026-03-05")
    moved = Appointment.get_by_id(appointment.id)
    assert (moved.starts_at, moved.ends_at, moved.kind) == (datetime(2026, 3, 5, 18), datetime(2026, 3, 5, 19),
                                                            "in_person")
    assert moved.sequence == 1
    assert AuditEvent.select().where(AuditEvent.kind == "appointment_moved").count() == 1


def test_edit_checks_input_like_booking(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 4, 15), datetime(2026, 3, 4, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    response = client.post(f"/clinic/appointments/{appointment.id}/edit",
                           data=appointment_form(client, date="2026-02-29"))
    assert response.status_code == 422
    assert "2026-02-29 is not a date: February 2026 has no day 29." in response.get_data(as_text=True)
    assert Appointment.get_by_id(appointment.id).starts_at == datetime(2026, 3, 4, 15)


def test_cancel_asks_first_then_shows_the_appointment_as_cancelled(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 4, 15), datetime(2026, 3, 4, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    confirm = text_of(page(client, f"/clinic/appointments/{appointment.id}/cancel"))
    assert "Cancel this appointment?" in confirm and "Alex Morgan, Wed 4 Mar, 10:00 AM – 10:50 AM" in confirm
    assert Appointment.get_by_id(appointment.id).status == "scheduled"  # asking changes nothing
    response = client.post(f"/clinic/appointments/{appointment.id}/cancel", data={"csrf_token": clinic_csrf(client)})
    assert (response.status_code, response.headers["Location"]) == (303, "/clinic/calendar?date=2026-03-04")
    cancelled = Appointment.get_by_id(appointment.id)
    assert cancelled.status == "cancelled" and cancelled.nonce != appointment.nonce
    assert AuditEvent.select().where(AuditEvent.kind == "appointment_cancelled").count() == 1
    html = page(client, "/clinic/calendar?date=2026-03-04")
    assert "<h2>Cancelled</h2>" in html
    card = card_in(html, appointment)
    assert 'class="appointment kind-telehealth cancelled"' in card and "Cancelled" in text_of(card)
    assert "+15 min" not in card and "Link open" not in card


def test_a_cancelled_appointment_cannot_be_moved_or_extended(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 4, 15), datetime(2026, 3, 4, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    client.post(f"/clinic/appointments/{appointment.id}/cancel", data={"csrf_token": clinic_csrf(client)})
    assert "was cancelled and cannot be changed" in page(client, f"/clinic/appointments/{appointment.id}/edit")
    moved = client.post(f"/clinic/appointments/{appointment.id}/edit", data=appointment_form(client))
    assert moved.status_code == 422 and "was cancelled and cannot be changed" in moved.get_data(as_text=True)
    extended = client.post(f"/clinic/appointments/{appointment.id}/extend",
                           data={"minutes": "15", "csrf_token": clinic_csrf(client)})
    assert extended.status_code == 422 and "This appointment is cancelled." in extended.get_data(as_text=True)
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 4, 15, 50)


# ---- extending inline -----------------------------------------------------------------------

def htmx_from(element_id, client):
    return {"HX-Request": "true", "HX-Trigger": element_id, "X-CSRFToken": clinic_csrf(client)}


def test_extend_with_htmx_answers_with_the_grid_showing_the_new_end_and_longer_band(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    day = page(client, "/clinic/calendar?date=2026-03-02")
    assert f'<form id="extend-{appointment.id}"' in day
    assert f'hx-post="/clinic/appointments/{appointment.id}/extend"' in day
    response = client.post(f"/clinic/appointments/{appointment.id}/extend", data={"minutes": "15", "view": "day"},
                           headers=htmx_from(f"extend-{appointment.id}", client))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # The time grid the card sits on (its height and window strip follow), not the page.
    assert html.strip().startswith('<div id="calendar-grid"') and "<html" not in html
    assert "10:00 AM – 11:05 AM" in text_of(card_in(html, appointment))
    assert "Link open 9:45 AM – 11:35 AM" in text_of(html)
    assert "HX-Trigger" in response.headers["Vary"]
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 16, 5)
    again = client.post(f"/clinic/appointments/{appointment.id}/extend", data={"minutes": "30", "view": "day"},
                        headers=htmx_from(f"extend-{appointment.id}", client))
    assert "10:00 AM – 11:35 AM" in text_of(again.get_data(as_text=True))
    assert "Link open 9:45 AM – 12:05 PM" in text_of(again.get_data(as_text=True))


@pytest.mark.parametrize("view, location", [("day", "/clinic/calendar?date=2026-03-02"),
                                            ("week", "/clinic/calendar/week?date=2026-03-02")])
def test_extend_without_htmx_goes_back_to_the_calendar(app, client, dana, alex, view, location):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    response = client.post(f"/clinic/appointments/{appointment.id}/extend",
                           data={"minutes": "30", "view": view, "csrf_token": clinic_csrf(client)})
    assert (response.status_code, response.headers["Location"]) == (303, location)
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 16, 20)
    assert AuditEvent.select().where(AuditEvent.kind == "appointment_moved").count() == 1


def test_htmx_request_from_another_element_gets_a_redirect_not_the_card(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    headers = dict(htmx_from(f"extend-{appointment.id}", client), **{"HX-Boosted": "true"})
    boosted = client.post(f"/clinic/appointments/{appointment.id}/extend", data={"minutes": "15"}, headers=headers)
    assert boosted.headers["HX-Redirect"] == "/clinic/calendar?date=2026-03-02"
    assert "<article" not in boosted.get_data(as_text=True)


@pytest.mark.parametrize("minutes", ["45", "0", "lots"])
def test_extend_only_by_15_or_30_minutes(app, client, dana, alex, minutes):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    response = client.post(f"/clinic/appointments/{appointment.id}/extend", data={"minutes": minutes},
                           headers=htmx_from(f"extend-{appointment.id}", client))
    assert response.status_code == 422
    assert "Extend by 15 or 30 minutes." in response.get_data(as_text=True)
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 15, 50)


def test_extending_into_the_next_appointment_is_warned_then_done_when_confirmed(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    book(app, dana, alex, datetime(2026, 3, 2, 16), datetime(2026, 3, 2, 16, 50))
    clinic_sign_in(client, "dana@example.com")
    warned = client.post(f"/clinic/appointments/{appointment.id}/extend", data={"minutes": "15", "view": "day"},
                         headers=htmx_from(f"extend-{appointment.id}", client))
    assert warned.status_code == 422
    html = warned.get_data(as_text=True)
    assert "+15 min would overlap: Alex Morgan, Mon 2 Mar, 11:00 AM – 11:50 AM." in text_of(html)
    assert f'<form id="confirm-{appointment.id}"' in html
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 15, 50)
    done = client.post(f"/clinic/appointments/{appointment.id}/extend",
                       data={"minutes": "15", "view": "day", "save_anyway": "y"},
                       headers=htmx_from(f"confirm-{appointment.id}", client))
    assert done.status_code == 200 and "10:00 AM – 11:05 AM" in text_of(done.get_data(as_text=True))
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 16, 5)


def test_set_an_exact_end_time_inline(app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    response = client.post(f"/clinic/appointments/{appointment.id}/end", data={"end_time": "11:10", "view": "day"},
                           headers=htmx_from(f"end-{appointment.id}", client))
    assert response.status_code == 200
    assert "10:00 AM – 11:10 AM" in text_of(response.get_data(as_text=True))
    assert "Link open 9:45 AM – 11:40 AM" in text_of(response.get_data(as_text=True))
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 16, 10)


@pytest.mark.parametrize("end_time, message", [("09:30", "The end must be after the start."),
                                               ("half past", "Enter a time like 09:30."),
                                               ("", "Enter a time.")])
def test_a_bad_exact_end_is_refused_beside_the_field(app, client, dana, alex, end_time, message):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    fragment = client.post(f"/clinic/appointments/{appointment.id}/end", data={"end_time": end_time},
                           headers=htmx_from(f"end-{appointment.id}", client))
    assert fragment.status_code == 422
    assert f'<p class="error" id="end-time-{appointment.id}-error">{message}</p>' in fragment.get_data(as_text=True)
    without_js = client.post(f"/clinic/appointments/{appointment.id}/end",
                             data={"end_time": end_time, "csrf_token": clinic_csrf(client)})
    assert without_js.status_code == 422
    html = without_js.get_data(as_text=True)
    assert "<h1>Monday 2 March 2026</h1>" in html  # the whole calendar, the message beside the field
    assert f'<p class="error" id="end-time-{appointment.id}-error">{message}</p>' in html
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 15, 50)


# ---- who may see what -------------------------------------------------------------------------

def test_a_clinician_sees_only_their_own_appointments_and_an_admin_sees_everyones(app, client, dana, kim, alex):
    """An admin chooses whose (tests/test_calendar_clinician.py): everyone's, at a practice this size."""
    kims = book(app, kim, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    danas = book(app, dana, alex, datetime(2026, 3, 2, 17), datetime(2026, 3, 2, 17, 50))
    clinic_sign_in(client, "kim@example.com")
    for path in ("/clinic/calendar", "/clinic/calendar/week"):
        html = page(client, path)
        assert f'id="appointment-{kims.id}"' in html and f'id="appointment-{danas.id}"' not in html
        assert "with Kim Park" not in html
    client.post("/clinic/sign-out", data={"csrf_token": clinic_csrf(client)})
    clinic_sign_in(client, "dana@example.com")
    html = page(client, "/clinic/calendar?clinician=all")
    assert "with Kim Park" in text_of(card_in(html, kims)) and "with Dana Hale" in text_of(card_in(html, danas))


CHANGES = [("get", "/clinic/appointments/{id}/edit", {}),
           ("post", "/clinic/appointments/{id}/edit", {"date": "2026-03-05", "start_time": "10:00",
                                                      "end_time": "10:50", "kind": "telehealth"}),
           ("get", "/clinic/appointments/{id}/cancel", {}),
           ("post", "/clinic/appointments/{id}/cancel", {}),
           ("post", "/clinic/appointments/{id}/extend", {"minutes": "15"}),
           ("post", "/clinic/appointments/{id}/end", {"end_time": "11:30"})]


@pytest.mark.parametrize("method, path, data", CHANGES)
def test_another_clinicians_appointment_looks_like_one_that_does_not_exist(app, client, dana, kim, alex,
                                                                          method, path, data):
    danas = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    clinic_sign_in(client, "kim@example.com")
    token = clinic_csrf(client)
    for appointment_id in (danas.id, 9999):
        call = getattr(client, method)
        response = call(path.format(id=appointment_id),
                        **({"data": dict(data, csrf_token=token)} if method == "post" else {}))
        assert response.status_code == 404
        assert "Alex" not in response.get_data(as_text=True)
    unchanged = Appointment.get_by_id(danas.id)
    assert (unchanged.status, unchanged.starts_at, unchanged.ends_at) == ("scheduled", danas.starts_at, danas.ends_at)


@pytest.mark.parametrize("method, path, data", CHANGES + [("get", "/clinic/calendar/week", {}),
                                                        ("get", "/clinic/appointments/new", {}),
                                                        ("post", "/clinic/appointments/new", {})])
def test_a_client_session_is_refused_every_calendar_page(app, client, dana, alex, smtp_server, method, path, data):
    continue_with(client, mailed_link(app, client, smtp_server))
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 15), datetime(2026, 3, 2, 15, 50))
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page(client, "/portal")).group(1)  # the client's own token
    call = getattr(client, method)
    response = call(path.format(id=appointment.id),
                    **({"data": dict(data, csrf_token=token)} if method == "post" else {}))
    assert response.status_code == 403
    assert "Alex" not in response.get_data(as_text=True)
    assert Appointment.get_by_id(appointment.id).ends_at == datetime(2026, 3, 2, 15, 50)


@pytest.mark.parametrize("path", ["/clinic/calendar/week", "/clinic/appointments/new"])
def test_nobody_signed_in_is_sent_to_sign_in(client, path):
    assert client.get(path).headers["Location"] == "/clinic/sign-in"


# ---- a start in the past, and where a new appointment starts ------------------------------

def test_a_start_in_the_past_is_warned_about_and_saved_only_when_confirmed(app, client, kim, alex):
    assign(alex, kim)
    clinic_sign_in(client, "kim@example.com")
    # 9:00 UTC is 4:00 AM in New York: 3:00 AM today has gone by.
    data = appointment_form(client, client=str(alex.id), date="2026-03-02", start_time="03:00", end_time="03:50")
    warned = client.post("/clinic/appointments/new", data=data)
    assert warned.status_code == 422
    html = text_of(warned.get_data(as_text=True))
    assert "This starts in the past: Mon 2 Mar 2026, 3:00 AM EST, which has already gone by." in html
    assert '<button type="submit" name="save_anyway" value="y"' in warned.get_data(as_text=True)
    assert Appointment.select().count() == 0
    saved = client.post("/clinic/appointments/new", data=dict(data, save_anyway="y"))
    assert saved.status_code == 303 and Appointment.select().count() == 1


def test_editing_an_appointment_already_under_way_without_moving_its_start_is_no_past_warning(
        app, client, dana, alex):
    appointment = book(app, dana, alex, datetime(2026, 3, 2, 8, 30), datetime(2026, 3, 2, 9, 20))
    clinic_sign_in(client, "dana@example.com")
    data = appointment_form(client, date="2026-03-02", start_time="03:30", end_time="04:30", kind="in_person")
    del data["client"]
    response = client.post(f"/clinic/appointments/{appointment.id}/edit", data=data)
    assert response.status_code == 303
    assert Appointment.get_by_id(appointment.id).kind == "in_person"


def new_form_times(app, path="/clinic/appointments/new"):
    client = app.test_client()  # signed in afresh: time jumps past the idle limit here
    clinic_sign_in(client, "dana@example.com")
    html = page(client, path)
    return tuple(re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)
                 for name in ("date", "start_time", "end_time"))


def test_a_new_appointment_starts_at_the_next_free_half_hour_in_working_hours(app, client, dana, alex, traveller):
    # 4:00 AM in New York: working hours open at 8:00, and Dana is busy 8:00–9:00.
    book(app, dana, alex, datetime(2026, 3, 2, 13), datetime(2026, 3, 2, 14))
    assert new_form_times(app) == ("2026-03-02", "09:00", "09:50")
    traveller.move_to(datetime(2026, 3, 2, 15, 10))  # 10:10 AM: the next half hour
    assert new_form_times(app) == ("2026-03-02", "10:30", "11:20")
    traveller.move_to(datetime(2026, 3, 3, 4))  # 11 PM Monday: the next morning, not 9:00 today
    assert new_form_times(app) == ("2026-03-03", "08:00", "08:50")
    traveller.move_to(datetime(2026, 3, 7, 4))  # 11 PM Friday: Monday
    assert new_form_times(app) == ("2026-03-09", "08:00", "08:50")
    # A day chosen in the calendar: its first free half hour.
    assert new_form_times(app, "/clinic/appointments/new?date=2026-03-12") == ("2026-03-12", "08:00", "08:50")



def test_a_new_appointment_starts_in_the_clinicians_own_working_hours_when_they_set_them(
        app, client, dana, alex, traveller):
    # Dana works Tuesdays and Thursdays 12:30–17:00; it is 4:00 AM on Monday 2 March in New York.
    save_hours(dana, {1: [("12:30", "17:00")], 3: [("12:30", "17:00")]}, [])
    book(app, dana, alex, datetime(2026, 3, 3, 17, 30), datetime(2026, 3, 3, 18, 30))  # Tuesday 12:30–13:30
    assert new_form_times(app) == ("2026-03-03", "13:30", "14:20")
    traveller.move_to(datetime(2026, 3, 3, 21, 30))  # Tuesday 4:30 PM: 50 minutes no longer fit
    assert new_form_times(app) == ("2026-03-05", "12:30", "13:20")
    # A day chosen in the calendar on which Dana has no hours of her own: the usual 8:00.
    assert new_form_times(app, "/clinic/appointments/new?date=2026-03-09") == ("2026-03-09", "08:00", "08:50")

# ---- what the clinician is told -----------------------------------------------------------

def test_booked_and_cancelled_are_successes_not_warnings(app, client, kim, alex):
    assign(alex, kim)
    clinic_sign_in(client, "kim@example.com")
    client.post("/clinic/appointments/new", data=appointment_form(client, client=str(alex.id)))
    html = page(client, "/clinic/calendar?date=2026-03-04")
    assert re.search(r'<p class="message success" role="status">Booked: Alex Morgan, Wed 4 Mar', html)
    appointment = Appointment.get()
    client.post(f"/clinic/appointments/{appointment.id}/cancel", data={"csrf_token": clinic_csrf(client)})
    html = page(client, "/clinic/calendar?date=2026-03-04")
    assert re.search(r'<p class="message success" role="status">Cancelled: Alex Morgan, Wed 4 Mar', html)
    assert 'class="notice' not in html.split("<main>")[1].split("</h1>")[0]


def test_an_error_and_a_warning_need_attention_and_look_so(app, client, dana, alex):
    clinic_sign_in(client, "dana@example.com")
    client.post(f"/clinic/clients/{alex.id}/archive", data={"csrf_token": clinic_csrf(client)})
    client.get(f"/clinic/clients/{alex.id}")  # the archive's own success message, out of the way
    client.post(f"/clinic/clients/{alex.id}/send-link", data={"csrf_token": clinic_csrf(client)})
    html = page(client, f"/clinic/clients/{alex.id}")
    assert re.search(r'<p class="message error" role="alert">[^<]*is archived and cannot sign in', html)


@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx"])
def test_extending_says_what_it_did(app, client, dana, alex, headers):
    appointment = book(app, dana, alex, datetime(2026, 3, 4, 15), datetime(2026, 3, 4, 15, 50))
    clinic_sign_in(client, "dana@example.com")
    if headers:
        headers = dict(headers, **{"HX-Trigger": f"extend-{appointment.id}"})
    response = client.post(f"/clinic/appointments/{appointment.id}/extend",
                           data={"minutes": "15", "csrf_token": clinic_csrf(client)}, headers=headers)
    html = response.get_data(as_text=True) if headers else page(client, response.headers["Location"])
    assert ('<p class="message success" role="status">Extended: Alex Morgan&#39;s appointment now ends at 11:05 AM.</p>'
            in html), re.findall(r'<p class="message[^<]*', html)
