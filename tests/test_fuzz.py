"""Every form and every URL parameter, fuzzed with hypothesis over the test client: never a
500, never a stack trace, and a refused submission saves nothing.

Forms are sent with a valid CSRF token (CSRF refusals are test_hardening's), so hostile values
reach the views: very long strings, unicode, NULs, numbers out of range, impossible dates.
Exceptions propagate in TESTING mode, so a 500 shows up here as the exception itself."""
import io
import json
import re
from datetime import timedelta
from urllib.parse import quote

import pyotp
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from werkzeug.security import generate_password_hash

from portal import create_app
from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clock import utcnow
from practice.documents import share_documents
from practice.feeds import feed_token
from practice.links import issue_link
from practice.models import (ALL_MODELS, Appointment, Client, Clinician, DocumentShare, DocumentTemplate,
                             DocumentVersion, Email, Link, Practice, RoomSignal, SchemaVersion, Session,
                             SignInRequest, create_schema, db)
from practice.sessions import start_session
from practice.telehealth import telehealth_token
from tests.conftest import CSRF_INPUT, PASSWORD, _database_url

FUZZ = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
KEY = b"test-secret-key"

# Values that have broken web apps before: NULs, control characters, lone combining marks,
# right-to-left overrides, other scripts' digits, numbers past every integer type, dates
# past the calendar's ends, markup, SQL, format strings, and sheer length.
HOSTILE = st.sampled_from([
    "", " ", "\x00", "a\x00b", "alex@example.com\x00", "\t\r\n", "\x1b[31m", "\u0301", "\u202eevil", "\ufeff",
    "x" * 5000, "y" * 100_000, "9" * 400, "-1", "0", "2147483648", "9223372036854775808", "1e309", "NaN",
    "inf", "-0", "0x10", "１２", "١٢٣٤٥٦", "²", "9999-12-31", "0001-01-01", "0000-00-00", "2026-02-30",
    "2026-13-01", "+10000-01-01", "2026-03-29", "24:00", "23:60", "-01:00", "09:30\n", "٠٩:٣٠", "25:99:99",
    "<script>alert(1)</script>", "\" onmouseover=\"x", "' OR 1=1 --", "%s%n{0}{}", "../../etc/passwd",
    "🙂" * 50, "Ω≈ç√∫", "a@b", "@", "a" * 300 + "@example.com", "é@é.é", "Mars/Olympus", "UTC\x00",
    "../../../", "1,2,3,4,5,6,7", "999,1", "y", "on", "true", "[]", "{}",
])
TEXT = st.text(max_size=80)
VALUE = st.one_of(HOSTILE, TEXT, st.integers().map(str))


def dates():
    return st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}")


def times():
    return st.times().map(lambda t: t.strftime("%H:%M"))


# ---- the app, its people, and a snapshot of what is stored --------------------------------

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_app(request, tmp_path_factory):
    """One app per backend for the whole module (building one compiles every route, which is
    slow); each test empties its tables and seeds them again."""
    url = _database_url(request.param, tmp_path_factory.mktemp("fuzz"), request)
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret-key", "DATABASE_URL": url,
                      "PORTAL_BASE_URL": "http://portal.test", "MAIL_SERVER": None, "PORTAL_SCHEDULER": "off",
                      "RATELIMIT_ENABLED": False, "TELEHEALTH_POLL_SECONDS": 0,
                      "TRUSTED_HOSTS": ["portal.test", "localhost"]})  # the test client's Host
    yield app
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    elif not db.is_closed():
        db.close()


PASSWORD_HASH = generate_password_hash(PASSWORD, method="scrypt")


@pytest.fixture
def site(fuzz_app):
    """A practice with an admin, a clinician, a client with an appointment and links, and a
    test client per person (each with its own cookies and CSRF token)."""
    app = fuzz_app
    with db.connection_context():
        for model in reversed(ALL_MODELS):
            if model is not SchemaVersion:
                model.delete().execute()
        create_schema()
    dana = Clinician.create(email="dana@example.com", name="Dana Hale", password_hash=PASSWORD_HASH, is_admin=True)
    kim = Clinician.create(email="kim@example.com", name="Kim Park", password_hash=PASSWORD_HASH)
    # A new practice requires a second factor: both have an authenticator app, so their sessions
    # below are full ones.
    Clinician.update(totp_secret=pyotp.random_base32(), totp_confirmed_at=utcnow()).execute()
    alex = add_client("alex@example.com", "Alex Morgan", clinician=dana)
    sam = add_client("sam@example.com", "Sam Rivera", clinician=kim)
    now = utcnow().replace(second=0, microsecond=0)
    appointment = create_appointment(clinician=dana, client=alex, starts_at=now - timedelta(minutes=5),
                                     ends_at=now + timedelta(minutes=45), kind="telehealth")
    intake = DocumentTemplate.get(DocumentTemplate.title == "Intake questionnaire")
    consent = DocumentTemplate.get(DocumentTemplate.title == "Informed consent")
    with app.app_context():
        # Shared first: sharing issues a link, which would replace the sign-in link below.
        intake_share, consent_share = share_documents(alex, [intake.id, consent.id], by=dana)
        issued = issue_link(alex, "client_request")
        feed = feed_token(alex, KEY)
    site = dict(app=app, dana=dana, kim=kim, alex=alex, sam=sam, appointment=appointment, sign_in_token=issued.token,
                join_token=telehealth_token(appointment, app.config["SECRET_KEY"]), feed_token=feed,
                intake=intake, consent=consent, intake_share=intake_share, consent_share=consent_share)
    site["browsers"] = {}
    for who, person in (("anon", None), ("client", alex), ("admin", dana), ("clinician", kim)):
        browser = app.test_client()
        if person is not None:
            raw_id, _ = start_session(**({"client": person} if who == "client" else {"clinician": person}))
            browser.set_cookie(app.config["PORTAL_SESSION_COOKIE"], raw_id)
        html = browser.get("/sign-in").get_data(as_text=True)
        browser.csrf = CSRF_INPUT.search(html).group(1) if CSRF_INPUT.search(html) else _header_token(browser)
        site["browsers"][who] = browser
    yield site
    if not db.is_closed():
        db.close()


def _header_token(browser) -> str:
    """A signed-in client is sent from /sign-in to the portal: its pages carry the token too."""
    html = browser.get("/portal").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)


def stored() -> dict:
    """What a refused submission must leave exactly as it was."""
    return {
        "counts": {model.__name__: model.select().count()
                   for model in (Client, Clinician, Appointment, Link, Session, Email, SignInRequest, RoomSignal,
                                 DocumentTemplate, DocumentVersion, DocumentShare)},
        "practice": Practice.select().dicts().get() if Practice.select().exists() else None,
        "clients": list(Client.select(Client.id, Client.name, Client.email, Client.phone, Client.timezone,
                                      Client.clinician, Client.archived_at).order_by(Client.id).tuples()),
        "appointments": list(Appointment.select(Appointment.id, Appointment.starts_at, Appointment.ends_at,
                                                Appointment.kind, Appointment.status, Appointment.clinician)
                             .order_by(Appointment.id).tuples()),
        "live_sessions": Session.select().where(Session.ended_at.is_null()).count(),
        "templates": list(DocumentTemplate.select(DocumentTemplate.id, DocumentTemplate.title,
                                                  DocumentTemplate.version, DocumentTemplate.archived_at)
                          .order_by(DocumentTemplate.id).tuples()),
        # Not the draft: an answer refused (422) is kept as the draft, so that nothing typed is lost.
        "shares": list(DocumentShare.select(DocumentShare.id, DocumentShare.version, DocumentShare.link,
                                            DocumentShare.answers_json, DocumentShare.completed_at,
                                            DocumentShare.unshared_at).order_by(DocumentShare.id).tuples()),
    }


def reopen_shares():
    """Every example of a document form starts from open shares: one that submitted or
    unshared would otherwise leave the rest of the examples only "already done" to test."""
    DocumentShare.update(completed_at=None, answers_json=None, unshared_at=None, unshared_by=None).execute()


def assert_clean(response):
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"{response.status_code}: {body[:500]}"
    assert "Traceback" not in body and "File \"/" not in body


def assert_nothing_nul_stored():
    """Whatever was accepted was cleaned: no NUL reached a stored value (SQLite would keep one)."""
    for row in Client.select().tuples():
        assert not any(isinstance(value, str) and "\x00" in value for value in row)
    for row in Practice.select().tuples():
        assert not any(isinstance(value, str) and "\x00" in value for value in row)
    for model in (DocumentTemplate, DocumentVersion, DocumentShare):  # JSON columns hold a NUL as \u0000
        for row in model.select().tuples():
            assert not any(isinstance(value, str) and ("\x00" in value or "\\u0000" in value) for value in row)


# ---- every form ---------------------------------------------------------------------------

def _forms(s) -> dict:
    """form name -> (who submits it, path, a submission that would be accepted, and what else
    each field may hold). Each example spoils one to three fields of the good submission, so
    that a hostile value gets past the others and reaches the code behind them."""
    a, alex, dana = s["appointment"], s["alex"], s["dana"]
    ids = st.sampled_from([str(dana.id), str(s["kim"].id), str(alex.id), str(s["sam"].id), "0", "-1", "1.5"])
    emails = st.one_of(st.emails(), st.sampled_from(["alex@example.com", "ALEX@example.com ", "kim@example.com"]))
    zones = st.sampled_from(["", "Europe/London", "America/New_York", "UTC", "Etc/GMT+12"])
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    booking = {"clinician": str(dana.id), "client": str(alex.id), "date": tomorrow, "start_time": "10:00",
               "end_time": "10:50", "kind": "telehealth", "save_anyway": ""}
    booking_fields = {"clinician": ids, "client": ids, "date": dates(), "start_time": times(), "end_time": times(),
                      "kind": st.sampled_from(["telehealth", "in_person", "phone"]), "save_anyway": st.just("y")}
    person = {"name": "Robin Lee", "email": "robin@example.com", "phone": "+44 20 7946 0958",
              "timezone": "Europe/London", "clinician": str(dana.id)}
    person_fields = {"name": TEXT, "email": emails, "phone": st.from_regex(r"\+?[0-9 ()\-]{3,40}", fullmatch=True),
                     "timezone": zones, "clinician": ids}
    card = {"save_anyway": st.just("y"), "view": st.sampled_from(["day", "week", "month"])}
    minutes = st.integers(min_value=-10**6, max_value=10**6).map(str)
    hhmm = st.one_of(times(), st.sampled_from(["21:00", "08:00", "7:00", "21:00\n"]))
    practice = {"name": "Willow Street", "timezone": "Europe/London", "contact_email": "hello@example.com",
                "sign_in_link_hours": "24", "invitation_link_hours": "72", "quiet_hours_start": "21:00",
                "quiet_hours_end": "08:00", "client_idle_minutes": "15", "clinician_idle_minutes": "30",
                "telehealth_grace_minutes": "30", "reminder_offsets": "72, 24"}
    practice_fields = {"name": TEXT, "timezone": zones, "contact_email": emails,
                       "sign_in_link_hours": st.one_of(minutes, st.decimals(allow_nan=True).map(str)),
                       "invitation_link_hours": minutes, "quiet_hours_start": hhmm, "quiet_hours_end": hhmm,
                       "client_idle_minutes": minutes, "clinician_idle_minutes": minutes,
                       "telehealth_grace_minutes": minutes,
                       "reminder_offsets": st.lists(st.integers(-5, 400), max_size=7).map(
                           lambda hours: ", ".join(map(str, hours)))}
    leave = {"connection": "0" * 32, "how": "left"}
    leave_fields = {"connection": TEXT, "how": st.sampled_from(["page_closed", "left"])}
    # The client's documents: the intake form (every kind of field) and the consent to acknowledge.
    intake, consent = s["intake_share"], s["consent_share"]
    answers = {"f1": "Alex Morgan", "f2": "1990-04-21", "f3": "", "f4": "Sam Morgan, 07700 900123",
               "f5": "Trouble sleeping.", "f6": "No", "f7": ["Email", "Text message"], "f8": "", "f9": "Alex Morgan"}
    choices = st.lists(st.one_of(st.sampled_from(["Yes", "No", "Not sure", "Email", "Phone call", "Text message"]),
                                 HOSTILE), max_size=4)
    answer_fields = {"f1": TEXT, "f2": st.one_of(dates(), HOSTILE), "f3": TEXT, "f4": TEXT, "f5": TEXT,
                     "f6": st.one_of(choices, HOSTILE), "f7": choices, "f8": TEXT, "f9": TEXT,
                     "f99": TEXT, "acknowledged": st.sampled_from(["yes", "no", "on"])}
    acknowledged = {"acknowledged": "yes", "signature": "Alex Morgan"}
    acknowledge_fields = {"acknowledged": st.one_of(st.sampled_from(["yes", "no", "on"]),
                                                    st.lists(HOSTILE, max_size=3)),
                          "signature": TEXT}
    # A template: its fields, and one question's (the editor names them questions-<n>-<name>).
    template = {"title": "Release form", "kind": "form", "body": "Please answer.", "questions-0-key": "",
                "questions-0-question": "Your name", "questions-0-answer_type": "short_text",
                "questions-0-required": "y", "questions-0-choices": ""}
    template_fields = {
        "title": TEXT, "kind": st.sampled_from(["form", "acknowledge", "poll"]), "body": TEXT,
        "questions-0-key": st.sampled_from(["", "f1", "f9", "f1\n", "f9999", "f99999", "f\u0661", "g1", "f-1"]),
        "questions-0-question": TEXT, "questions-0-answer_type": st.sampled_from(["short_text", "single_choice",
                                                                                 "multiple_choice", "date", "x"]),
        "questions-0-required": st.sampled_from(["y", "", "no"]),
        "questions-0-choices": st.lists(st.one_of(TEXT, HOSTILE), max_size=40).map("\n".join),
        "questions-0-remove": st.just("y"), "add_question": st.just("1"),
        "questions-1-question": TEXT, "questions-1-answer_type": st.sampled_from(["long_text", "signature"]),
        "questions-99999-question": TEXT,
    }
    share_ids = st.lists(st.one_of(st.sampled_from([str(s["intake"].id), str(s["consent"].id)]), ids, HOSTILE),
                         max_size=4)
    return {
        "sign-in": ("anon", "/sign-in", {"email": "alex@example.com"}, {"email": emails}),
        "sign-in-code": ("anon", "/sign-in/code", {"email": "alex@example.com", "code": "123456"},
                         {"email": emails, "code": st.from_regex(r"\s*[0-9]{6}\s*", fullmatch=True)}),
        "sign-in-code-page": ("anon", "/sign-in/code", {"entry": "page", "email": "alex@example.com",
                                                        "code": "123456"},
                              {"email": emails, "code": st.from_regex(r"\s*[0-9]{6}\s*", fullmatch=True)}),
        "link-continue": ("anon", f"/s/{s['sign_in_token']}", {}, {}),
        "sign-out": ("client", "/sign-out", {}, {}),
        "keep-alive": ("client", "/session/keep-alive", {}, {}),
        "clinic-sign-in": ("anon", "/clinic/sign-in", {"email": "kim@example.com", "password": PASSWORD},
                           {"email": emails, "password": TEXT}),
        "clinic-sign-out": ("clinician", "/clinic/sign-out", {}, {}),
        "appointment-new": ("admin", "/clinic/appointments/new", booking, booking_fields),
        "appointment-edit": ("admin", f"/clinic/appointments/{a.id}/edit", booking, booking_fields),
        "appointment-extend": ("admin", f"/clinic/appointments/{a.id}/extend", {"minutes": "15", "view": "day"},
                               {"minutes": st.sampled_from(["15", "30"]), **card}),
        "appointment-end": ("admin", f"/clinic/appointments/{a.id}/end", {"end_time": "12:00", "view": "day"},
                            {"end_time": times(), **card}),
        "appointment-cancel": ("clinician", f"/clinic/appointments/{a.id}/cancel", {}, {}),  # not kim's: 404
        "client-add": ("admin", "/clinic/clients/new", person, person_fields),
        "client-add-as-clinician": ("clinician", "/clinic/clients/new", person, person_fields),
        "client-edit": ("admin", f"/clinic/clients/{alex.id}/edit", {**person, "email": "alex@example.com"},
                        person_fields),
        "client-send-link": ("admin", f"/clinic/clients/{alex.id}/send-link", {}, {}),
        "client-invite": ("admin", f"/clinic/clients/{alex.id}/invite", {}, {}),
        "client-sign-out-everywhere": ("admin", f"/clinic/clients/{alex.id}/sign-out", {}, {}),
        "client-archive": ("clinician", f"/clinic/clients/{alex.id}/archive", {}, {}),  # not kim's: 404
        "client-restore": ("admin", f"/clinic/clients/{alex.id}/restore", {}, {}),
        "settings": ("admin", "/clinic/settings", practice, practice_fields),
        "settings-as-clinician": ("clinician", "/clinic/settings", practice, practice_fields),  # not an admin: 403
        "telehealth-join": ("anon", f"/t/{s['join_token']}", {}, {}),
        "telehealth-leave": ("anon", f"/t/{s['join_token']}/leave", leave, leave_fields),
        "clinician-join": ("admin", f"/clinic/appointments/{a.id}/join", {}, {}),
        "clinician-leave": ("admin", f"/clinic/appointments/{a.id}/leave", leave, leave_fields),
        "client-feed-revoke": ("admin", f"/clinic/clients/{alex.id}/feed/revoke", {}, {}),
        "document-draft": ("client", f"/portal/documents/{intake.id}/draft", answers, answer_fields),
        "document-submit": ("client", f"/portal/documents/{intake.id}", answers, answer_fields),
        "document-acknowledge": ("client", f"/portal/documents/{consent.id}", acknowledged, acknowledge_fields),
        "document-template-new": ("admin", "/clinic/documents/new", template, template_fields),
        "document-template-new-as-clinician": ("clinician", "/clinic/documents/new", template, template_fields),  # 403
        "document-template-edit": ("admin", f"/clinic/documents/{s['intake'].id}/edit",
                                   {**template, "questions-0-key": "f1"}, template_fields),
        "document-template-archive": ("admin", f"/clinic/documents/{s['consent'].id}/archive", {}, {}),
        "document-share": ("admin", f"/clinic/clients/{alex.id}/documents/share", {"template": str(s["intake"].id)},
                           {"template": share_ids}),
        "document-share-as-clinician": ("clinician", f"/clinic/clients/{alex.id}/documents/share",  # not kim's: 404
                                        {"template": str(s["intake"].id)}, {"template": share_ids}),
        "document-resend": ("admin", f"/clinic/clients/{alex.id}/documents/{intake.id}/resend", {}, {}),
        "document-unshare": ("admin", f"/clinic/clients/{alex.id}/documents/{intake.id}/unshare", {}, {}),
    }


FORM_NAMES = ["sign-in", "sign-in-code", "sign-in-code-page", "link-continue", "sign-out", "keep-alive",
              "clinic-sign-in", "clinic-sign-out", "appointment-new", "appointment-edit", "appointment-extend",
              "appointment-end", "appointment-cancel", "client-add", "client-add-as-clinician", "client-edit",
              "client-send-link", "client-invite", "client-sign-out-everywhere", "client-archive", "client-restore",
              "settings", "settings-as-clinician", "telehealth-join", "telehealth-leave", "clinician-join",
              "clinician-leave", "client-feed-revoke", "document-draft", "document-submit", "document-acknowledge",
              "document-template-new", "document-template-new-as-clinician", "document-template-edit",
              "document-template-archive", "document-share", "document-share-as-clinician", "document-resend",
              "document-unshare"]

# Fields nobody asked for, sent alongside: they must be ignored.
EXTRA = st.dictionaries(st.sampled_from(["id", "is_admin", "clinician_id", "archived_at", "next", "target"]),
                        VALUE, max_size=2)


def spoiled(data, good: dict, fields: dict) -> dict:
    """The good submission with one to three fields replaced by something hostile, or left out."""
    values = dict(good)
    if fields:
        for name in data.draw(st.sets(st.sampled_from(sorted(fields)), min_size=1, max_size=3), label="spoil"):
            values[name] = data.draw(st.one_of(st.none(), HOSTILE, TEXT, fields[name]), label=name)
    return {name: value for name, value in values.items() if value is not None}


@pytest.mark.parametrize("name", FORM_NAMES)
def test_every_form_survives_hostile_values(site, name):
    who, path, good, fields = _forms(site)[name]
    browser = site["browsers"][who]

    @FUZZ
    @given(data=st.data(), extra=EXTRA, htmx=st.booleans())
    def submit(data, extra, htmx):
        reopen_shares()
        before = stored()
        headers = {"HX-Request": "true", "HX-Trigger": "document-form"} if htmx else {}
        values = {**extra, **spoiled(data, good, fields), "csrf_token": browser.csrf}
        response = browser.post(path, data=values, headers=headers)
        assert_clean(response)
        if response.status_code >= 400:
            assert stored() == before, f"a refused {name} ({response.status_code}) changed what is stored"
        assert_nothing_nul_stored()

    submit()


def test_setup_form_survives_hostile_values(site):
    """The first-run form, on a practice with nobody in it yet."""
    Clinician.delete().execute()
    browser = site["app"].test_client()
    token = CSRF_INPUT.search(browser.get("/clinic/setup").get_data(as_text=True)).group(1)
    good = {"practice_name": "Willow Street", "timezone": "Europe/London", "contact_email": "hello@example.com",
            "name": "Dana Hale", "email": "dana@example.com", "password": PASSWORD, "confirm": PASSWORD}
    fields = {"practice_name": TEXT, "timezone": st.sampled_from(["Europe/London", "UTC", "Nowhere"]),
              "contact_email": st.emails(), "name": TEXT, "email": st.emails(), "password": TEXT, "confirm": TEXT}

    @FUZZ
    @given(data=st.data())
    def submit(data):
        before = stored()
        response = browser.post("/clinic/setup", data={**spoiled(data, good, fields), "csrf_token": token})
        assert_clean(response)
        if response.status_code >= 400:
            assert stored() == before
        assert_nothing_nul_stored()
        if Clinician.select().exists():  # it worked: the page is gone; start again from nobody
            Clinician.delete().execute()

    submit()


# ---- the video room's signalling (JSON, not a form) ---------------------------------------

JSON_VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), VALUE),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                           max_leaves=8)


def test_room_signals_survive_hostile_json(site):
    browser = site["browsers"]["anon"]
    join = f"/t/{site['join_token']}"
    assert browser.post(join, data={"csrf_token": browser.csrf}).status_code == 303
    page = browser.get(f"{join}/room").get_data(as_text=True)
    connection = re.search(r'data-connection="([^"]+)"', page).group(1)
    signal = st.fixed_dictionaries({
        "connection": st.one_of(st.just(connection), JSON_VALUES),
        "kind": st.one_of(st.sampled_from(["hello", "offer", "answer", "candidate", "bye"]), JSON_VALUES),
        "body": st.one_of(st.text(max_size=200), JSON_VALUES, st.just("z" * 40_000)),
        "to": st.one_of(st.none(), JSON_VALUES),
    })

    @FUZZ
    @given(payload=st.one_of(signal, JSON_VALUES), raw=st.one_of(st.none(), st.sampled_from(
        [b"{", b"\xff\xfe", b"null", b"[]", b'"x"', b"1e999", b'{"kind": "hello", "body": "\\u0000"}'])))
    def post(payload, raw):
        data = raw if raw is not None else json.dumps(payload)
        response = browser.post(f"{join}/signals", data=data, content_type="application/json",
                                headers={"X-CSRFToken": browser.csrf})
        assert_clean(response)
        assert not any("\x00" in body for (body,) in RoomSignal.select(RoomSignal.body).tuples())

    post()


# ---- every URL parameter ------------------------------------------------------------------

QUERY = st.dictionaries(st.one_of(st.sampled_from(["date", "q", "show", "left", "connection", "next", "page"]), TEXT),
                        VALUE, max_size=3)


def _get_routes(app) -> list[str]:
    return sorted(rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods)


def _who_for(path: str) -> str:
    if path.startswith("/clinic"):
        return "admin"
    if path.startswith(("/portal", "/session")):
        return "client"
    return "anon"


def _fill(rule: str, s: dict) -> str:
    """The rule with real ids and tokens, so that query arguments reach a page that renders;
    a route this test does not know yet gets id 1 and token "x"."""
    known = (rule.replace("<int:appointment_id>", str(s["appointment"].id))
             .replace("<int:client_id>", str(s["alex"].id)).replace("<int:email_id>", "1")
             .replace("/s/<token>", f"/s/{s['sign_in_token']}").replace("/t/<token>", f"/t/{s['join_token']}")
             .replace("/feed/<token>", f"/feed/{s['feed_token']}").replace("<path:filename>", "portico.css"))
    return re.sub(r"<[^>]+>", "x", re.sub(r"<int:[^>]+>", "1", known))


def test_every_get_route_survives_hostile_query_arguments(site):
    app = site["app"]
    paths = [_fill(rule, site) for rule in _get_routes(app)]
    Email.create(to_addr="x@example.com", subject="s", text_body="t", html_body="h", message_id="<m@x>", kind="test",
                 queued_at=utcnow(), next_attempt_at=utcnow())

    @settings(FUZZ, max_examples=4 * len(paths))
    @given(path=st.sampled_from(paths), query=QUERY, htmx=st.booleans())
    def get(path, query, htmx):
        headers = {"HX-Request": "true", "HX-Trigger": "join-status"} if htmx else {}
        response = site["browsers"][_who_for(path)].get(path, query_string=query, headers=headers)
        assert_clean(response)

    get()


PATH_VALUES = st.one_of(HOSTILE, TEXT, st.integers().map(str),
                        st.tuples(st.integers(min_value=0, max_value=10**30), TEXT).map(lambda p: f"{p[0]}.{p[1]}"))


@pytest.mark.parametrize("rule", ["/s/{}", "/t/{}", "/t/{}/room", "/t/{}/signals", "/feed/{}.ics",
                                  "/clinic/appointments/{}/edit", "/clinic/appointments/{}/join",
                                  "/clinic/clients/{}", "/clinic/clients/{}/history", "/dev/mailbox/{}",
                                  "/static/{}"])
def test_every_path_parameter_survives_hostile_values(site, rule):
    who = _who_for(rule)
    numbers = st.integers(min_value=0, max_value=10**40).map(str)

    @FUZZ
    @given(value=st.one_of(PATH_VALUES, numbers), method=st.sampled_from(["GET", "HEAD"]))
    def get(value, method):
        path = rule.format(quote(value, safe=".")) if value else rule.format("%20")
        response = site["browsers"][who].open(path, method=method)
        assert_clean(response)
        assert response.status_code in (200, 301, 302, 303, 308, 400, 404, 405, 409, 410)

    get()


def test_every_post_path_parameter_survives_hostile_values(site):
    """The same for the POST-only routes, with a valid CSRF token so the value reaches the view."""
    browser = site["browsers"]["admin"]
    rules = ["/s/{}", "/t/{}", "/t/{}/leave", "/clinic/appointments/{}/extend", "/clinic/clients/{}/send-link",
             "/clinic/documents/{}/edit", "/clinic/clients/{}/documents/share", "/clinic/clients/1/documents/{}/resend",
             "/clinic/clients/1/documents/{}/unshare"]

    @FUZZ
    @given(rule=st.sampled_from(rules), value=PATH_VALUES)
    def post(rule, value):
        before = stored()
        path = rule.format(quote(value, safe=".")) if value else rule.format("%20")
        response = browser.post(path, data={"csrf_token": browser.csrf, "minutes": "15"})
        assert_clean(response)
        if response.status_code >= 400:
            assert stored() == before

    post()


# ---- what fuzzing found: each once a 500 on SQLite, PostgreSQL or both ----------------------

def _booking(site, **changes):
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    return {"clinician": str(site["dana"].id), "client": str(site["alex"].id), "date": tomorrow,
            "start_time": "10:00", "end_time": "10:50", "kind": "telehealth", **changes}


FOUND = {
    # int("²") fails although "²".isdigit(); hmac.compare_digest refuses non-ASCII text;
    # ids past the integer column overflow SQLite's driver and PostgreSQL's integer.
    "join link with a superscript digit": ("anon", "GET", "/t/%C2%B2.abc", None, 404),
    "join link with a non-ASCII mac": ("anon", "GET", "/t/{appointment}.%C3%A9", None, 404),
    "join link with a huge id": ("anon", "GET", "/t/999999999999.abc", None, 404),
    "feed with a superscript digit": ("anon", "GET", "/feed/%C2%B2.abc.ics", None, 404),
    "feed with a non-ASCII digest": ("anon", "GET", "/feed/{alex}.%C3%A9.ics", None, 404),
    "feed with a huge id": ("anon", "GET", "/feed/99999999999999999999.abc.ics", None, 404),
    "client page with a huge id": ("admin", "GET", "/clinic/clients/99999999999", None, 404),
    "appointment with a huge id": ("admin", "GET", "/clinic/appointments/99999999999999999999999/edit", None, 404),
    "dev mail with a huge id": ("admin", "GET", "/dev/mailbox/99999999999999999999", None, 404),
    # The calendar's next/previous day past datetime's range.
    "calendar on the last day of year 9999": ("admin", "GET", "/clinic/calendar?date=9999-12-31", None, 200),
    "week of the first day of year 1": ("admin", "GET", "/clinic/calendar/week?date=0001-01-01", None, 200),
    "new appointment form on year 9999": ("admin", "GET", "/clinic/appointments/new?date=9999-12-31", None, 200),
    "booking in year 9999": ("admin", "POST", "/clinic/appointments/new", lambda s: _booking(s, date="9999-12-31"), 422),
    # A NUL reaching PostgreSQL raises ValueError in psycopg2.
    "search with a NUL": ("admin", "GET", "/clinic/clients?q=a%00b", None, 400),
    "a NUL in a repeated argument": ("admin", "GET", "/clinic/clients?q=a&q=b%00", None, 400),
    "code with a NUL in the address": ("anon", "POST", "/sign-in/code",
                                       {"email": "alex@example.com\x00", "code": "123456"}, 400),
    "clinician sign-in with a NUL": ("anon", "POST", "/clinic/sign-in", {"email": "kim@example.com\x00",
                                                                        "password": PASSWORD}, 400),
    "client name with a NUL": ("admin", "POST", "/clinic/clients/new",
                               {"name": "Robin\x00Lee", "email": "robin@example.com"}, 400),
    "sign-in link with a NUL": ("anon", "GET", "/s/abc%00def", None, 400),
    # Stored as given: "21:00\n" and Arabic-Indic digits passed `\d` and `$`.
    "quiet hours with a newline": ("admin", "POST", "/clinic/settings", {"quiet_hours_start": "21:00\n"}, 422),
    "quiet hours in other digits": ("admin", "POST", "/clinic/settings", {"quiet_hours_start": "٢١:٠٠"}, 422),
    # The room's connection id compared with hmac.compare_digest: non-ASCII raised TypeError.
    "room poll with a non-ASCII connection": ("seated", "GET", "/t/{join}/signals?connection=%C3%A9", None, 409),
    "leave with a non-ASCII connection": ("seated", "POST", "/t/{join}/leave", {"connection": "é"}, 303),
    # A template id past the integer column, in the share form.
    "sharing a template with a huge id": ("admin", "POST", "/clinic/clients/{alex}/documents/share",
                                          {"template": "9" * 400}, 422),
    "sharing a template one past PostgreSQL's integer": ("admin", "POST", "/clinic/clients/{alex}/documents/share",
                                                         {"template": "2147483648"}, 422),
}
SIGNALS_FOUND = {
    # JSON that is not an object, or an object whose values are not strings.
    "a JSON string": b'"x"',
    "a JSON list": b"[1, 2]",
    "a list as the kind": b'{"kind": ["hello"], "connection": "{connection}"}',
    "an object as the connection": b'{"kind": "hello", "connection": {"a": 1}}',
    "a non-ASCII connection": b'{"kind": "hello", "connection": "\\u00e9"}',
    "a NUL in the body": b'{"kind": "offer", "body": "v=0\\u0000", "connection": "{connection}"}',
}


@pytest.fixture
def seated(site):
    """A browser that pressed Join and opened the room: its connection id is in the page."""
    browser = site["app"].test_client()
    html = browser.get("/sign-in").get_data(as_text=True)
    browser.csrf = CSRF_INPUT.search(html).group(1)
    join = f"/t/{site['join_token']}"
    assert browser.post(join, data={"csrf_token": browser.csrf}).status_code == 303
    browser.connection = re.search(r'data-connection="([^"]+)"', browser.get(f"{join}/room").get_data(as_text=True))[1]
    site["browsers"]["seated"] = browser
    return browser


def test_values_that_once_caused_a_500(site, seated):
    problems = []
    for case, (who, method, path, data, status) in FOUND.items():
        browser = site["browsers"][who]
        path = path.format(appointment=site["appointment"].id, alex=site["alex"].id, join=site["join_token"])
        if callable(data):
            data = data(site)
        if method == "POST" and "settings" in path:
            data = {**_forms(site)["settings"][2], **data}
        before = stored()
        if method == "GET":
            response = browser.get(path)
        else:
            response = browser.post(path, data={**(data or {}), "csrf_token": browser.csrf})
        body = response.get_data(as_text=True)
        if response.status_code != status or "Traceback" in body:
            problems.append(f"{case}: {response.status_code}, expected {status}")
        elif status >= 400 and stored() != before:
            problems.append(f"{case}: refused, yet something was stored")
        elif response.status_code in (400, 404) and "<h1>" not in body:
            problems.append(f"{case}: not the friendly page")
    assert problems == []
    assert_nothing_nul_stored()


def test_signals_that_once_caused_a_500(site, seated):
    problems = []
    for case, body in SIGNALS_FOUND.items():
        response = seated.post(f"/t/{site['join_token']}/signals", content_type="application/json",
                               data=body.replace(b"{connection}", seated.connection.encode()),
                               headers={"X-CSRFToken": seated.csrf})
        if response.status_code not in (400, 409):
            problems.append(f"{case}: {response.status_code}")
    assert problems == []
    assert RoomSignal.select().count() == 0


# ---- issue 16: a file where text belongs, JSON nested past the parser, lone surrogates -------

@pytest.mark.parametrize("name", FORM_NAMES)
def test_every_form_refuses_a_file_part_with_a_400(site, name):
    """A file part where a text field belongs once reached the validators as a FileStorage
    (`len()` raised): no form of ours takes a file."""
    who, path, good, _ = _forms(site)[name]
    browser = site["browsers"][who]
    reopen_shares()
    before = stored()
    field = next(iter(good), "upload")
    values = {**good, field: (io.BytesIO(b"alex@example.com"), "field.txt"), "csrf_token": browser.csrf}
    response = browser.post(path, data=values, content_type="multipart/form-data")
    assert_clean(response)
    assert response.status_code == 400
    assert "Files cannot be sent here" in response.get_data(as_text=True)
    assert stored() == before


UNREADABLE_JSON = {
    "nested past the parser's depth": b"[" * 5000,
    "an object nested past it": b'{"kind": "offer", "body": ' + b"[" * 5000 + b"}",
    "a lone surrogate as the connection": b'{"kind": "hello", "connection": "\\ud800"}',
    "a lone surrogate in the body": b'{"kind": "offer", "connection": "{connection}", "body": "\\udfff"}',
    "a lone surrogate as a key": b'{"\\ud800": 1, "kind": "hello"}',
}


@pytest.mark.parametrize("who", ["client", "clinician"])
def test_every_json_endpoint_refuses_nested_and_surrogate_json_with_a_400(site, seated, who):
    if who == "client":
        browser, path = seated, f"/t/{site['join_token']}/signals"
    else:
        browser, path = site["browsers"]["admin"], f"/clinic/appointments/{site['appointment'].id}/signals"
    problems = []
    for case, body in UNREADABLE_JSON.items():
        response = browser.post(path, content_type="application/json", headers={"X-CSRFToken": browser.csrf},
                                data=body.replace(b"{connection}", getattr(browser, "connection", "x").encode()))
        if response.status_code != 400 or "error" not in (response.get_json(silent=True) or {}):
            problems.append(f"{case}: {response.status_code}")
    assert problems == []
    assert RoomSignal.select().count() == 0
