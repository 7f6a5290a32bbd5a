"""Clients reschedule or cancel from the link in every reminder and booking email, within
the practice's rules, exactly as a clinician's move or cancel would; past the cutoff the page
says why and how to reach the practice; two clients taking one time: one gets it."""
import re
import threading
from datetime import datetime, timedelta
from html import unescape

import pytest
import requests

from practice import jobs
from practice.appointments import cancel_appointment, create_appointment, move_appointment
from practice.availability import save_hours
from practice.clients import add_client
from practice.history import recent_events
from practice.models import Appointment, AuditEvent, OnlineChange, Practice, Reminder, db
from practice.telehealth import join_token, look_up_join_link
from tests.conftest import CSRF_INPUT, START, clinic_sign_in, deliver, text_part
from tests.test_reminders import ics_of

CHANGE_LINK = re.compile(r"http://portal\.test(/a/[A-Za-z0-9._\-]+\?via=[a-z_]+)")
ZONE = "America/New_York"  # START, Monday 2 March 2026 9:00 UTC, is 4:00 AM EST there
WEEKDAYS = {day: [("09:00", "12:00"), ("13:00", "17:00")] for day in range(5)}


@pytest.fixture
def practice(app, dana, traveller):
    Practice.update(name="Riverside Counselling", timezone=ZONE, phone="555 0100",
                    contact_email="office@riverside.example").execute()
    save_hours(dana, WEEKDAYS, [])
    return Practice.current()


def book(clinician, client, start, minutes=50, kind="telehealth"):
    return create_appointment(clinician=clinician, client=client, starts_at=start,
                              ends_at=start + timedelta(minutes=minutes), kind=kind)


def change_links(message) -> list[str]:
    """The /a/ links of both parts of a mail (the HTML one unescaped)."""
    html = unescape(message.get_body(preferencelist=("html",)).get_content())
    return CHANGE_LINK.findall(text_part(message)) + CHANGE_LINK.findall(html)


def form_token(html: str) -> str:
    return CSRF_INPUT.search(html).group(1)


def words(response) -> str:
    """The page's text as a person reads it."""
    html = response.get_data(as_text=True)
    main = html.split("<main>", 1)[-1]
    text = re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", main))).strip()
    return re.sub(r" ([,.:;])", r"\1", text)


def pick(client, link, start: datetime):
    """Open the times, pick `start` (naive UTC) and confirm it, as the client would."""
    path, _, query = link.partition("?")
    times = client.get(f"{path}/times?{query}")
    assert times.status_code == 200
    slot = f"{start:%Y%m%dT%H%M}"
    assert f"start={slot}" in times.get_data(as_text=True), "the time is not offered"
    confirm = client.get(f"{path}/times/confirm?{query}&start={slot}")
    html = confirm.get_data(as_text=True)
    sequence = re.search(r'name="sequence"[^>]*value="(\d+)"', html).group(1)
    return client.post(f"{path}/times?{query}", data={"csrf_token": form_token(html), "start": slot,
                                                     "sequence": sequence})


def link_for(appointment, via="reminder"):
    from practice.online_changes import change_token
    return f"/a/{change_token(appointment)}?via={via}"


# ---- the link in every email ----------------------------------------------------------------

def test_the_link_opens_from_every_reminder_and_booking_email(app, practice, dana, alex, traveller, smtp_server):
    soon = book(dana, alex, START + timedelta(days=2, hours=10))  # inside 72 h: a confirmation
    later = book(dana, alex, START + timedelta(days=4, hours=10))  # Friday 6 March, 2:00 PM EST
    traveller.move_to(later.starts_at - timedelta(hours=72))
    jobs.reminder_tick()  # the 72-hour reminder
    move_appointment(later, starts_at=later.starts_at + timedelta(hours=1), ends_at=later.ends_at + timedelta(hours=1))
    traveller.move_to(later.starts_at - timedelta(hours=24))
    jobs.reminder_tick()  # the 24-hour reminder (of both)
    deliver(app)

    mails = smtp_server.to("alex@example.com")
    kinds = sorted(m["Message-ID"].split(".")[2].split("@")[0] for m in mails)
    assert kinds == ["appointment-confirmed", "appointment-moved", "reminder", "reminder", "reminder"]
    for message in mails:
        links = change_links(message)
        assert len(links) == 2, message["Subject"]  # the text part and the HTML part
        assert "Need to change this? Reschedule or cancel" in text_part(message)
        page = app.test_client().get(links[0])
        assert page.status_code == 200, links[0]
        assert "Your appointment" in words(page) and "Dana Hale" in words(page)
    # One link per appointment, the same in every email of it, whichever email it came in.
    tokens = {}
    for message in mails:
        token = change_links(message)[0].split("?")[0]
        tokens.setdefault(token, set()).add(message["Subject"].split(":")[0])
    assert len(tokens) == 2
    assert {"Moved", "Reminder"} <= next(kinds for token, kinds in tokens.items() if f"/a/{later.id}." in token)
    assert soon.id != later.id


def test_the_link_is_left_out_when_the_practice_takes_no_changes_online(app, practice, dana, alex, smtp_server):
    Practice.update(online_change_hours=0).execute()
    book(dana, alex, START + timedelta(days=2))
    deliver(app)
    (message,) = smtp_server.to("alex@example.com")
    assert change_links(message) == [] and "Reschedule or cancel" not in text_part(message)


# ---- moving ---------------------------------------------------------------------------------------

def test_a_client_moves_the_appointment_exactly_as_a_clinicians_move_does(app, practice, dana, alex, smtp_server):
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))  # Fri 6 Mar 2:00 PM EST
    join_before = join_token(appointment)
    new_start = START + timedelta(days=3, hours=9)  # Thu 5 Mar 18:00 UTC, 1:00 PM EST

    answer = pick(app.test_client(), link_for(appointment), new_start)

    assert answer.status_code == 303 and "done=moved" in answer.headers["Location"]
    moved = Appointment.get_by_id(appointment.id)
    assert (moved.starts_at, moved.ends_at, moved.sequence) == (new_start, new_start + timedelta(minutes=50), 1)
    assert join_token(moved) == join_before  # the join link is unchanged...
    assert look_up_join_link(join_before).appointment.starts_at == new_start  # ...and follows the new time
    due = sorted(r.due_at for r in Reminder.pending_for(moved))
    assert due == [new_start - timedelta(hours=72), new_start - timedelta(hours=24)]  # re-planned
    deliver(app)
    (client_mail,) = smtp_server.to("alex@example.com")
    assert client_mail["Subject"].startswith("Moved:")
    assert "SEQUENCE:1" in ics_of(client_mail).to_ical().decode()
    (clinician_mail,) = smtp_server.to("dana@example.com")
    assert clinician_mail["Subject"] == "Alex Morgan moved their appointment to Thu 5 Mar at 1:00 PM"
    assert "from the reminder email" in text_part(clinician_mail)
    # The client's history says what, who, and from which email.
    (event,) = [e for e in recent_events(alex) if e.kind == "online_moved"]
    assert "by the client from the reminder email" in event.what and event.by == ""
    # The page says it is done, and shows the new time.
    page = app.test_client().get(answer.headers["Location"])
    assert "Done: your appointment has moved" in words(page) and "Thu 5 Mar 2026, 1:00 PM" in words(page)


def test_times_page_a_week_at_a_time_with_htmx_paging_that_works_without_it(app, practice, dana, alex):
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    path, _, query = link_for(appointment).partition("?")
    page = app.test_client().get(f"{path}/times?{query}")
    html = page.get_data(as_text=True)
    assert "2 March to 8 March 2026" in html and "Previous week" not in html
    following = re.search(r'id="times-next" href="([^"]+)"', html).group(1)
    whole = app.test_client().get(unescape(following))  # no JavaScript: a whole page
    assert "<html" in whole.get_data(as_text=True) and "9 March to 15 March 2026" in words(whole)
    fragment = app.test_client().get(unescape(following), headers={"HX-Request": "true", "HX-Trigger": "times-next"})
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and body.lstrip().startswith('<section id="times-week"')
    assert "HX-Trigger" in fragment.headers["Vary"]
    assert "Monday 9 March 2026" in body and "9:00 AM" in body


def test_times_are_shown_in_the_clients_own_time_zone(app, practice, dana, alex):
    from practice.models import Client
    Client.update(timezone="Europe/London").where(Client.id == alex.id).execute()
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    path, _, query = link_for(appointment).partition("?")
    page = app.test_client().get(f"{path}/times?{query}")
    said = words(page)
    # Dana's 9:00 AM in New York (EST, UTC-5) is 2:00 PM in London (GMT).
    assert "Times are in Europe/London." in said and "Tuesday 3 March 2026 2:00 PM" in said
    assert "Your appointment now: Fri 6 Mar 2026, 7:00 PM – 7:50 PM GMT" in said


def test_a_time_that_is_not_open_is_refused_and_the_times_shown_again(app, practice, dana, alex):
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    client = app.test_client()
    path, _, query = link_for(appointment).partition("?")
    html = client.get(f"{path}/times/confirm?{query}&start=20260305T1800").get_data(as_text=True)
    # 3:00 AM New York: outside the hours, so refused at the POST whatever the form says.
    refused = client.post(f"{path}/times?{query}", data={"csrf_token": form_token(html), "start": "20260305T0800",
                                                        "sequence": "0"})
    assert refused.status_code == 409
    assert "Sorry, that time was just taken. Please choose another one." in words(refused)
    assert Appointment.get_by_id(appointment.id).starts_at == appointment.starts_at
    closed = client.get(f"{path}/times/confirm?{query}&start=20260305T0800")  # 3:00 AM: not an open time
    assert closed.status_code == 409 and "Sorry, that time is no longer open." in words(closed)
    for nonsense in ("tomorrow", "99991231T2359", "00010101T0000", "20261340T2599"):
        bad = client.get(f"{path}/times/confirm?{query}&start={nonsense}")
        assert bad.status_code == 400 and "Please choose one of the times below." in words(bad)


def test_moved_by_the_practice_while_the_client_chose_is_said_in_plain_words(app, practice, dana, alex):
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    client = app.test_client()
    path, _, query = link_for(appointment).partition("?")
    html = client.get(f"{path}/times/confirm?{query}&start=20260305T1800").get_data(as_text=True)
    move_appointment(appointment, starts_at=appointment.starts_at + timedelta(hours=1),
                     ends_at=appointment.ends_at + timedelta(hours=1), by=dana)
    refused = client.post(f"{path}/times?{query}", data={"csrf_token": form_token(html), "start": "20260305T1800",
                                                        "sequence": "0"})
    assert refused.status_code == 409
    assert "Riverside Counselling changed this appointment while you were choosing" in words(refused)
    page = client.get(link_for(appointment))
    assert "has changed the time of this appointment since it was booked" in words(page)


# ---- cancelling -----------------------------------------------------------------------------------

def test_a_client_cancels_with_a_reason_exactly_as_a_clinicians_cancel_does(app, practice, dana, alex, smtp_server):
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    join = join_token(appointment)
    client = app.test_client()
    link = link_for(appointment, via="appointment_confirmed")
    path, _, query = link.partition("?")
    asking = client.get(f"{path}/cancel?{query}")
    assert "Cancel your appointment?" in words(asking)
    answer = client.post(f"{path}/cancel?{query}", data={"csrf_token": form_token(asking.get_data(as_text=True)),
                                                        "sequence": "0", "reason": "  I have the flu. "})
    assert answer.status_code == 303
    cancelled = Appointment.get_by_id(appointment.id)
    assert cancelled.status == "cancelled" and cancelled.sequence == 1
    assert look_up_join_link(join).retired  # its join link dies
    assert Reminder.pending_for(cancelled).count() == 0  # reminders stop
    assert OnlineChange.get().reason == "I have the flu."
    deliver(app)
    assert [m["Subject"].split(":")[0] for m in smtp_server.to("alex@example.com")] == ["Cancelled"]
    (clinician_mail,) = smtp_server.to("dana@example.com")
    assert "Their reason: I have the flu." in text_part(clinician_mail)
    # The same link afterwards says what happened, in words, never "expired".
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    said = words(page)
    assert "You cancelled this appointment on Mon 2 Mar 2026, 4:00 AM EST" in said and "expired" not in said.lower()
    assert "Choose another time" not in said
    # The clinician sees it on the calendar, with the reason.
    clinic = app.test_client()
    clinic_sign_in(clinic, "dana@example.com")
    calendar = clinic.get("/clinic/calendar")
    assert "Cancelled by the client: I have the flu." in words(calendar)
    assert [e.what for e in recent_events(alex) if e.kind == "online_cancelled"] == [
        "Cancelled online (Fri 6 Mar 2026, 2:00 PM – 2:50 PM EST, by the client from the booking confirmation email)"]


def test_once_cancelled_by_the_practice_the_page_says_so_and_how_to_reach_it(app, practice, dana, alex):
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    link = link_for(appointment)
    cancel_appointment(appointment, by=dana)
    page = app.test_client().get(link)
    said = words(page)
    assert page.status_code == 200
    assert "Riverside Counselling has cancelled this appointment" in said
    assert "call Riverside Counselling on 555 0100, write to office@riverside.example, or reply to the email" in said


# ---- the cutoff -----------------------------------------------------------------------------------

def test_past_the_cutoff_the_page_says_why_and_how_to_reach_the_practice(app, practice, dana, alex, traveller):
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))  # Fri 6 Mar 19:00 UTC, 2:00 PM EST
    client = app.test_client()
    link = link_for(appointment)
    path, _, query = link.partition("?")
    traveller.move_to(appointment.starts_at - timedelta(hours=24, minutes=1))
    asking = client.get(f"{path}/cancel?{query}")
    assert "Choose another time" in words(client.get(link)) and asking.status_code == 200
    traveller.move_to(appointment.starts_at - timedelta(hours=24))  # the cutoff: changes close
    said = words(client.get(link))
    assert ("Online changes close 24 hours before the start. For this appointment they closed on "
            "Thu 5 Mar 2026, 2:00 PM EST.") in said
    assert "Please call Riverside Counselling on 555 0100" in said and "reply to the email" in said
    assert "Choose another time" not in said and "expired" not in said.lower()
    # A form opened before the cutoff and sent after it changes nothing, and says why.
    late = client.post(f"{path}/cancel?{query}", data={"csrf_token": form_token(asking.get_data(as_text=True)),
                                                      "sequence": "0"})
    assert late.status_code == 409 and "Online changes close 24 hours before the start" in words(late)
    assert Appointment.get_by_id(appointment.id).status == "scheduled"


def test_a_link_that_is_not_ours_says_so_with_the_practice_to_reach(app, practice, dana, alex):
    appointment = book(dana, alex, START + timedelta(days=4))
    for token in (f"{appointment.id}.forged", "x", "99999.abc", f"{appointment.id}." + "A" * 80):
        page = app.test_client().get(f"/a/{token}")
        assert page.status_code == 404 and "We don't recognise this link" in words(page)
        assert "reply to the email" in words(page)


# ---- approval -------------------------------------------------------------------------------------

def test_approval_mode_end_to_end_with_real_smtp(app, practice, dana, alex, smtp_server):
    Practice.update(online_change_approval=True).execute()
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    new_start = START + timedelta(days=3, hours=9)
    answer = pick(app.test_client(), link_for(appointment), new_start)
    assert "done=asked" in answer.headers["Location"]
    assert Appointment.get_by_id(appointment.id).starts_at == appointment.starts_at  # not until approved
    assert "You asked to move this appointment to Thu 5 Mar 2026, 1:00 PM" in words(
        app.test_client().get(answer.headers["Location"]))
    deliver(app)
    (asked,) = smtp_server.to("dana@example.com")
    assert asked["Subject"] == "Alex Morgan asks to move their appointment to Thu 5 Mar at 1:00 PM"
    assert "until you approve or decline" in text_part(asked)

    clinic = app.test_client()
    clinic_sign_in(clinic, "dana@example.com")
    calendar = clinic.get("/clinic/calendar").get_data(as_text=True)
    approve = re.search(r'action="(/clinic/online-changes/\d+/approve)"', calendar).group(1)
    done = clinic.post(approve, data={"csrf_token": form_token(calendar)})
    assert done.status_code == 303
    moved = Appointment.get_by_id(appointment.id)
    assert (moved.starts_at, moved.sequence) == (new_start, 1)
    deliver(app)
    assert [m["Subject"] for m in smtp_server.to("alex@example.com")] == ["Moved: your appointment is now on Thu 5 Mar at 1:00 PM"]
    assert "Online request approved" in [e.what.split(" (")[0] for e in recent_events(alex)]

    # A second request, declined: the appointment stays, and the client is told by email.
    smtp_server.clear()
    pick(app.test_client(), link_for(moved), START + timedelta(days=3, hours=9, minutes=50))
    calendar = clinic.get("/clinic/calendar").get_data(as_text=True)
    decline = re.search(r'action="(/clinic/online-changes/\d+/decline)"', calendar).group(1)
    assert clinic.post(decline, data={"csrf_token": form_token(calendar)}).status_code == 303
    assert Appointment.get_by_id(appointment.id).starts_at == new_start
    deliver(app)
    (declined,) = smtp_server.to("alex@example.com")
    assert declined["Subject"] == "Not moved: your appointment stays on Thu 5 Mar at 1:00 PM"
    assert "could not move your appointment to Thu 5 Mar 2026, 1:50 PM" in text_part(declined)
    assert change_links(declined)  # and it carries the link to choose again
    assert "New time declined" in words(clinic.get("/clinic/calendar"))


def test_another_clinicians_request_cannot_be_answered(app, practice, dana, kim, alex):
    Practice.update(online_change_approval=True).execute()
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    pick(app.test_client(), link_for(appointment), START + timedelta(days=3, hours=9))
    clinic = app.test_client()
    clinic_sign_in(clinic, "kim@example.com")
    calendar = clinic.get("/clinic/calendar").get_data(as_text=True)
    assert "asks to move" not in calendar
    change = OnlineChange.get()
    clinic.post(f"/clinic/online-changes/{change.id}/approve", data={"csrf_token": form_token(calendar)})
    assert OnlineChange.get_by_id(change.id).status == "pending"


# ---- the race -------------------------------------------------------------------------------------

def test_two_clients_taking_the_same_time_one_gets_it_the_other_is_told(live_portal, dana):
    """Two browsers press "Move to this time" for the same time at once, against a threaded
    server on this test's database (SQLite and PostgreSQL)."""
    app, base = live_portal
    Practice.update(name="Riverside Counselling", timezone=ZONE).execute()
    save_hours(dana, WEEKDAYS, [])
    now = datetime.utcnow().replace(second=0, microsecond=0)
    sam = add_client("sam@example.com", "Sam Rivera")
    robin = add_client("robin@example.com", "Robin Lee")
    ours = [book(dana, sam, now + timedelta(days=10)), book(dana, robin, now + timedelta(days=10, hours=3))]
    from practice.availability import open_slots
    slot = open_slots(ours[0], now + timedelta(days=3), now + timedelta(days=9), now)[0].starts_at
    for round_ in range(3):
        browsers, forms = [], []
        for appointment in ours:
            browser = requests.Session()
            path = link_for(Appointment.get_by_id(appointment.id)).split("?")[0]
            html = browser.get(f"{base}{path}/times/confirm?start={slot:%Y%m%dT%H%M}", timeout=30).text
            sequence = re.search(r'name="sequence"[^>]*value="(\d+)"', html).group(1)
            browsers.append(browser)
            forms.append((path, {"csrf_token": form_token(html), "start": f"{slot:%Y%m%dT%H%M}", "sequence": sequence}))
        db.close()
        ready, answers = threading.Barrier(2), [None, None]

        def press(index):
            ready.wait()
            path, data = forms[index]
            answers[index] = browsers[index].post(f"{base}{path}/times", data=data, allow_redirects=False, timeout=30)

        threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [303, 409], statuses
        loser = next(answer for answer in answers if answer.status_code == 409)
        assert "Sorry, that time was just taken. Please choose another one." in loser.text
        assert "Choose another time" in loser.text and 'class="times"' in loser.text  # the times again
        at_slot = Appointment.select().where((Appointment.starts_at == slot) & (Appointment.status == "scheduled"))
        assert at_slot.count() == 1
        # Free the time again for the next round.
        winner = at_slot.get()
        move_appointment(winner, starts_at=winner.starts_at + timedelta(days=20),
                         ends_at=winner.ends_at + timedelta(days=20))
        db.close()


# ---- the clinician's hours and the practice's rules ---------------------------------------------

def test_a_clinician_sets_their_own_hours_and_an_admin_anyones(app, dana, kim):
    clinic = app.test_client()
    clinic_sign_in(clinic, "kim@example.com")
    page = clinic.get("/clinic/hours").get_data(as_text=True)
    saved = clinic.post("/clinic/hours", data={"csrf_token": form_token(page), "monday": "09:00-12:00, 13:00-17:00",
                                               "days_off": "2026-12-24"})
    assert saved.status_code == 303
    assert "09:00-12:00, 13:00-17:00" in clinic.get("/clinic/hours").get_data(as_text=True)
    wrong = clinic.post("/clinic/hours", data={"csrf_token": form_token(page), "tuesday": "9 to 5"})
    assert wrong.status_code == 422 and "Write each range as two 24-hour times" in words(wrong)
    assert clinic.get(f"/clinic/clinicians/{dana.id}/hours").status_code == 403  # not an admin
    admin = app.test_client()
    clinic_sign_in(admin, "dana@example.com")
    theirs = admin.get(f"/clinic/clinicians/{kim.id}/hours")
    assert "Kim Park's working hours" in words(theirs) and "2026-12-24" in theirs.get_data(as_text=True)
    assert admin.get("/clinic/clinicians/999999/hours").status_code == 404


def test_the_practice_sets_its_rules_for_online_changes_in_their_own_form(app, dana):
    admin = app.test_client()
    clinic_sign_in(admin, "dana@example.com")
    page = admin.get("/clinic/settings").get_data(as_text=True)
    assert "Online changes by clients" in page
    data = {"csrf_token": form_token(page), "online_change_hours": "48", "online_change_weeks": "4",
            "online_change_approval": "approval", "buffer_minutes": "10", "phone": "+1 555 0100"}
    assert admin.post("/clinic/settings/online-changes", data=data).status_code == 303
    practice = Practice.current()
    assert (practice.online_change_hours, practice.online_change_weeks, practice.online_change_approval,
            practice.buffer_minutes, practice.phone) == (48, 4, True, 10, "+1 555 0100")
    bad = admin.post("/clinic/settings/online-changes", data=dict(data, online_change_hours="-1", phone="<b>"))
    assert bad.status_code == 422
    assert "Choose from 0 to 336 hours." in words(bad) and "Use digits, spaces" in words(bad)
    assert AuditEvent.select().where(AuditEvent.kind == "setting_changed").count() == 5


def test_the_portal_home_carries_the_link_for_a_signed_in_client(app, practice, dana, alex, smtp_server):
    from tests.conftest import continue_with, mailed_link
    appointment = book(dana, alex, START + timedelta(days=4))
    client = app.test_client()
    continue_with(client, mailed_link(app, client, smtp_server))
    home = client.get("/portal").get_data(as_text=True)
    assert unescape(link_for(appointment, via="portal")).split("?")[0] in home
    assert "Reschedule or cancel" in home


def test_the_change_link_is_kept_out_of_logs_caches_and_search_engines(app, practice, dana, alex):
    import logging
    from portico.hardening import RedactTokens
    appointment = book(dana, alex, START + timedelta(days=4))
    link = link_for(appointment)
    page = app.test_client().get(link)
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Robots-Tag"] == "noindex"
    token = link.split("/")[2].split("?")[0]
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s', (f"GET {link} HTTP/1.1", "200"), None)
    RedactTokens().filter(record)
    assert token not in record.getMessage() and "/a/…" in record.getMessage()


def test_a_pending_request_lapses_when_the_practice_moves_or_cancels_the_appointment(app, practice, dana, alex):
    Practice.update(online_change_approval=True).execute()
    appointment = book(dana, alex, START + timedelta(days=4, hours=10))
    pick(app.test_client(), link_for(appointment), START + timedelta(days=3, hours=9))
    move_appointment(appointment, starts_at=appointment.starts_at + timedelta(hours=1),
                     ends_at=appointment.ends_at + timedelta(hours=1), by=dana)
    assert OnlineChange.get().status == "lapsed"
    assert OnlineChange.pending().count() == 0  # it no longer holds the time, nor waits for an answer
    page = app.test_client().get(link_for(appointment))
    assert "You asked to move" not in words(page) and "Choose another time" in words(page)
