"""Clinician sign-in, first-run setup, settings, and who may see what under /clinic/."""
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from practice.models import AuditEvent, Clinician, ClinicianSignInFailure, Practice, Session
from tests.conftest import PASSWORD, clinic_csrf, clinician, clinic_sign_in, continue_with, csrf_token, mailed_link

pytestmark = pytest.mark.usefixtures("traveller")

SETUP = {"practice_name": "Riverside Counselling", "timezone": "America/New_York",
         "contact_email": "Office@Riverside.example", "name": "Dana Hale", "email": "dana@example.com",
         "password": PASSWORD, "confirm": PASSWORD}


def test_first_run_offers_setup_that_names_the_practice_and_creates_an_admin(client):
    assert client.get("/clinic/").headers["Location"] == "/clinic/setup"
    response = client.post("/clinic/setup", data=dict(SETUP, csrf_token=csrf_token(client, "/clinic/setup")))
    assert response.status_code == 303
    practice = Practice.current()
    assert (practice.name, practice.timezone, practice.contact_email) == (
        "Riverside Counselling", "America/New_York", "office@riverside.example")
    dana = Clinician.get()
    assert dana.is_admin and dana.email == "dana@example.com"
    # Signed in straight away, and a new practice requires a second factor: the admin sets
    # theirs up before the calendar opens (tests/test_second_factor.py walks through it).
    assert practice.require_second_factor
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/second-factor/set-up"
    assert "Set up a second factor" in client.get("/clinic/second-factor/set-up").get_data(as_text=True)


def test_setup_page_is_gone_once_a_clinician_exists(client, dana):
    assert client.get("/clinic/setup").status_code == 404
    assert client.get("/clinic/").headers["Location"] == "/clinic/sign-in"


def test_setup_has_a_single_winner_when_twenty_browsers_submit_at_once(app):
    """The database decides: whoever's transaction claims the unset practice first creates
    the admin; the others are sent to the sign-in page."""
    browsers = [app.test_client() for _ in range(20)]
    forms = [dict(SETUP, email=f"admin{n}@example.com", csrf_token=csrf_token(browser, "/clinic/setup"))
             for n, browser in enumerate(browsers)]
    start = threading.Barrier(len(browsers))

    def submit(browser, form):
        start.wait()
        return browser.post("/clinic/setup", data=form)

    with ThreadPoolExecutor(len(browsers)) as pool:
        answers = list(pool.map(submit, browsers, forms))
    assert Clinician.select().count() == 1 and Clinician.get().is_admin
    places = sorted((answer.status_code, answer.headers.get("Location")) for answer in answers)
    assert places == [(303, "/clinic/calendar")] + [(303, "/clinic/sign-in")] * 19
    loser = browsers[[a.headers["Location"] for a in answers].index("/clinic/sign-in")]
    page = loser.get("/clinic/sign-in").get_data(as_text=True)
    assert "This practice is already set up: sign in with your account." in page
    assert AuditEvent.select().where(AuditEvent.kind == "practice_set_up").count() == 1


def test_the_clinicians_page_lists_everyone_with_role_and_last_sign_in(client, dana, kim, traveller):
    clinic_sign_in(client, "kim@example.com")
    client.post("/clinic/sign-out", data={"csrf_token": clinic_csrf(client)})
    traveller.shift(3600)
    clinic_sign_in(client, "dana@example.com")
    calendar = client.get("/clinic/calendar").get_data(as_text=True)
    assert 'href="/clinic/clinicians"' in calendar  # in the clinic navigation
    page = client.get("/clinic/clinicians").get_data(as_text=True)
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)[1:]
    cells = [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
             for row in rows]
    assert cells == [["Dana Hale", "dana@example.com", "Admin", "Mon 2 Mar 2026, 10:00 AM UTC", "None", "Set Dana Hale's hours"],
                     ["Kim Park", "kim@example.com", "Clinician", "Mon 2 Mar 2026, 9:00 AM UTC", "None", "Set Kim Park's hours"]]


def test_the_clinicians_page_is_for_admins_only(client, dana, kim):
    clinic_sign_in(client, "kim@example.com")
    assert client.get("/clinic/clinicians").status_code == 403
    assert 'href="/clinic/clinicians"' not in client.get("/clinic/calendar").get_data(as_text=True)


@pytest.mark.parametrize("change, message", [
    ({"practice_name": ""}, "Give the practice a name."),
    ({"contact_email": "nope"}, "That is not an email address."),
    ({"password": "short", "confirm": "short"}, "Use at least 12 characters."),
    ({"confirm": "something else entirely"}, "The two passwords differ."),
    ({"timezone": "Mars/Olympus"}, "Not a valid choice"),
])
def test_setup_validates_each_field_with_a_clear_message(client, change, message):
    response = client.post("/clinic/setup", data=dict(SETUP, **change, csrf_token=csrf_token(client, "/clinic/setup")))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert Clinician.select().count() == 0


def test_clinician_signs_in_with_email_and_password(client, dana):
    response = clinic_sign_in(client, "Dana@Example.com")
    assert (response.status_code, response.headers["Location"]) == (303, "/clinic/calendar")
    assert Session.get().clinician_id == dana.id


def test_wrong_password_gets_a_clear_message_and_is_audited(client, dana):
    response = clinic_sign_in(client, "dana@example.com", "wrong password here")
    assert response.status_code == 422
    assert "That email and password do not match" in response.get_data(as_text=True)
    assert AuditEvent.get(AuditEvent.kind == "clinician_sign_in_failed").detail == "wrong password"
    unknown = clinic_sign_in(client, "nobody@example.com", "wrong password here")
    assert "That email and password do not match" in unknown.get_data(as_text=True)


def sign_in_from(client, ip, email, password=PASSWORD):
    """clinic_sign_in from another network address."""
    token = csrf_token(client, "/clinic/sign-in")
    return client.post("/clinic/sign-in", data={"email": email, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": ip})


def test_wrong_passwords_from_elsewhere_never_lock_the_clinician_out(app, dana):
    for n in range(5):
        assert sign_in_from(app.test_client(), f"203.0.113.{n}", "dana@example.com", f"guess {n}").status_code == 422
    response = sign_in_from(app.test_client(), "198.51.100.7", "dana@example.com")
    assert (response.status_code, response.headers["Location"]) == (303, "/clinic/calendar")


def test_only_failed_sign_ins_count_toward_the_account_limit(app, dana):
    statuses = [clinic_sign_in(app.test_client(), "dana@example.com").status_code for _ in range(8)]
    assert statuses == [303] * 8


@pytest.mark.parametrize("address", ["dana@example.com", "nobody@example.com"])
def test_failures_from_one_address_wait_a_delay_that_doubles(make_app, address, traveller):
    app = make_app(CLINIC_SIGN_IN_IP_LIMIT="100 per minute")
    clinician("dana@example.com", "Dana Hale", is_admin=True)
    attacker = app.test_client()

    def guess(password="a wrong guess"):
        response = sign_in_from(attacker, "203.0.113.66", address, password)
        return response.status_code, response.get_data(as_text=True)

    assert [guess()[0] for _ in range(5)] == [422] * 5  # five free tries
    for wait in (1, 2, 4, 8):
        status, page = guess(PASSWORD)  # even the right password is not checked while it waits
        assert status == 429
        assert f"Too many failed sign-ins with this address. Try again in {wait} second" in page
        traveller.shift(wait)
        assert guess()[0] == 422
    assert ClinicianSignInFailure.select().where(ClinicianSignInFailure.email == address).count() == 9


def test_failed_sign_ins_are_shown_to_the_clinician_when_they_next_sign_in(app, client, dana, traveller):
    clinic_sign_in(client, "dana@example.com")
    client.post("/clinic/sign-out", data={"csrf_token": clinic_csrf(client)})
    traveller.shift(3600)
    for n in range(3):
        sign_in_from(app.test_client(), "203.0.113.9", "dana@example.com", f"guess {n}")
        traveller.shift(60)
    signed_in = clinic_sign_in(client, "dana@example.com")
    calendar = client.get(signed_in.headers["Location"]).get_data(as_text=True)
    assert ("3 failed sign-in attempts since your last sign-in, the latest Mon 2 Mar 2026, 10:02 AM UTC "
            "from 203.0.113.9.") in calendar
    client.post("/clinic/sign-out", data={"csrf_token": clinic_csrf(client)})
    clinic_sign_in(client, "dana@example.com")
    assert "failed sign-in" not in client.get("/clinic/calendar").get_data(as_text=True)


def test_clinician_session_times_out_after_30_idle_minutes(client, dana, traveller):
    clinic_sign_in(client, "dana@example.com")
    traveller.shift(29 * 60)
    assert client.get("/clinic/calendar").status_code == 200
    traveller.shift(30 * 60)
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/sign-in"
    assert "30 minutes without activity" in client.get("/clinic/sign-in").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/clinic/calendar", "/clinic/clients", "/clinic/settings"])
def test_nobody_signed_in_is_sent_to_the_clinician_sign_in(client, path):
    response = client.get(path)
    assert response.headers["Location"] == "/clinic/sign-in"
    htmx = client.get(path, headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"] == "/clinic/sign-in"


@pytest.mark.parametrize("path", ["/clinic/calendar", "/clinic/clients", "/clinic/settings"])
def test_a_client_session_never_reaches_the_clinic(app, client, alex, smtp_server, path):
    continue_with(client, mailed_link(app, client, smtp_server))
    response = client.get(path)
    assert response.status_code == 403
    assert "Alex" not in response.get_data(as_text=True)


def test_a_clinician_session_is_not_a_client_session(client, dana):
    clinic_sign_in(client, "dana@example.com")
    assert client.get("/portal").status_code == 403


def test_settings_are_for_admins_only(client, kim):
    clinic_sign_in(client, "kim@example.com")
    assert client.get("/clinic/settings").status_code == 403


SETTINGS = {"name": "Riverside", "timezone": "Europe/London", "contact_email": "office@riverside.example",
            "sign_in_link_hours": "1", "invitation_link_hours": "48", "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:30", "client_idle_minutes": "20", "telehealth_grace_minutes": "45",
            "reminder_offsets": "24, 72, 2", "clinician_idle_minutes": "45", "room_entry": "together"}


def test_admin_changes_settings_and_each_change_is_audited(client, dana):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/settings", data=dict(SETTINGS, csrf_token=clinic_csrf(client)))
    assert response.status_code == 303
    practice = Practice.current()
    assert practice.sign_in_link_minutes == 60 and practice.client_idle_minutes == 20
    assert practice.reminder_offsets == "72,24,2" and practice.reminder_offset_hours == [72, 24, 2]
    assert practice.clinician_idle_minutes == 45
    details = [e.detail for e in AuditEvent.select().where(AuditEvent.kind == "setting_changed")]
    assert "sign_in_link_minutes: 1440 -> 60" in details and "clinician_idle_minutes: 30 -> 45" in details
    assert len(details) == 11
    assert "Saved (11 changed)." in client.get("/clinic/settings").get_data(as_text=True)


@pytest.mark.parametrize("field, value, message", [
    ("sign_in_link_hours", "0.2", "Choose from 0.25 to 72 hours."),
    ("sign_in_link_hours", "72.1", "Choose from 0.25 to 72 hours."),
    ("sign_in_link_hours", "NaN", "Enter the hours as a number, like 24 or 1.5."),
    ("sign_in_link_hours", "1e999999", "Enter the hours as a number, like 24 or 1.5."),
    ("invitation_link_hours", "169", "Choose from 1 to 168 hours."),
    ("client_idle_minutes", "4", "Choose from 5 to 60 minutes."),
    ("telehealth_grace_minutes", "121", "Choose from 0 to 120 minutes."),
    ("quiet_hours_start", "25:00", "Use a 24-hour time like 21:00."),
    ("reminder_offsets", "72, tomorrow", "Use whole hours separated by commas"),
    ("reminder_offsets", "0", "Each reminder must be from 1 to 336 hours"),
    ("contact_email", "office", "That is not an email address."),
    ("sign_in_link_hours", "ten", "Enter the hours as a number, like 24 or 1.5."),
    ("sign_in_link_hours", "", "Enter a number of hours."),
    ("clinician_idle_minutes", "4", "Choose from 5 to 240 minutes."),
    ("clinician_idle_minutes", "241", "Choose from 5 to 240 minutes."),
    ("clinician_idle_minutes", "ten", "Not a valid integer value."),
    ("clinician_idle_minutes", "", "Enter a number of minutes."),
    ("client_idle_minutes", "9" * 400, "Choose from 5 to 60 minutes."),  # not an OverflowError
])
def test_each_setting_is_validated_with_a_message_beside_it(client, dana, field, value, message):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/settings", data=dict(SETTINGS, **{field: value}, csrf_token=clinic_csrf(client)))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    practice = Practice.current()
    assert (practice.name, practice.clinician_idle_minutes) == ("Portico", 30)  # nothing saved


def test_zero_grace_minutes_is_a_valid_setting(client, dana):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/settings", data=dict(SETTINGS, telehealth_grace_minutes="0",
                                                         csrf_token=clinic_csrf(client)))
    assert response.status_code == 303 and Practice.current().telehealth_grace_minutes == 0


def test_clinician_idle_timeout_follows_the_practice_setting(client, dana, traveller):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/settings", data=dict(SETTINGS, clinician_idle_minutes="10",
                                                         csrf_token=clinic_csrf(client)))
    assert response.status_code == 303 and Practice.current().clinician_idle_minutes == 10
    traveller.shift(9 * 60)
    assert client.get("/clinic/calendar").status_code == 200  # idle 9 minutes: still signed in
    traveller.shift(11 * 60)
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/sign-in"
    assert Session.get().end_reason == "idle"
    page = client.get("/clinic/sign-in").get_data(as_text=True)
    assert "signed out after 10 minutes without activity" in page and "30 minutes" not in page


def test_only_an_admin_can_change_the_clinician_idle_timeout(app, dana, kim):
    admin = app.test_client()
    clinic_sign_in(admin, "dana@example.com")
    assert 'name="clinician_idle_minutes"' in admin.get("/clinic/settings").get_data(as_text=True)
    other = app.test_client()
    clinic_sign_in(other, "kim@example.com")
    response = other.post("/clinic/settings", data=dict(SETTINGS, clinician_idle_minutes="10",
                                                        csrf_token=clinic_csrf(other)))
    assert response.status_code == 403
    assert Practice.current().clinician_idle_minutes == 30
    assert not AuditEvent.select().where(AuditEvent.kind == "setting_changed").exists()


@pytest.mark.parametrize("field, value", [
    ("name", "Riverside\r\nBcc: everyone@example.com"), ("name", "Riverside\n"), ("name", "River\u2028side"),
    ("name", "River\x07side"), ("contact_email", "office@riverside.example\n"),
])
def test_a_practice_name_or_address_with_a_line_break_is_refused_so_sign_in_mail_keeps_going(
        app, client, dana, alex, smtp_server, field, value):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/settings", data=dict(SETTINGS, **{field: value}, csrf_token=clinic_csrf(client)))
    assert response.status_code == 422
    assert "no line breaks, tabs or other control characters" in response.get_data(as_text=True)
    assert not AuditEvent.select().where(AuditEvent.kind == "setting_changed").exists()  # nothing saved
    assert Practice.current().name == "Portico"
    assert mailed_link(app, app.test_client(), smtp_server)  # sign-in mail still leaves


def test_clinician_sign_out_clears_the_session_cookie(client, dana):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/sign-out", data={"csrf_token": clinic_csrf(client)})
    assert response.status_code == 303
    assert "portico=;" in response.headers.get("Set-Cookie", "")
    assert client.get_cookie("portico") is None
    assert "You have signed out." in client.get("/clinic/sign-in").get_data(as_text=True)
