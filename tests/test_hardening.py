"""Hardening: security headers on every page, CSRF on every POST, no secret in any log line,
and faults (the database away for a while, SMTP down for a while) that the portal rides out."""
import contextlib
import html
import io
import json
import logging
import re
import socket
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from werkzeug.serving import make_server

from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.clock import utcnow
from practice.feeds import feed_token
from practice.links import issue_link
from practice.mail import queue_email
from practice.models import ALL_MODELS, Appointment, Client, Email, Practice, Session
from practice.online_changes import change_token
from practice.sessions import start_session
from practice.telehealth import telehealth_token
from tests.conftest import (CSRF_INPUT, PASSWORD, Inbox, code_from, csrf_token, deliver, free_port,
                            postgres_reachable, text_part)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
KEY = b"test-secret-key"


# ---- a practice with someone of each kind signed in -----------------------------------------

@pytest.fixture
def signed_in(make_app):
    """Test clients for nobody, a client and an admin clinician, and the ids and tokens that
    the routes with arguments need. No MAIL_SERVER, so the dev mailbox's routes exist too."""
    app = make_app(MAIL_SERVER=None)
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    alex = add_client("alex@example.com", "Alex Morgan", clinician=dana)
    start = utcnow().replace(second=0, microsecond=0)
    appointment = create_appointment(clinician=dana, client=alex, starts_at=start - timedelta(minutes=5),
                                     ends_at=start + timedelta(minutes=45), kind="telehealth")
    with app.app_context():
        link = issue_link(alex, "client_request")
        feed = feed_token(alex, KEY)
    browsers = {}
    for who, person in (("anon", None), ("client", {"client": alex}), ("admin", {"clinician": dana})):
        browser = app.test_client()
        if person:
            browser.set_cookie(app.config["PORTAL_SESSION_COOKIE"], start_session(**person)[0])
        browsers[who] = browser
    values = {"appointment_id": appointment.id, "client_id": alex.id, "email_id": 1, "filename": "portico.css"}
    tokens = {"signin.link_open": link.token, "feed.calendar_feed": feed,
              "telehealth": telehealth_token(appointment, app.config["SECRET_KEY"])}
    with app.app_context():  # the client's reschedule-or-cancel link, for each of its pages
        tokens.update({endpoint: change_token(appointment) for endpoint in (
            "changes.appointment_page", "changes.change_times", "changes.change_confirm", "changes.change_move",
            "changes.change_cancel")})
    return {"app": app, "browsers": browsers, "values": values, "tokens": tokens}


def url_for_rule(rule, s) -> str:
    """A real URL for the rule: the site's ids, and the token its endpoint takes."""
    path = rule.rule
    for name in rule.arguments:
        if name == "token":
            value = s["tokens"].get(rule.endpoint) or s["tokens"]["telehealth"]
        else:
            value = s["values"].get(name, 1)
        path = re.sub(rf"<(?:[a-z]+(?:\([^)]*\))?:)?{name}>", str(value), path)
    return path


def who_for(path: str) -> list[str]:
    if path.startswith("/clinic") or path.startswith("/dev"):
        return ["anon", "admin"]
    if path.startswith(("/portal", "/session", "/sign-out")):
        return ["anon", "client"]
    return ["anon", "client", "admin"]


# ---- security headers -----------------------------------------------------------------------

def csp_directives(header: str) -> dict:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def header_problems(response, *, https: bool) -> list[str]:
    headers = response.headers
    problems = []
    csp = csp_directives(headers.get("Content-Security-Policy", ""))
    scripts = csp.get("script-src", csp.get("default-src"))
    if scripts is None:
        problems.append("no script-src or default-src")
    elif "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or "*" in scripts:
        problems.append(f"script-src allows inline or foreign script: {scripts}")
    styles = csp.get("style-src", csp.get("default-src", []))
    if "'unsafe-inline'" in styles:
        problems.append("style-src allows inline style")
    if csp.get("frame-ancestors") != ["'none'"]:
        problems.append(f"frame-ancestors is {csp.get('frame-ancestors')}")
    if csp.get("object-src") != ["'none'"]:
        problems.append(f"object-src is {csp.get('object-src')}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    if headers.get("X-Frame-Options") != "DENY":
        problems.append("no X-Frame-Options: DENY")
    if headers.get("Referrer-Policy") != "no-referrer":
        problems.append(f"Referrer-Policy is {headers.get('Referrer-Policy')}")
    hsts = headers.get("Strict-Transport-Security")
    if https and not (hsts and re.search(r"max-age=(\d+)", hsts) and int(re.search(r"max-age=(\d+)", hsts)[1]) >= 15552000):
        problems.append(f"HSTS is {hsts!r} on an https portal")
    if not https and hsts:
        problems.append("HSTS on a plain-http portal (it would lock a test or LAN install out)")
    return problems


def every_get(s):
    """(who, path) for every GET route, each as everyone who might ask for it."""
    for rule in s["app"].url_map.iter_rules():
        if "GET" in rule.methods:
            path = url_for_rule(rule, s)
            for who in who_for(path):
                yield who, path


def test_security_headers_on_every_page(signed_in):
    problems = []
    seen = 0
    for who, path in every_get(signed_in):
        response = signed_in["browsers"][who].get(path)
        seen += 1
        problems += [f"{who} GET {path} ({response.status_code}): {p}" for p in header_problems(response, https=False)]
    for path in ("/no-such-page", "/s/not-a-link", "/t/1.nope", "/feed/1.nope.ics", "/clinic/clients/999999"):
        response = signed_in["browsers"]["admin"].get(path)
        problems += [f"GET {path} ({response.status_code}): {p}" for p in header_problems(response, https=False)]
    response = signed_in["browsers"]["anon"].post("/sign-out")  # a refused POST answers with them too
    problems += [f"POST /sign-out ({response.status_code}): {p}" for p in header_problems(response, https=False)]
    assert seen > 40 and problems == []


def test_hsts_when_the_portal_is_served_over_https(make_app):
    app = make_app(PORTAL_BASE_URL="https://portal.example.org")
    browser = app.test_client()
    for path in ("/sign-in", "/healthz", "/clinic/sign-in", "/s/whatever", "/static/portico.css", "/nowhere"):
        response = browser.get(path, base_url="https://portal.example.org")
        assert header_problems(response, https=True) == [], path
    # ...and the cookies that carry a session are Secure and host-only there.
    assert app.config["PORTAL_SESSION_COOKIE"].startswith("__Host-")
    assert app.config["SESSION_COOKIE_SECURE"] is True


INLINE = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "<style> element": re.compile(r"<style[\s>]", re.I),
    "style= attribute": re.compile(r"""<[^>]*\sstyle\s*=""", re.I),
    "on*= handler": re.compile(r"""<[^>]*\son[a-z]+\s*=""", re.I),
    "hx-on (htmx evaluates it)": re.compile(r"\shx-on", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def page_templates():
    """Every template a browser renders; emails are exempt (mail clients need inline styles)."""
    return sorted(path for path in TEMPLATES.rglob("*.html") if "email" not in path.relative_to(TEMPLATES).parts)


def test_no_template_uses_inline_script_style_or_handlers():
    templates = page_templates()
    assert len(templates) > 20
    problems = [f"{path.relative_to(TEMPLATES)}: {what}: {pattern.search(path.read_text())[0][:80]}"
                for path in templates for what, pattern in INLINE.items() if pattern.search(path.read_text())]
    assert problems == []


# ---- CSRF on every POST ----------------------------------------------------------------------

def snapshot() -> dict:
    """Everything a POST could change: every table's row count, and the rows people act on."""
    return {
        "counts": {model.__name__: model.select().count() for model in ALL_MODELS},
        "practice": list(Practice.select().tuples()),
        "clients": list(Client.select().order_by(Client.id).tuples()),
        "appointments": list(Appointment.select(Appointment.id, Appointment.starts_at, Appointment.ends_at,
                                                Appointment.status, Appointment.nonce).tuples()),
        "sessions": list(Session.select(Session.id, Session.ended_at).order_by(Session.id).tuples()),
        "mail": list(Email.select(Email.id, Email.status).tuples()),
    }


# What a person would send to each kind of route: enough that, with a token, the action happens.
FORM_VALUES = {
    "email": "alex@example.com", "code": "123456", "password": PASSWORD, "name": "Robin Lee",
    "minutes": "15", "end_time": "12:00", "view": "day", "connection": "x", "how": "left",
}


def every_post(s):
    for rule in s["app"].url_map.iter_rules():
        if "POST" in rule.methods:
            path = url_for_rule(rule, s)
            for who in who_for(path):
                yield rule.endpoint, who, path


@pytest.mark.parametrize("how", ["form", "htmx", "wrong token", "json"])
def test_every_post_without_a_valid_csrf_token_is_refused_and_does_nothing(signed_in, how):
    refused = 0
    problems = []
    for endpoint, who, path in every_post(signed_in):
        browser = signed_in["browsers"][who]
        before = snapshot()
        if how == "json":  # the room's signalling posts JSON, with the token in a header
            response = browser.post(path, json={"kind": "hello", "connection": "x"})
        else:
            headers = {"HX-Request": "true", "HX-Current-URL": "http://localhost/"} if how == "htmx" else {}
            data = dict(FORM_VALUES, **({"csrf_token": "not-the-token"} if how == "wrong token" else {}))
            response = browser.post(path, data=data, headers=headers)
        body = response.get_data(as_text=True)
        if how == "json" and response.status_code == 415:
            pass  # a form view takes no JSON at all (portico/hardening.py refuses it first)
        elif response.status_code != 400 or "This form has expired" not in body:
            problems.append(f"{who} POST {path} ({endpoint}): {response.status_code}")
        elif snapshot() != before:
            problems.append(f"{who} POST {path} ({endpoint}): refused, yet something changed")
        refused += 1
    assert problems == [] and refused > 25


def test_the_same_posts_with_the_token_get_past_csrf(signed_in):
    """The other side of the check above: it is the missing token that was refused."""
    tokens = {}
    for who, path in (("anon", "/sign-in"), ("client", "/portal"), ("admin", "/clinic/calendar")):
        page = signed_in["browsers"][who].get(path).get_data(as_text=True)
        tokens[who] = re.search(r'"X-CSRFToken": "([^"]+)"', page)[1]
    problems = []
    for endpoint, who, path in every_post(signed_in):
        browser, token = signed_in["browsers"][who], tokens[who]
        response = browser.post(path, data=dict(FORM_VALUES, csrf_token=token), headers={"X-CSRFToken": token})
        if "This form has expired" in response.get_data(as_text=True):
            problems.append(f"{who} POST {path} ({endpoint}): still refused")
    assert problems == []


# ---- no secret in any log line ---------------------------------------------------------------

@contextlib.contextmanager
def serving(app):
    """The app on a real port behind werkzeug's threaded dev server, as `python portal.py` runs it."""
    port = int(app.config["PORTAL_BASE_URL"].rsplit(":", 1)[1]) if app.config["PORTAL_BASE_URL"].count(":") == 2 \
        else free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-portal", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def live(make_app):
    """The portal on a real port, whose request log is part of what is checked."""
    port = free_port()
    app = make_app(PORTAL_BASE_URL=f"http://127.0.0.1:{port}", TELEHEALTH_POLL_SECONDS=1,
                   PORTAL_TURN_URLS=["turn:turn.example.org:3478"], PORTAL_TURN_SECRET="turn-secret-for-the-log-test")
    with serving(app) as base_url:
        yield app, base_url


def form_token(response) -> str:
    html = response.text
    match = CSRF_INPUT.search(html) or re.search(r'"X-CSRFToken": "([^"]+)"', html)
    return match[1]


# Loggers of this test's own tools, not of the portal: requests' urllib3 prints every URL it
# fetches at DEBUG, and aiosmtpd (the test's mail server) prints what it receives.
TEST_TOOLS = ("urllib3", "mail.log")


def test_no_token_code_session_id_or_password_reaches_a_log_line(live, smtp_server, caplog, dana, alex):
    app, base = live
    caplog.set_level(logging.DEBUG)
    start = utcnow().replace(second=0, microsecond=0)
    appointment = create_appointment(clinician=dana, client=alex, starts_at=start - timedelta(minutes=5),
                                     ends_at=start + timedelta(minutes=45), kind="telehealth")
    secrets = {"password": PASSWORD, "secret key": app.config["SECRET_KEY"]}
    client = requests.Session()

    # The client asks for a link, opens it (GET and HEAD), and continues to the portal.
    page = client.get(f"{base}/sign-in")
    client.post(f"{base}/sign-in", data={"email": "alex@example.com", "csrf_token": form_token(page)})
    deliver(app)
    mail = smtp_server.to("alex@example.com")[-1]
    first_link = re.search(rf"{re.escape(base)}/s/([A-Za-z0-9_\-]+)", text_part(mail))[1]
    secrets.update({"first link": first_link, "first code": code_from(mail)})
    client.head(f"{base}/s/{first_link}")
    page = client.get(f"{base}/s/{first_link}")
    home = client.post(f"{base}/s/{first_link}", data={"csrf_token": form_token(page)})
    assert home.url == f"{base}/portal"
    secrets["first session"] = client.cookies.get(app.config["PORTAL_SESSION_COOKIE"])
    client.get(f"{base}/session/warning", headers={"HX-Request": "true"})
    client.post(f"{base}/session/keep-alive", data={"csrf_token": form_token(home)})
    client.post(f"{base}/sign-out", data={"csrf_token": form_token(home)})

    # ...then signs in with a code (one wrong try first), and opens the used link again.
    page = client.get(f"{base}/sign-in")
    sent = client.post(f"{base}/sign-in", data={"email": "alex@example.com", "csrf_token": form_token(page)})
    deliver(app)
    mail = smtp_server.to("alex@example.com")[-1]
    secrets.update({"second link": re.search(r"/s/([A-Za-z0-9_\-]+)", text_part(mail))[1],
                    "second code": code_from(mail)})
    wrong = "000000" if secrets["second code"] != "000000" else "111111"
    client.post(f"{base}/sign-in/code", data={"email": "alex@example.com", "code": wrong,
                                              "csrf_token": form_token(sent)})
    home = client.post(f"{base}/sign-in/code", data={"email": "alex@example.com", "code": secrets["second code"],
                                                     "csrf_token": form_token(sent)})
    assert home.url == f"{base}/portal"
    secrets["second session"] = client.cookies.get(app.config["PORTAL_SESSION_COOKIE"])
    assert client.get(f"{base}/s/{first_link}").status_code == 410

    # The video session, in a waiting room: join, the room, signalling, leave; and the calendar feed.
    Practice.update(room_entry="waiting_room").execute()
    join_token = telehealth_token(appointment, app.config["SECRET_KEY"])
    secrets["join link"] = join_token
    page = client.get(f"{base}/t/{join_token}")
    room = client.post(f"{base}/t/{join_token}", data={"csrf_token": form_token(page)})
    assert room.url == f"{base}/t/{join_token}/room"
    connection = re.search(r'data-connection="([^"]+)"', room.text)[1]
    seat = [c for c in client.cookies if "_seat_" in c.name][0]
    secrets["seat key"] = seat.value
    turn_server = json.loads(html.unescape(re.search(r"data-ice-servers='([^']*)'", room.text)[1]))[0]
    secrets.update({"turn secret": app.config["PORTAL_TURN_SECRET"], "turn credential": turn_server["credential"],
                    "turn username (expiry:seat id)": turn_server["username"]})
    room_token = re.search(r'data-csrf-token="([^"]+)"', room.text)[1]
    assert client.get(f"{base}/t/{join_token}/signals", params={"connection": connection}).json()["waiting"]
    client.post(f"{base}/t/{join_token}/signals", json={"kind": "hello", "connection": connection},
                headers={"X-CSRFToken": room_token})  # refused: still waiting
    waiting_clinician = requests.Session()
    page = waiting_clinician.get(f"{base}/clinic/sign-in")
    page = waiting_clinician.post(f"{base}/clinic/sign-in", data={"email": "dana@example.com", "password": PASSWORD,
                                                                  "csrf_token": form_token(page)})
    waiting_clinician.get(f"{base}/clinic/appointments/{appointment.id}/waiting")
    waiting_clinician.post(f"{base}/clinic/appointments/{appointment.id}/let-in", data={"csrf_token": form_token(page)})
    client.post(f"{base}/t/{join_token}/signals", json={"kind": "hello", "connection": connection},
                headers={"X-CSRFToken": room_token})
    client.get(f"{base}/t/{join_token}/signals", params={"connection": connection})
    client.post(f"{base}/t/{join_token}/leave", data={"csrf_token": room_token, "connection": connection})
    # "New join link": the old link's page says it was replaced; the new one is emailed.
    waiting_clinician.post(f"{base}/clinic/appointments/{appointment.id}/new-join-link",
                           data={"csrf_token": form_token(page)})
    assert client.get(f"{base}/t/{join_token}").status_code == 410
    deliver(app)
    secrets["new join link"] = re.search(r"/t/([A-Za-z0-9_.\-]+)", text_part(smtp_server.to("alex@example.com")[-1]))[1]
    assert secrets["new join link"] != join_token
    client.get(f"{base}/t/{secrets['new join link']}")
    waiting_clinician.post(f"{base}/clinic/sign-out", data={"csrf_token": form_token(page)})
    with app.app_context():
        secrets["feed"] = feed_token(alex, KEY)
    assert client.get(f"{base}/feed/{secrets['feed']}.ics").status_code == 200
    secrets["client csrf cookie"] = client.cookies.get(app.config["SESSION_COOKIE_NAME"])

    # The clinician: a wrong password, the right one, the calendar, a client's page, a link sent.
    clinician = requests.Session()
    page = clinician.get(f"{base}/clinic/sign-in")
    clinician.post(f"{base}/clinic/sign-in", data={"email": "dana@example.com", "password": PASSWORD + "x",
                                                   "csrf_token": form_token(page)})
    calendar = clinician.post(f"{base}/clinic/sign-in", data={"email": "dana@example.com", "password": PASSWORD,
                                                              "csrf_token": form_token(page)})
    assert calendar.url.startswith(f"{base}/clinic/calendar")
    secrets["clinician session"] = clinician.cookies.get(app.config["PORTAL_SESSION_COOKIE"])
    secrets["clinician csrf cookie"] = clinician.cookies.get(app.config["SESSION_COOKIE_NAME"])
    token = form_token(calendar)
    clinician.get(f"{base}/clinic/clients/{alex.id}")
    clinician.post(f"{base}/clinic/clients/{alex.id}/send-link", data={"csrf_token": token})
    clinician.post(f"{base}/clinic/appointments/{appointment.id}/extend",
                   data={"csrf_token": token, "minutes": "15"}, headers={"HX-Request": "true"})
    clinician.get(f"{base}/clinic/appointments/{appointment.id}/join")
    deliver(app)
    mail = smtp_server.to("alex@example.com")[-1]
    secrets.update({"clinician's link": re.search(r"/s/([A-Za-z0-9_\-]+)", text_part(mail))[1],
                    "clinician's code": code_from(mail)})
    # Refusals log too: a POST with no token, a link that is not one.
    clinician.post(f"{base}/clinic/sign-out")
    client.get(f"{base}/s/{secrets['first link']}x")
    clinician.post(f"{base}/clinic/sign-out", data={"csrf_token": token})
    secrets.update({"csrf token": token, "client csrf token": room_token})

    assert all(secrets.values()), [name for name, value in secrets.items() if not value]
    assert any(r.name == "werkzeug" and "/s/…" in r.getMessage() for r in caplog.records), "no request log seen"
    assert any(r.name == "peewee" for r in caplog.records), "no DEBUG database log seen"
    formatter = logging.Formatter()
    leaks = []
    for record in caplog.records:
        if record.name.startswith(TEST_TOOLS):
            continue
        line = record.getMessage() + (formatter.formatException(record.exc_info) if record.exc_info else "")
        for name, secret in secrets.items():
            if re.search(rf"(?<![A-Za-z0-9_\-]){re.escape(secret)}(?![A-Za-z0-9_\-])", line):
                leaks.append(f"{name} in {record.name}: {line[:200]}")
    assert leaks == []
    # The audit trail is a log too: it names what happened, never the secret that did it.
    from practice.models import AuditEvent
    audit = " ".join(value for row in AuditEvent.select().tuples() for value in row if isinstance(value, str))
    assert [name for name, secret in secrets.items() if secret in audit] == []


def test_an_unexpected_error_is_a_friendly_500_and_its_log_names_no_token(make_app, caplog):
    app = make_app(TESTING=False)

    def explode(token):
        raise RuntimeError("boom")

    app.add_url_rule("/s/<token>/explode", "explode", explode)
    caplog.set_level(logging.DEBUG)
    response = app.test_client().get("/s/SeCrEtToKeN123/explode")
    body = response.get_data(as_text=True)
    assert response.status_code == 500 and "Something went wrong" in body and "Traceback" not in body
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and all("SeCrEtToKeN123" not in r.getMessage() for r in caplog.records)


# ---- the database away for a while ------------------------------------------------------------

def assert_unavailable(response):  # a Flask test response
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "Temporarily unavailable" in body and "Traceback" not in body and "<h1>" in body


@pytest.mark.parametrize("database_url", ["unused://"], ids=["no-database"])
def test_postgresql_port_with_nothing_listening_answers_503_with_the_friendly_page(make_app):
    app = make_app(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/portico",
                   PORTAL_CREATE_SCHEMA=False)
    browser = app.test_client()
    for path in ("/sign-in", "/healthz", "/portal", "/clinic/calendar"):
        assert_unavailable(browser.get(path))


@pytest.mark.parametrize("database_url", ["unused://"], ids=["sqlite"])
def test_sqlite_database_that_goes_away_and_comes_back_needs_no_restart(make_app, tmp_path):
    """The database's volume unmounted (its folder moved away) and mounted again, under the
    threaded server `python portal.py` runs (a SQLite connection is per thread)."""
    folder = tmp_path / "data"
    folder.mkdir()
    app = make_app(DATABASE_URL=f"sqlite:///{folder / 'portico.db'}")
    with serving(app) as base:
        assert requests.get(f"{base}/healthz").status_code == 200
        away = folder.with_name("data-away")
        folder.rename(away)
        try:
            for path in ("/healthz", "/sign-in"):
                response = requests.get(f"{base}{path}")
                assert response.status_code == 503, path
                assert "Temporarily unavailable" in response.text and "Traceback" not in response.text
        finally:
            away.rename(folder)
        assert requests.get(f"{base}/healthz").status_code == 200
        assert requests.get(f"{base}/sign-in").status_code == 200


class Cable:
    """A TCP forwarder in front of PostgreSQL that can be unplugged (listener and every open
    connection closed, like a restart or a network cut) and plugged in again on the same port."""

    def __init__(self, target_port=5432):
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self.sockets = []
        self.listener = None
        self.lock = threading.Lock()

    def plug_in(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen()
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def unplug(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone would not
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.sockets.clear()

    def _accept(self, listener):
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def postgres_behind_a_cable(make_app, request):
    if not postgres_reachable():
        if __import__("os").environ.get("PORTICO_REQUIRE_PG"):
            pytest.fail("PostgreSQL is required here (PORTICO_REQUIRE_PG) but not reachable")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    url = request.getfixturevalue("postgres_url")
    cable = Cable()
    cable.plug_in()
    app = make_app(DATABASE_URL=url.replace("127.0.0.1:5432", f"127.0.0.1:{cable.port}"))
    yield app, cable
    cable.unplug()


@pytest.mark.parametrize("database_url", ["unused://"], ids=["postgres"])
def test_postgresql_that_goes_away_and_comes_back_needs_no_restart(postgres_behind_a_cable):
    """A cut while the portal is busy and one while it is idle: both answer 503 while it lasts,
    and the first request after it is answered normally (no stale pooled connection)."""
    app, cable = postgres_behind_a_cable
    browser = app.test_client()
    assert browser.get("/healthz").status_code == 200
    cable.unplug()
    assert_unavailable(browser.get("/healthz"))
    assert_unavailable(browser.get("/sign-in"))
    cable.plug_in()
    assert browser.get("/healthz").status_code == 200
    # Idle through the cut: the pool still holds the connection from before it.
    cable.unplug()
    cable.plug_in()
    assert browser.get("/sign-in").status_code == 200
    assert browser.get("/healthz").status_code == 200


# ---- SMTP away for a while -------------------------------------------------------------------

def test_mail_queued_while_smtp_is_down_all_leaves_once_it_is_back(make_app, traveller):
    """Six emails queued while the server is down through several ticks: when it is back,
    every one arrives, and none twice, however many more ticks run."""
    port = free_port()
    inbox = Inbox()
    app = make_app(MAIL_PORT=port, MAIL_TIMEOUT=2)
    with app.app_context():
        for n in range(6):
            queue_email(to=f"client{n}@example.com", subject=f"Note {n}", template="sign_in", kind="test",
                        client_name="Test", url="http://portal.test/", sign_in_url="http://portal.test/sign-in",
                        code="123456", lifetime="24 hours", expires="tomorrow")
    for _ in range(3):  # down: every tick fails, nothing is lost, each retry waits longer
        assert deliver(app) == 0
        traveller.shift(3600)
    assert Email.select().where(Email.status == "queued").count() == 6
    assert min(row.attempts for row in Email.select()) == 3
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        traveller.shift(3600)
        sent = deliver(app)
        for _ in range(3):
            traveller.shift(3600)
            sent += deliver(app)
    finally:
        controller.stop()
    assert sent == 6
    assert sorted(m["To"] for m in inbox.messages) == [f"client{n}@example.com" for n in range(6)]
    assert len({m["Message-ID"] for m in inbox.messages}) == 6
    assert Email.select().where(Email.status == "sent").count() == 6


def test_smtp_that_drops_mid_batch_sends_the_rest_later_and_nothing_twice(make_app, traveller):
    """The server goes away after some of a batch were sent: those are not sent again."""
    port = free_port()
    inbox = Inbox()
    app = make_app(MAIL_PORT=port, MAIL_TIMEOUT=2)
    with app.app_context():
        for n in range(5):
            queue_email(to=f"client{n}@example.com", subject=f"Note {n}", template="sign_in", kind="test",
                        client_name="Test", url="http://portal.test/", sign_in_url="http://portal.test/sign-in",
                        code="123456", lifetime="24 hours", expires="tomorrow")
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    original = inbox.handle_DATA

    async def hang_up_after_two(server, session, envelope):
        if len(inbox.messages) >= 2:
            session.transport.close()  # the server goes away mid-conversation
            return "421 going away"
        return await original(server, session, envelope)

    inbox.handle_DATA = hang_up_after_two
    try:
        first = deliver(app)
        inbox.handle_DATA = original
        traveller.shift(3600)
        later = deliver(app) + deliver(app)
    finally:
        controller.stop()
    assert first == 2 and first + later == 5
    assert sorted(m["To"] for m in inbox.messages) == [f"client{n}@example.com" for n in range(5)]


# ---- issue 16: request bodies, file parts, caching and the Host header ----------------------

def test_a_body_past_the_limit_is_refused_with_a_plain_413(client):
    token = csrf_token(client)
    response = client.post("/sign-in", data={"email": "a" * (2 * 1024 * 1024) + "@example.com", "csrf_token": token})
    assert response.status_code == 413
    assert "That is too much to send" in response.get_data(as_text=True)


def test_an_over_long_address_stops_at_the_length_check(client):
    token = csrf_token(client)
    response = client.post("/sign-in", data={"email": "a" * 300_000 + "@example.com", "csrf_token": token})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "That email address is too long." in page
    assert "does not look like an email address" not in page  # the Email check never ran


@pytest.mark.parametrize("path, fields", [
    ("/sign-in", {"email": "alex@example.com"}),
    ("/sign-in/code", {"entry": "page", "email": "alex@example.com", "code": "123456"}),
    ("/clinic/sign-in", {"email": "dana@example.com", "password": PASSWORD}),
])
def test_a_file_in_place_of_a_text_field_is_refused_with_a_400(client, path, fields):
    token = csrf_token(client)
    name = next(iter(fields))
    data = {**fields, name: (io.BytesIO(b"alex@example.com"), "address.txt"), "csrf_token": token}
    response = client.post(path, data=data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Files cannot be sent here" in response.get_data(as_text=True)


@pytest.mark.parametrize("body", [b'{"email": "alex@example.com", "code": "123456", "entry": "page"}',
                                  b'{"email": [1, {"a": null}], "password": 5}', b"[" * 5000,
                                  b'{"email": "\\ud800@example.com", "password": "\\ud800"}'],
                         ids=["an address", "wrong types", "nested past the parser", "lone surrogates"])
@pytest.mark.parametrize("path", ["/sign-in", "/sign-in/code", "/clinic/sign-in"])
def test_a_form_sent_as_json_is_refused_with_a_415(client, alex, path, body):
    """flask-wtf reads a JSON body in place of an empty form: an int reached len(), nesting the
    parser, a surrogate the database (each a 500, found by tests/test_attack.py)."""
    response = client.post(path, data=body, content_type="application/json",
                           headers={"X-CSRFToken": csrf_token(client)})
    assert response.status_code == 415
    assert "This address takes a form, not JSON." in response.get_data(as_text=True)
    assert Email.select().count() == 0


def test_every_page_answered_to_a_signed_in_session_is_not_stored(signed_in):
    problems = []
    for who, path in every_get(signed_in):
        if who == "anon" or path.startswith("/static"):
            continue
        response = signed_in["browsers"][who].get(path)
        if "no-store" not in response.headers.get("Cache-Control", ""):
            problems.append(f"{who} {path}: {response.status_code} {response.headers.get('Cache-Control')}")
    assert problems == []


def test_pages_for_nobody_signed_in_may_still_be_cached(signed_in):
    assert "no-store" not in signed_in["browsers"]["anon"].get("/sign-in").headers.get("Cache-Control", "")


def test_redirects_are_never_built_from_the_host_header(client):
    response = client.get("/clinic", headers={"Host": "evil.example"})
    assert "evil.example" not in response.headers.get("Location", "")
    assert response.status_code == 400
    assert client.get("/clinic").status_code == 308  # the portal's own host still works
