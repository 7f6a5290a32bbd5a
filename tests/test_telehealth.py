"""Telehealth: a join link that follows the calendar, and a video room that lets people back in."""
import base64
import calendar
import hashlib
import hmac
import html
import json
import re
from datetime import date, datetime, time, timedelta

import pytest

from practice.clients import archive_client
from practice.appointments import cancel_appointment, create_appointment, extend_appointment, local_to_utc
from practice.models import Appointment, AuditEvent, Practice, RoomSeat
from practice.telehealth import (STALE_AFTER, EntryRefused, check_entry, enter_room, find_join_link, join_url,
                                 telehealth_token)
from tests.conftest import CSRF_INPUT, clinic_sign_in, continue_with, deliver, mailed_link, text_part

SECRET = "test-secret-key"
MINUTE = 60


@pytest.fixture
def app(make_app):
    # A long-poll with nothing to hand over answers at once here: tests never wait.
    return make_app(TELEHEALTH_POLL_SECONDS=0)


def at(hour, minute=0, second=0):
    return datetime(2026, 3, 2, hour, minute, second)


@pytest.fixture
def session(app, dana, alex, traveller):
    """Dana sees Alex by video on Monday 2 March, 10:00–10:50 UTC; it is 9:00 now."""
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=alex, starts_at=at(10), ends_at=at(10, 50))
    deliver(app)  # the booking's confirmation, out of the way of the sign-in mail tests ask for
    return appointment


def link(appointment):
    return f"/t/{telehealth_token(appointment, SECRET)}"


def fresh(appointment):
    return Appointment.get_by_id(appointment.id)


def page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def csrf_of(text):
    match = CSRF_INPUT.search(text) or re.search(r'"X-CSRFToken": "([^"]+)"', text)
    return match.group(1)


def press_join(browser, path):
    """Open the join page and press Join (or send what Join would, when it is not shown)."""
    return browser.post(path, data={"csrf_token": csrf_of(page(browser.get(path)))})


class Participant:
    """A browser in the room: the room page's connection and CSRF token, and its requests."""

    def __init__(self, browser, base, room_page):
        self.browser, self.base = browser, base
        self.connection = re.search(r'data-connection="([0-9a-f]+)"', room_page).group(1)
        self.csrf = re.search(r'data-csrf-token="([^"]+)"', room_page).group(1)

    def poll(self):
        return self.browser.get(f"{self.base}/signals?connection={self.connection}")

    def send(self, kind, body="", to=None):
        return self.browser.post(f"{self.base}/signals", json={"connection": self.connection, "kind": kind,
                                                                "body": body, "to": to},
                                 headers={"X-CSRFToken": self.csrf})

    def leave(self, how=""):
        return self.browser.post(f"{self.base}/leave", data={"connection": self.connection, "how": how,
                                                              "csrf_token": self.csrf})


def enter(browser, base, join_path=None):
    """Press Join and open the room, as a person would."""
    pressed = press_join(browser, join_path or base)
    assert pressed.status_code == 303, page(pressed)
    room = browser.get(pressed.headers["Location"])
    assert room.status_code == 200, page(room)
    return Participant(browser, base, page(room))


def clinician_enters(app, appointment, email="dana@example.com"):
    browser = app.test_client()
    clinic_sign_in(browser, email)
    base = f"/clinic/appointments/{appointment.id}"
    return enter(browser, base, f"{base}/join")


# ---- the window, edge by edge --------------------------------------------------------------

def test_entry_opens_15_minutes_before_the_start(session):
    assert check_entry(session, at(9, 45)).state == "open"
    assert check_entry(session, at(9, 44, 59)).state == "not_yet"


def test_entry_closes_30_minutes_after_the_end(session):
    assert check_entry(session, at(11, 19, 59)).state == "open"
    assert check_entry(session, at(11, 20)).state == "closed"


def test_join_link_reopens_when_appointment_is_extended(app, session):
    assert check_entry(session, at(11, 25)).state == "closed"
    with app.app_context():
        extend_appointment(session, 15, now=at(11, 25))
    assert check_entry(fresh(session), at(11, 25)).state == "open"
    assert check_entry(fresh(session), at(11, 34, 59)).state == "open"
    assert check_entry(fresh(session), at(11, 35)).state == "closed"


def test_cancelled_appointment_cannot_be_entered_even_inside_its_window(app, session):
    with app.app_context():
        cancel_appointment(session, now=at(9))
    assert check_entry(fresh(session), at(10)).state == "cancelled"
    with pytest.raises(EntryRefused) as refused:
        enter_room(fresh(session), "client", "a browser", now=at(10))
    assert refused.value.reason == "cancelled"


def test_window_follows_the_practice_zone_across_a_dst_change(app, dana, alex, client, traveller):
    # London moves to summer time on Sunday 29 March 2026; the session is at 09:00 local the
    # day after, which is 08:00 UTC.
    Practice.update(timezone="Europe/London").execute()
    starts = local_to_utc(date(2026, 3, 30), time(9, 0), "Europe/London")
    assert starts == datetime(2026, 3, 30, 8, 0)
    traveller.move_to(datetime(2026, 3, 28, 9, 0))  # Saturday, still on GMT
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=alex, starts_at=starts,
                                         ends_at=starts + timedelta(minutes=50))
    assert check_entry(appointment, datetime(2026, 3, 30, 7, 44, 59)).state == "not_yet"
    assert check_entry(appointment, datetime(2026, 3, 30, 7, 45)).state == "open"
    assert check_entry(appointment, datetime(2026, 3, 30, 9, 19, 59)).state == "open"
    assert check_entry(appointment, datetime(2026, 3, 30, 9, 20)).state == "closed"
    shown = page(client.get(link(appointment)))
    assert "Mon 30 Mar 2026, 9:00 AM – 9:50 AM BST" in shown
    # 46 h 45 min of real time, though the wall clock moves 47 h 45 min across the change.
    assert "You can join from Mon 30 Mar 2026, 8:45 AM BST, in 46 hours 45 minutes." in shown


# ---- the link ---------------------------------------------------------------------------

def test_join_link_is_derived_from_the_secret_and_nonce_and_built_on_the_base_url(app, session):
    token = telehealth_token(session, SECRET)
    assert token == telehealth_token(fresh(session), SECRET)  # nothing stored: the same link every time
    assert token.startswith(f"{session.id}.") and token != telehealth_token(session, "another secret")
    with app.app_context():
        assert join_url(session) == f"http://portal.test/t/{token}"
    assert find_join_link(token, SECRET).appointment.id == session.id


def test_the_booking_email_carries_the_join_link(session, smtp_server):
    assert f"http://portal.test{link(session)}" in text_part(smtp_server.to("alex@example.com")[-1])


def tampered(token):
    last = "A" if token[-1] != "A" else "B"
    return token[:-1] + last


@pytest.mark.parametrize("make_token", [
    lambda a: tampered(telehealth_token(a, SECRET)),
    lambda a: telehealth_token(a, "another practice's secret"),
    lambda a: f"{a.id + 1}." + telehealth_token(a, SECRET).split(".")[1],
    lambda a: telehealth_token(a, SECRET).split(".")[1],
    lambda a: "x" * 43,
    lambda a: "9" * 300,
], ids=["tampered", "foreign secret", "other appointment", "no id", "junk", "too long"])
def test_a_wrong_token_gets_we_dont_recognise_this_link(client, session, make_token):
    response = client.get(f"/t/{make_token(session)}")
    assert response.status_code == 404
    assert "We don't recognise this link" in page(response)
    assert ">Join</button>" not in page(response)


def test_a_sign_in_link_is_not_a_join_link_and_a_join_link_is_not_a_sign_in_link(app, client, session,
                                                                                    smtp_server):
    sign_in_token = mailed_link(app, client, smtp_server)
    assert client.get(f"/t/{sign_in_token}").status_code == 404
    response = client.get(link(session).replace("/t/", "/s/"))
    assert response.status_code == 404 and "We don't recognise this link" in page(response)


def test_cancelling_rotates_the_nonce_and_the_old_link_says_cancelled(app, client, session):
    old = link(session)
    with app.app_context():
        cancel_appointment(session)
    assert link(fresh(session)) != old
    response = client.get(old)
    assert response.status_code == 200
    assert "This appointment was cancelled." in page(response) and ">Join</button>" not in page(response)
    assert press_join(client, old).status_code == 409


def test_link_pages_are_kept_out_of_referrers_caches_and_search_engines(client, session):
    for response in (client.get(link(session)), client.get("/t/not-a-token")):
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Robots-Tag"] == "noindex"


# ---- the join page ------------------------------------------------------------------------

def status_fragment(browser, path):
    return browser.get(path, headers={"HX-Request": "true", "HX-Trigger": "join-status"})


def test_join_page_shows_the_time_in_the_clients_zone_and_the_clinicians_name(app, client, dana, traveller):
    from practice.clients import add_client
    sam = add_client("sam@example.com", "Sam Rivera", "America/New_York")
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=sam, starts_at=at(15), ends_at=at(15, 50))
    shown = page(client.get(link(appointment)))
    assert "Video session with Dana Hale" in shown
    assert "Mon 2 Mar 2026, 10:00 AM – 10:50 AM EST" in shown


def test_before_entry_opens_a_countdown_turns_into_join_by_itself(client, session, traveller):
    response = client.get(link(session))
    assert "You can join from Mon 2 Mar 2026, 9:45 AM UTC, in 45 minutes." in page(response)
    assert 'hx-trigger="load delay:30s"' in page(response)
    assert '<button type="submit" class="join">' not in page(response)
    traveller.shift(44 * MINUTE + 50)
    fragment = status_fragment(client, link(session))
    assert "in less than a minute" in page(fragment)
    assert 'hx-trigger="load delay:10s"' in page(fragment)  # asks again the moment it opens
    assert "<h1>" not in page(fragment) and "HX-Trigger" in fragment.headers["Vary"]
    traveller.shift(10)
    assert ">Join</button>" in page(status_fragment(client, link(session)))


def test_after_the_window_the_page_says_when_it_ended_and_how_to_reach_the_practice(client, session, traveller):
    Practice.update(contact_email="office@riverside.example", name="Riverside Counselling").execute()
    traveller.move_to(at(11, 20))
    shown = page(client.get(link(session)))
    assert "This session ended at Mon 2 Mar 2026, 10:50 AM UTC." in shown
    assert "office@riverside.example" in shown and "Riverside Counselling" in shown
    assert ">Join</button>" not in shown


def test_an_ended_page_turns_back_into_join_when_the_clinician_extends(app, client, session, traveller):
    traveller.move_to(at(11, 25))
    ended = page(status_fragment(client, link(session)))
    assert "This session ended at" in ended
    assert f'hx-get="{link(session)}"' in ended  # the ended page keeps asking, so it can turn back
    assert 'hx-get=' in page(client.get(link(session)))  # the whole page as first opened, too
    with app.app_context():
        extend_appointment(session, 30)
    assert ">Join</button>" in page(status_fragment(client, link(session)))


def test_the_whole_join_page_follows_an_extension(app, client, session, traveller):
    """The appointment's times and the way back in all name the new end, on a reload and in
    what a page left open asks for, never the old end beside the new one."""
    traveller.move_to(at(10, 40))
    before = " ".join(page(client.get(link(session))).split())
    assert "Mon 2 Mar 2026, 10:00 AM – 10:50 AM UTC" in before and "until Mon 2 Mar 2026, 11:20 AM UTC" in before
    with app.app_context():
        extend_appointment(session, 30)
    for shown in (page(client.get(link(session))), page(status_fragment(client, link(session)))):
        shown = " ".join(shown.split())
        assert "Mon 2 Mar 2026, 10:00 AM – 11:20 AM UTC" in shown
        assert "this link brings you back until Mon 2 Mar 2026, 11:50 AM UTC" in shown
        assert "10:50 AM" not in shown


def test_a_page_left_open_when_the_appointment_is_cancelled_says_so_and_stops_asking(app, client, session):
    with app.app_context():
        cancel_appointment(session)
    fragment = page(status_fragment(client, link(session)))
    assert "This appointment was cancelled." in fragment and "hx-get" not in fragment


def test_opening_the_link_never_takes_a_place_in_the_room(client, session, traveller):
    traveller.move_to(at(10))
    for method in (client.get, client.head):
        assert method(link(session)).status_code == 200
    assert client.get(f"{link(session)}/room").headers["Location"] == link(session)  # no Join pressed
    assert RoomSeat.select().count() == 0


# ---- the room ---------------------------------------------------------------------------

def test_client_and_clinician_enter_and_their_messages_reach_each_other(app, session, traveller):
    traveller.move_to(at(9, 58))
    alex = enter(app.test_client(), link(session))
    assert alex.poll().json == {"messages": [], "peer": False, "open": True, "waiting": False}
    alex.send("hello")
    dana = clinician_enters(app, session)
    answer = dana.poll().json
    assert answer["peer"] is True
    assert answer["messages"] == [{"kind": "hello", "from": alex.connection, "body": ""}]
    assert dana.send("offer", '{"type": "offer", "sdp": "v=0"}', to=alex.connection).status_code == 204
    assert alex.poll().json["messages"] == [{"kind": "offer", "from": dana.connection,
                                             "body": '{"type": "offer", "sdp": "v=0"}'}]
    assert alex.poll().json["messages"] == []  # handed over once
    kinds = [e.kind for e in AuditEvent.select().where(AuditEvent.kind.startswith("telehealth_"))]
    assert kinds == ["telehealth_entered", "telehealth_entered"]


def test_signalling_is_scoped_to_the_appointment_and_the_participant(app, alex, dana, session, traveller):
    traveller.move_to(at(10, 20))
    with app.app_context():
        other = create_appointment(clinician=dana, client=alex, starts_at=at(10, 30), ends_at=at(11))
    first = enter(app.test_client(), link(session))
    second = enter(app.test_client(), link(other))
    first.send("hello")
    assert second.poll().json["messages"] == []
    stranger = app.test_client()
    assert stranger.get(f"{link(session)}/signals?connection={first.connection}").status_code == 409
    assert first.browser.get(f"{link(session)}/signals?connection=not-mine").status_code == 409
    assert first.send("nonsense").status_code == 400
    assert first.send("candidate", "x" * 40_000).status_code == 400
    no_csrf = first.browser.post(f"{link(session)}/signals", json={"connection": first.connection, "kind": "hello"})
    assert no_csrf.status_code == 400


def test_a_third_browser_with_the_link_is_told_the_session_has_its_participants(app, session, traveller):
    traveller.move_to(at(10))
    enter(app.test_client(), link(session))
    clinician_enters(app, session)
    third = press_join(app.test_client(), link(session))
    assert third.status_code == 409
    assert "This session already has its participants" in page(third)
    refusal = AuditEvent.get(AuditEvent.kind == "telehealth_refused")
    assert refusal.detail == f"appointment {session.id} as client: full"


def test_reloading_the_room_puts_the_person_back_in_the_same_room(app, session, traveller):
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))
    dana = clinician_enters(app, session)
    assert alex.leave("page_closed").status_code == 204  # what the page sends as it reloads
    assert dana.poll().json["messages"] == [{"kind": "bye", "from": alex.connection, "body": ""}]
    reloaded = Participant(alex.browser, link(session), page(alex.browser.get(f"{link(session)}/room")))
    assert reloaded.connection != alex.connection
    assert alex.poll().status_code == 409  # the old page no longer speaks for the seat
    assert reloaded.poll().status_code == 200
    kinds = [e.kind for e in AuditEvent.select().where(AuditEvent.kind.startswith("telehealth_")).order_by(AuditEvent.id)]
    assert kinds == ["telehealth_entered", "telehealth_entered", "telehealth_left", "telehealth_rejoined"]


def test_a_browser_gone_silent_frees_its_place_for_the_same_link_elsewhere(app, session, traveller):
    # The client's laptop died; they open the link on their phone.
    traveller.move_to(at(10))
    laptop = enter(app.test_client(), link(session))
    clinician_enters(app, session)
    traveller.shift(STALE_AFTER.total_seconds() + 1)
    phone = enter(app.test_client(), link(session))
    assert phone.poll().status_code == 200
    gone = laptop.poll()
    assert gone.status_code == 409 and "continues in another window" in gone.json["message"]


def test_someone_in_the_room_is_not_thrown_out_when_the_window_closes(app, session, traveller):
    traveller.move_to(at(11, 19))
    alex = enter(app.test_client(), link(session))
    dana = clinician_enters(app, session)
    traveller.move_to(at(11, 19, 40))
    for _ in range(4):  # they talk on past 11:20, the end + 30 minutes; each poll keeps their place
        traveller.shift(30)
        assert alex.send("candidate", "{}", to=dana.connection).status_code == 204
        assert dana.poll().json["open"] is False
        assert alex.poll().status_code == 200
    room = alex.browser.get(f"{link(session)}/room")  # a reload still lands in the room
    assert room.status_code == 200 and "once you leave you cannot come back in" in page(room)
    newcomer = press_join(app.test_client(), link(session))
    assert newcomer.status_code == 409 and "This session ended at" in page(newcomer)


def test_after_the_window_someone_who_left_cannot_come_back(app, session, traveller):
    traveller.move_to(at(11))
    alex = enter(app.test_client(), link(session))
    traveller.move_to(at(11, 21))
    left = alex.leave()
    assert left.headers["Location"] == f"{link(session)}?left=1"
    again = alex.browser.get(f"{link(session)}/room")
    assert again.status_code == 409 and "This session ended at" in page(again)
    assert AuditEvent.select().where(AuditEvent.kind == "telehealth_left").count() == 1


def test_leaving_inside_the_window_offers_join_again(app, session, traveller):
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))
    back = alex.browser.get(alex.leave().headers["Location"])
    assert "You have left the session." in page(back) and ">Join</button>" in page(back)


def test_cancelling_ends_the_room_for_everyone_in_it(app, session, traveller):
    traveller.move_to(at(10))
    dana = clinician_enters(app, session)
    with app.app_context():
        cancel_appointment(session)
    gone = dana.poll()
    assert gone.status_code == 410 and gone.json["message"] == "This appointment was cancelled."


def test_an_archived_clients_join_link_admits_nobody_and_says_access_has_ended(app, session, traveller):
    traveller.move_to(at(10))  # the window is open
    with app.app_context():
        archive_client(session.client)
    browser = app.test_client()
    opened = browser.get(link(session))
    assert "Your access to the portal has ended. Please contact the practice." in page(opened)
    assert ">Join</button>" not in page(opened) and "hx-get" not in page(opened)  # nothing to wait for
    pressed = browser.post(link(session), data={"csrf_token": csrf_of(page(browser.get("/sign-in")))})
    assert pressed.status_code == 403 and "Please contact the practice." in page(pressed)
    assert "portico_seat" not in pressed.headers.get("Set-Cookie", "")
    assert RoomSeat.select().count() == 0
    refused = AuditEvent.select().where(AuditEvent.kind == "telehealth_refused").order_by(AuditEvent.id.desc()).get()
    assert refused.detail.endswith(": archived")


def test_archiving_a_client_ends_their_seat_and_their_signals(app, session, traveller):
    traveller.move_to(at(10))
    alex = enter(app.test_client(), link(session))
    dana = clinician_enters(app, session)
    dana.poll()  # alex's hello
    with app.app_context():
        archive_client(session.client)
    gone = alex.send("offer", "v=0")
    assert gone.status_code == 410 and gone.json["message"] == "Your access to the portal has ended. Please contact the practice."
    assert alex.poll().status_code == 410
    back = alex.browser.get(f"{link(session)}/room")  # a reload, with the seat cookie
    assert back.status_code == 403 and "Please contact the practice." in page(back)
    told = dana.poll().json
    assert [m["kind"] for m in told["messages"]] == ["bye"] and told["peer"] is False
    assert RoomSeat.get(RoomSeat.role == "client").left_reason == "archived"
def book_at_nine(app, dana, alex):
    with app.app_context():
        return create_appointment(clinician=dana, client=alex, starts_at=at(9), ends_at=at(9, 50))


def room_page(browser, appointment):
    """Press Join with the client's link and open the room it leads to."""
    return browser.get(press_join(browser, link(appointment)).headers["Location"])


def test_the_room_offers_the_configured_ice_servers(make_app, alex, dana, traveller, monkeypatch):
    monkeypatch.setenv("PORTAL_ICE_SERVERS", '[{"urls": "stun:stun.example.org:3478"}]')
    app = make_app(TELEHEALTH_POLL_SECONDS=0)
    appointment = book_at_nine(app, dana, alex)
    browser = app.test_client()
    room = room_page(browser, appointment)
    assert "data-ice-servers='[{\"urls\": \"stun:stun.example.org:3478\"}]'" in room.get_data(as_text=True)
    assert '<script src="/static/room.js" defer></script>' in page(room)


def ice_servers_of(room) -> list[dict]:
    return json.loads(html.unescape(re.search(r"data-ice-servers='([^']*)'", room.get_data(as_text=True)).group(1)))


def coturn_password(secret: str, username: str) -> str:
    """coturn's use-auth-secret: base64 of HMAC-SHA1(static-auth-secret, username)."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


def test_each_seat_gets_turn_credentials_of_its_own_that_expire(make_app, alex, dana, traveller, monkeypatch):
    monkeypatch.setenv("PORTAL_TURN_URLS", "turn:turn.example.org:3478?transport=udp, "
                                           "turns:turn.example.org:5349?transport=tcp")
    monkeypatch.setenv("PORTAL_TURN_SECRET", "coturn-shared-secret")
    monkeypatch.setenv("PORTAL_STUN_URLS", "stun:turn.example.org:3478")
    monkeypatch.setenv("PORTAL_ICE_SERVERS", '[{"urls": "turn:old.example.org", "username": "u", "credential": "p"}]')
    app = make_app(TELEHEALTH_POLL_SECONDS=0)
    appointment = book_at_nine(app, dana, alex)
    alex_browser = app.test_client()
    alex_room = room_page(alex_browser, appointment)
    traveller.shift(90)
    dana_browser = app.test_client()
    clinic_sign_in(dana_browser, "dana@example.com")
    base = f"/clinic/appointments/{appointment.id}"
    dana_room = dana_browser.get(press_join(dana_browser, f"{base}/join").headers["Location"])

    seats = {seat.role: seat.id for seat in RoomSeat.select()}
    for room, role, entered in ((alex_room, "client", at(9)), (dana_room, "clinician", at(9, 1, 30))):
        stun, relay, static = ice_servers_of(room)
        assert stun == {"urls": ["stun:turn.example.org:3478"]}
        assert relay["urls"] == ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349?transport=tcp"]
        expiry = calendar.timegm((entered + timedelta(hours=2)).utctimetuple())  # PORTAL_TURN_TTL's default
        assert relay["username"] == f"{expiry}:{seats[role]}"
        assert relay["credential"] == coturn_password("coturn-shared-secret", relay["username"])
        assert static == {"urls": "turn:old.example.org", "username": "u", "credential": "p"}  # still offered
    assert ice_servers_of(alex_room)[1]["credential"] != ice_servers_of(dana_room)[1]["credential"]

    # A reload (or a rejoin) is minted afresh, from then.
    traveller.shift(600)
    again = ice_servers_of(alex_browser.get(f"{link(appointment)}/room"))[1]
    assert again["username"] == f"{calendar.timegm((at(9, 11, 30) + timedelta(hours=2)).utctimetuple())}:{seats['client']}"
    assert "coturn-shared-secret" not in alex_room.get_data(as_text=True)


def test_the_turn_lifetime_is_set_in_seconds_and_no_secret_means_no_turn(make_app, alex, dana, traveller,
                                                                          monkeypatch):
    monkeypatch.setenv("PORTAL_TURN_URLS", "turn:turn.example.org:3478")
    monkeypatch.setenv("PORTAL_TURN_TTL", "600")
    monkeypatch.setenv("PORTAL_TURN_SECRET", "s")
    app = make_app(TELEHEALTH_POLL_SECONDS=0)
    appointment = book_at_nine(app, dana, alex)
    browser = app.test_client()
    room = room_page(browser, appointment)
    assert ice_servers_of(room)[0]["username"].startswith(f"{calendar.timegm((at(9) + timedelta(minutes=10)).utctimetuple())}:")
    monkeypatch.delenv("PORTAL_TURN_SECRET")
    app = make_app(TELEHEALTH_POLL_SECONDS=0)
    traveller.shift(STALE_AFTER.total_seconds() + 1)  # the first browser's seat is free again
    browser = app.test_client()
    room = room_page(browser, appointment)
    assert ice_servers_of(room) == []  # TURN URLs without a secret would only fail in the browser


# ---- the clinician's way in -------------------------------------------------------------------

def test_clinician_joins_their_own_appointment_from_the_calendar(app, session, traveller):
    traveller.move_to(at(10))
    browser = app.test_client()
    clinic_sign_in(browser, "dana@example.com")
    shown = page(browser.get(f"/clinic/appointments/{session.id}/join"))
    assert "Video session with Alex Morgan" in shown and ">Join</button>" in shown
    assert f"http://portal.test{link(session)}" in shown  # the client's link, to send again if lost


def test_only_the_appointments_clinician_or_an_admin_may_join_it(app, client, kim, session, traveller):
    path = f"/clinic/appointments/{session.id}/join"
    assert client.get(path).headers["Location"] == "/clinic/sign-in"
    clinic_sign_in(client, "kim@example.com")
    assert client.get(path).status_code == 404
    assert client.get("/clinic/appointments/99999/join").status_code == 404
    admin = app.test_client()
    clinic_sign_in(admin, "dana@example.com")
    assert admin.get(path).status_code == 200


def test_a_client_session_never_reaches_the_clinicians_way_in(app, client, alex, session, smtp_server):
    continue_with(client, mailed_link(app, client, smtp_server))
    assert client.get(f"/clinic/appointments/{session.id}/join").status_code == 403


# ---- the portal home ----------------------------------------------------------------------------

def test_portal_home_lists_upcoming_telehealth_sessions_with_their_join_link(app, alex, dana, session, smtp_server,
                                                                             traveller):
    with app.app_context():
        create_appointment(clinician=dana, client=alex, starts_at=at(14), ends_at=at(14, 50), kind="in_person")
    deliver(app)

    def home_at(moment):
        traveller.move_to(moment)
        browser = app.test_client()
        continue_with(browser, mailed_link(app, browser, smtp_server))
        return page(browser.get("/portal"))

    home = home_at(at(9))
    assert "Mon 2 Mar 2026, 10:00 AM – 10:50 AM UTC" in home and "Telehealth with Dana Hale" in home
    assert f'href="{link(session)}"' in home and "You can join from Mon 2 Mar 2026, 9:45 AM UTC" in home
    assert "In person with Dana Hale" in home
    assert "Join video session" in home_at(at(9, 50))
    assert link(session) in home_at(at(11, 19))  # back in after a dropped connection, from here too
    assert link(session) not in home_at(at(11, 20))  # the window has closed
