""""New join link" (the old link's page says it was replaced) and the video waiting room
(the clinician lets the client in; someone let in once comes back without waiting)."""
import re

import pytest

from practice.appointments import cancel_appointment
from practice.models import AuditEvent, Email, JoinLinkNonce, Practice
from practice.telehealth import find_join_link, replace_join_link, telehealth_token
from tests.conftest import clinic_sign_in, deliver, text_part
from tests.test_telehealth import (SECRET, Participant, app, at, clinician_enters, csrf_of, enter, fresh,  # noqa: F401
                                   link, page, press_join, session)


def ics_field(message, name):
    ics = next(part for part in message.walk() if part.get_content_type() == "text/calendar")
    return re.search(rf"^{name}:(.*)$", ics.get_content(), re.M).group(1).strip()


def signed_in_dana(app):
    browser = app.test_client()
    clinic_sign_in(browser, "dana@example.com")
    return browser


def press_new_join_link(browser, appointment):
    edit = f"/clinic/appointments/{appointment.id}/edit"
    return browser.post(f"/clinic/appointments/{appointment.id}/new-join-link",
                        data={"csrf_token": csrf_of(page(browser.get(edit)))})


# ---- "New join link" ------------------------------------------------------------------------

def test_new_join_link_emails_the_client_the_new_link_and_the_old_page_says_it_was_replaced(
        app, client, session, smtp_server, traveller):
    traveller.move_to(at(9, 2))
    old = link(session)
    booking = smtp_server.to("alex@example.com")[-1]
    dana = signed_in_dana(app)

    pressed = press_new_join_link(dana, session)

    assert pressed.status_code == 303
    assert "New join link emailed to Alex Morgan." in page(dana.get(pressed.headers["Location"]))
    new = link(fresh(session))
    assert new != old
    assert deliver(app) == 1
    mail = smtp_server.to("alex@example.com")[-1]
    assert mail["Subject"] == "New video link: your appointment on Mon 2 Mar at 10:00 AM"
    assert f"http://portal.test{new}" in text_part(mail) and old not in text_part(mail)
    assert "The link in earlier emails no longer works" in text_part(mail)
    # The calendar entry is the same one, updated: same UID, a higher SEQUENCE.
    assert ics_field(mail, "UID") == ics_field(booking, "UID")
    assert int(ics_field(mail, "SEQUENCE")) == int(ics_field(booking, "SEQUENCE")) + 1
    replaced = client.get(old)
    assert replaced.status_code == 410
    assert ("This link was replaced by a newer one on Mon 2 Mar at 9:02 AM. Use the link in the newest email "
            "from Portico, or ask for a new one.") in " ".join(page(replaced).split())
    assert "recognise" not in page(replaced) and ">Join</button>" not in page(replaced)
    assert client.get(f"{old}/room").status_code == 410
    assert client.get(f"{old}/signals?connection=x").json["gone"] == "replaced"
    traveller.move_to(at(10))
    assert ">Join</button>" in page(client.get(new))
    enter(app.test_client(), new)  # the new link opens the room
    (event,) = AuditEvent.select().where(AuditEvent.kind == "join_link_replaced")
    assert (event.clinician.name, event.client.name) == ("Dana Hale", "Alex Morgan")


def test_a_join_page_left_open_learns_its_link_was_replaced(app, client, session, traveller):
    old = link(session)
    with app.app_context():
        replace_join_link(session, now=at(9, 5))
    fragment = client.get(old, headers={"HX-Request": "true", "HX-Trigger": "join-status"})
    assert "This link was replaced by a newer one on Mon 2 Mar at 9:05 AM." in " ".join(page(fragment).split())
    assert "hx-get" not in page(fragment)  # nothing will bring it back


def test_a_replaced_link_is_told_from_one_that_never_existed_without_storing_tokens(app, session, traveller):
    old_token = telehealth_token(session, SECRET)
    with app.app_context():
        replace_join_link(session, now=at(9, 5))
        replace_join_link(fresh(session), now=at(9, 6))
    assert find_join_link(old_token, SECRET).replaced_at == at(9, 5)
    never = telehealth_token(fresh(session), "another secret")
    assert find_join_link(never, SECRET) is None
    stored = " ".join(f"{row.nonce} {row.retired_because}" for row in JoinLinkNonce.select())
    assert old_token.split(".")[1] not in stored  # only nonces: the links are derived again to compare
    assert [row.retired_because for row in JoinLinkNonce.select().order_by(JoinLinkNonce.id)] == [
        "new_join_link", "new_join_link", None]


def test_a_replaced_link_of_an_appointment_since_cancelled_says_cancelled(app, client, session):
    old = link(session)
    with app.app_context():
        replace_join_link(session, now=at(9, 5))
        cancel_appointment(fresh(session), now=at(9, 10))
    assert "This appointment was cancelled." in page(client.get(old))


def test_new_join_link_lets_go_of_whoever_is_in_the_room_with_the_old_one(app, session, traveller):
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))
    dana = clinician_enters(app, session)
    assert press_new_join_link(dana.browser, session).status_code == 303
    gone = alex.poll()
    assert gone.status_code == 410 and gone.json["gone"] == "replaced"
    assert [m["kind"] for m in dana.poll().json["messages"]] == ["bye"]
    enter(app.test_client(), link(fresh(session)))  # the new link's holder gets the seat at once


@pytest.mark.parametrize("change", ["cancel", "in_person"])
def test_no_new_join_link_for_a_cancelled_or_in_person_appointment(app, session, change):
    if change == "cancel":
        with app.app_context():
            cancel_appointment(session)
    else:
        type(session).update(kind="in_person").where(type(session).id == session.id).execute()
    dana = signed_in_dana(app)
    edit = page(dana.get(f"/clinic/appointments/{session.id}/edit"))
    assert "New join link" not in edit
    before = Email.select().count()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page(dana.get("/clinic/calendar"))).group(1)
    answer = dana.post(f"/clinic/appointments/{session.id}/new-join-link", data={"csrf_token": token})
    assert answer.status_code == 303 and Email.select().count() == before
    assert fresh(session).nonce == session.nonce or change == "cancel"


def test_new_join_link_needs_the_forms_csrf_token(app, session):
    dana = signed_in_dana(app)
    assert dana.post(f"/clinic/appointments/{session.id}/new-join-link").status_code == 400
    assert fresh(session).nonce == session.nonce


# ---- the waiting room -------------------------------------------------------------------------

@pytest.fixture
def waiting_room(app):
    Practice.update(room_entry="waiting_room").execute()


def waiting_fragment(browser, appointment):
    return page(browser.get(f"/clinic/appointments/{appointment.id}/waiting"))


def let_in(browser, appointment, csrf):
    return browser.post(f"/clinic/appointments/{appointment.id}/let-in", data={"csrf_token": csrf},
                        headers={"HX-Request": "true", "HX-Trigger": f"let-in-{appointment.id}"})


def test_the_client_waits_until_the_clinician_lets_them_in(app, session, traveller, waiting_room):
    traveller.move_to(at(9, 58))
    alex_browser = app.test_client()
    pressed = press_join(alex_browser, link(session))
    room = page(alex_browser.get(pressed.headers["Location"]))
    assert 'data-waiting="true"' in room and 'data-waiting-text="Dana Hale will let you in shortly."' in room
    alex = Participant(alex_browser, link(session), room)
    assert alex.poll().json["waiting"] is True
    assert alex.send("hello").status_code == 403  # nothing passes before being let in
    traveller.shift(20)  # the waiting page keeps polling, so it stays "here"
    dana = clinician_enters(app, session)
    assert dana.send("hello").status_code == 204
    assert dana.poll().json["peer"] is False  # a waiting client is not in the room yet
    shown = waiting_fragment(dana.browser, session)
    assert "Alex Morgan is waiting (since 9:58 AM)." in shown and ">Let in</button>" in shown
    assert 'hx-trigger="every 5s"' in shown
    join_page = page(dana.browser.get(f"/clinic/appointments/{session.id}/join"))
    assert f'id="waiting-{session.id}"' in join_page  # the join page, the room and the calendar load it
    assert f'id="waiting-{session.id}"' in page(dana.browser.get("/clinic/calendar?date=2026-03-02"))

    answer = let_in(dana.browser, session, dana.csrf)

    assert "Alex Morgan is in the session." in page(answer)
    polled = alex.poll().json
    assert polled["waiting"] is False
    assert [m["kind"] for m in polled["messages"]] == ["hello"]  # the clinician's, kept for this moment
    assert alex.send("hello").status_code == 204
    assert dana.poll().json["peer"] is True
    (event,) = AuditEvent.select().where(AuditEvent.kind == "telehealth_let_in")
    assert event.clinician.name == "Dana Hale"


def test_someone_let_in_once_comes_back_without_waiting(app, session, traveller, waiting_room):
    traveller.move_to(at(10))
    dana = clinician_enters(app, session)
    alex = enter(app.test_client(), link(session))
    let_in(dana.browser, session, dana.csrf)
    assert alex.leave().status_code == 303
    traveller.move_to(at(10, 30))
    again = enter(alex.browser, link(session))
    assert again.poll().json["waiting"] is False
    again.leave()
    on_a_phone = enter(app.test_client(), link(session))  # the same link elsewhere, after leaving there
    assert on_a_phone.poll().json["waiting"] is False


def test_without_a_waiting_room_both_connect_as_before(app, session, traveller):
    assert Practice.current().room_entry == "together"  # today's behaviour, and the default
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))
    assert alex.poll().json["waiting"] is False and alex.send("hello").status_code == 204
    dana = clinician_enters(app, session)
    assert "is waiting" not in waiting_fragment(dana.browser, session)


def test_let_in_needs_csrf_and_the_appointments_clinician(app, session, kim, traveller, waiting_room):
    traveller.move_to(at(10))
    enter(app.test_client(), link(session))
    dana = signed_in_dana(app)
    assert dana.post(f"/clinic/appointments/{session.id}/let-in").status_code == 400
    kim_browser = app.test_client()
    clinic_sign_in(kim_browser, "kim@example.com")
    assert kim_browser.get(f"/clinic/appointments/{session.id}/waiting").status_code == 404
    assert "Alex Morgan is waiting" in waiting_fragment(dana, session)


def test_the_setting_is_chosen_on_the_settings_page_and_audited(app, dana):
    browser = signed_in_dana(app)
    form = page(browser.get("/clinic/settings"))
    assert re.search(r'<input checked [^>]*value="together"', form)  # what the practice has today
    fields = {name: value for name, value in re.findall(r'name="([a-z_]+)"[^>]*value="([^"]*)"', form)}
    # A browser sends no unchecked checkbox: "Every clinician must use a second factor" is off here.
    assert not re.search(r'<input checked[^>]*name="require_second_factor"', form)
    del fields["require_second_factor"]
    fields.update(csrf_token=csrf_of(form), timezone="UTC", room_entry="waiting_room", name="Portico",
                  contact_email="office@example.com", reminder_offsets="72, 24")
    saved = browser.post("/clinic/settings", data=fields)
    assert saved.status_code == 303, page(saved)
    assert Practice.current().room_entry == "waiting_room"
    assert AuditEvent.select().where(AuditEvent.detail == "room_entry: together -> waiting_room").count() == 1
    fields["room_entry"] = "anyone"
    refused = browser.post("/clinic/settings", data=fields)
    assert refused.status_code == 422 and "Not a valid choice" in page(refused)


def test_turning_the_waiting_room_off_lets_the_waiting_in_and_turning_it_on_keeps_those_in(
        app, session, traveller):
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))  # "together": in at once
    Practice.update(room_entry="waiting_room").execute()
    assert alex.poll().json["waiting"] is False  # already in: not sent out to wait
    with app.app_context():
        replace_join_link(session, now=at(10, 1))  # the new link's holder waits again
    newcomer = enter(app.test_client(), link(fresh(session)))
    assert newcomer.poll().json["waiting"] is True
    Practice.update(room_entry="together").execute()
    assert newcomer.poll().json["waiting"] is False


def test_a_waiting_client_hears_only_from_the_clinicians_current_page(app, session, traveller, waiting_room):
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))
    dana = clinician_enters(app, session)
    dana.send("hello")
    reloaded = enter(dana.browser, f"/clinic/appointments/{session.id}", f"/clinic/appointments/{session.id}/join")
    reloaded.send("hello")
    let_in(dana.browser, session, reloaded.csrf)
    assert alex.poll().json["messages"] == [{"kind": "hello", "from": reloaded.connection, "body": ""}]


def test_let_in_without_javascript_goes_back_to_the_page_it_was_pressed_on(app, session, traveller, waiting_room):
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))
    dana = signed_in_dana(app)
    edit = page(dana.get(f"/clinic/appointments/{session.id}/edit"))
    assert f'id="waiting-{session.id}"' in edit
    pressed = dana.post(f"/clinic/appointments/{session.id}/let-in",
                        data={"csrf_token": csrf_of(edit), "back": "appointment"})
    assert pressed.status_code == 303 and pressed.headers["Location"] == f"/clinic/appointments/{session.id}/edit"
    assert alex.poll().json["waiting"] is False
    elsewhere = dana.post(f"/clinic/appointments/{session.id}/let-in",
                          data={"csrf_token": csrf_of(edit), "back": "https://evil.example/"})
    assert elsewhere.headers["Location"] == f"/clinic/appointments/{session.id}/join"  # a name, never a URL
