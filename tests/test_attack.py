"""The portal attacked from outside, as deployed: gunicorn (the repo's gunicorn.conf.py, threads)
and `python portal.py worker` beside it, PostgreSQL with real SMTP, and SQLite with the dev
mailbox. Every rule in the app's URL map is walked (a new route is walked without anyone
adding it here): its converters filled with the seeded practice's real ids and tokens and with
hostile values, as nobody, a client, a clinician and an admin, with and without a valid CSRF
token, with hostile input: file parts, bodies past the limit, JSON nested past the parser and
with lone surrogates, control characters, missing, repeated and unasked-for fields, bad
encodings, htmx headers, a stranger's Host, and the methods the rule does not take.

It fails on any 5xx, on a stack trace in a body or in a server's log, and on a secret (a
sign-in token, a session id, someone else's join or feed token) in a body that was not given it
or in a log. It prints how many requests it sent. test_fuzz.py is the same idea in depth
(hypothesis, over the test client, one form at a time); this is the breadth, over the wire."""
import json
import re
import sys
import threading
import time
import types
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

import pytest
import requests

from portal import create_app
from portico.config import DEFAULTS
from practice.appointments import create_appointment
from practice.clients import add_client
from practice.clock import utcnow
from practice.documents import share_documents
from practice.feeds import feed_token
from practice.links import issue_link
from practice.models import Appointment, Client, DocumentShare, DocumentTemplate, Email, Practice, db
from practice.online_changes import change_token
from practice.sessions import start_session
from practice.telehealth import telehealth_token
from tests._processes import WorkerProcess, close_test_connections
from tests.conftest import CSRF_INPUT, LINK_IN_MAIL, PASSWORD, _database_url, clinician, free_port, text_part
from tests.test_concurrent_redemption import running_server
from tests.test_deployment import SECRET_KEY, deployment_env

IDENTITIES = ("anon", "client", "clinician", "admin")
# Every rate limit the app declares, raised out of reach but still applied (its key, its
# storage): one source address sends everything here, and a 429 would stop the input short
# of the view. Read from the defaults, so a limit added later is raised too.
SERVER_CONFIG = {"TELEHEALTH_POLL_SECONDS": 0,  # the room's long-poll answers at once
                 **{name: "1000000 per minute" for name, value in DEFAULTS.items()
                    if isinstance(value, str) and " per " in value}}
# Values that have broken web apps before, one of each kind; each field gets one in turn.
HOSTILE = {
    "control": "a\r\nBcc: x@evil.example\x1b[31m\x07\u2028",
    "nul": "alex@example.com\x00",
    "long": "x" * 100_000,
    "unicode": "\u202eevil\u0301\ufeff🙂 ١٢٣ ² Ω",
    "number": "9" * 400,
    "negative": "-1",
    "markup": "<script>alert(1)</script>\"'>",
    "format": "%s%n{0}{}",
    "path": "../../etc/passwd",
    "empty": "",
    "date": "9999-12-31",
}
# The kinds sent in every field at once; each field also gets one kind of its own, in turn.
EVERY_FIELD = ("control", "nul", "long", "unicode", "markup")
# Field names tried on pages with no form of their own (query arguments, JSON endpoints).
COMMON_FIELDS = ("q", "date", "view", "next", "page", "show", "left", "entry", "email", "code", "connection",
                 "kind", "body", "to", "minutes", "template")
# A plausible value for a field a form leaves empty, so that hostile values in the other
# fields get past the first check.
PLAUSIBLE = {"email": "alex@example.com", "password": PASSWORD, "confirm": PASSWORD, "name": "Robin Lee",
             "code": "123456", "date": None, "start_time": "10:00", "end_time": "10:50", "minutes": "15"}
SECRET_SHAPE = re.compile(r"(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{43}(?![A-Za-z0-9_\-])")  # token_urlsafe(32)
CONVERTER = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
HOSTILE_PATH_VALUES = {
    "int": ["0", "2147483648", "99999999999999999999"],
    "path": ["../portal.py", "..%2F..%2Fetc%2Fpasswd", "%00", "x" * 300],
    "default": ["x", "%00", "%C2%B2.abc", "1.%C3%A9", "999999999999.abc", "..", "%ff%fe", "a" * 1000,
                "%E2%80%AEevil", "1.2.3"],
}
LEARN_FROM = {"", "crawl", "probe", "plain", "finding real values", "missing fields", "the page's own values"}
DROPPED = "a status, or the connection closed"  # what a chunked body past the limit may get
STACK_TRACE = ("Traceback (most recent call last)", 'File "/')


# ---- the deployment, seeded ------------------------------------------------------------------

@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def portal(request, tmp_path_factory, smtp_server):
    """PostgreSQL: gunicorn and a worker mailing aiosmtpd. SQLite: gunicorn and a worker, no
    SMTP server, so the dev mailbox's routes are in the map too. One of each per module."""
    tmp = tmp_path_factory.mktemp(f"attack-{request.param}")
    url = _database_url(request.param, tmp, request)
    with_smtp = request.param == "postgres"
    config = {"TESTING": True, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": url, "PORTAL_BASE_URL": "http://portal.test",
              "PORTAL_SCHEDULER": "off", "MAIL_SERVER": "127.0.0.1" if with_smtp else None,
              "MAIL_PORT": smtp_server.port, "PORTAL_CREATE_SCHEMA": False}
    app = create_app(config)  # the server's URL map, and the seeding
    smtp_server.clear()
    world = World(app)
    world.seed()
    close_test_connections()
    env = deployment_env(url, smtp_server.port)
    if not with_smtp:
        env.pop("MAIL_SERVER")
    port = free_port()
    log = tmp / "web.log"
    with ExitStack() as stack:
        worker = WorkerProcess(env, tmp / "worker.log")
        stack.callback(worker.stop)
        base = stack.enter_context(running_server(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "--workers", "2", "--threads", "4", f"portal:create_app({SERVER_CONFIG!r})"], env, log, port))
        world.base = base
        world.web_log, world.worker, world.log_dir = log, worker, tmp
        world.inbox = smtp_server if with_smtp else None
        yield world
    close_test_connections()


class World:
    """The seeded practice, a browser per identity, and what the attack found."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.sent = Counter()  # requests per identity
        self.visited = Counter()  # requests per rule (matched by the app's own URL map)
        self.reached = set()  # rules that answered something other than 404 or 405
        self.problems = []
        self.secrets_in_bodies = {}  # token-shaped strings in bodies -> where they were seen
        self.slowest = (0.0, "")
        self.browsers = {}

    # ---- seeding, and putting the seeded world back between rules

    def seed(self):
        with self.app.app_context(), db.connection_context():
            self.dana = clinician("dana@example.com", "Dana Hale", is_admin=True)
            self.kim = clinician("kim@example.com", "Kim Park")
            self.alex = add_client("alex@example.com", "Alex Morgan", clinician=self.dana)
            self.sam = add_client("sam@example.com", "Sam Rivera", clinician=self.kim)
            now = utcnow().replace(second=0, microsecond=0)
            self.window = (now - timedelta(minutes=5), now + timedelta(minutes=45))
            self.appointment = create_appointment(clinician=self.dana, client=self.alex, starts_at=self.window[0],
                                                  ends_at=self.window[1], kind="telehealth")
            self.other_appointment = create_appointment(clinician=self.kim, client=self.sam,
                                                        starts_at=now + timedelta(days=1),
                                                        ends_at=now + timedelta(days=1, minutes=50))
            templates = [t.id for t in DocumentTemplate.select().order_by(DocumentTemplate.id)]
            share_documents(self.alex, templates[:2], by=self.dana)
            share_documents(self.sam, templates[:1], by=self.kim)
            self.practice = Practice.select().dicts().get()
            Email.create(to_addr="x@example.com", subject="s", text_body="t", html_body="h", message_id="<m@x>",
                         kind="test", queued_at=now, next_attempt_at=now + timedelta(days=365))
            self.sign_in_tokens = set()
            self.session_ids = set()
            self.revive()

    def revive(self):
        """Undo what the last rule's attack did to the seeded people (a sign-out, an archive, a
        cancel, a revoked feed, a used link, new settings), so that the next rule meets them alive."""
        with self.app.app_context(), db.connection_context(), db.atomic():
            Practice.update(**{k: v for k, v in self.practice.items() if k != "id"}).execute()
            Client.update(archived_at=None).where(Client.id.in_([self.alex.id, self.sam.id])).execute()
            Appointment.update(status="scheduled", starts_at=self.window[0], ends_at=self.window[1],
                               client=self.alex, clinician=self.dana).where(
                Appointment.id == self.appointment.id).execute()
            DocumentShare.update(completed_at=None, answers_json=None, unshared_at=None, unshared_by=None).execute()
            alex = Client.get_by_id(self.alex.id)
            link = issue_link(alex, "client_request")
            self.sign_in_tokens.add(link.token)
            appointment = Appointment.get_by_id(self.appointment.id)
            self.tokens = {"sign_in": link.token, "join": telehealth_token(appointment, SECRET_KEY),
                           "feed": feed_token(alex, SECRET_KEY.encode()), "change": change_token(appointment)}
            self.ids = {
                "appointment": [self.appointment.id, self.other_appointment.id],
                "client": [self.alex.id, self.sam.id],
                "share": [s.id for s in DocumentShare.select().order_by(DocumentShare.id)],
                "template": [t.id for t in DocumentTemplate.select().order_by(DocumentTemplate.id)],
                "email": [e.id for e in Email.select().order_by(Email.id)],
            }
            self.raw_sessions = {}
            for who, person in (("client", alex), ("clinician", self.kim), ("admin", self.dana)):
                raw_id, _ = start_session(**({"client": person} if who == "client" else {"clinician": person}))
                self.raw_sessions[who] = raw_id
                self.session_ids.add(raw_id)
        close_test_connections()

    # ---- what each rule's path is filled with

    def real_values(self, converter: str | None, name: str) -> list[str]:
        """Real ids for an `<int:x_id>` (x's rows; any seeded row for a name not known here),
        every real token for anything else, the stylesheet for a path."""
        if converter == "int":
            known = self.ids.get(name.removesuffix("_id"))
            return [str(i) for i in known or sorted({i for ids in self.ids.values() for i in ids})[:6]]
        if converter == "path":
            return ["portico.css"]
        return list(self.tokens.values())

    def record(self, problem: str):
        with self.lock:
            self.problems.append(problem)


# ---- what pages offer: forms, htmx targets, data attributes ---------------------------------

class PageParts(HTMLParser):
    """The forms of a page (action -> fields with their values), the ids of elements htmx
    requests come from, data-* values (the room's connection id) and the CSRF token."""

    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms = {}
        self.triggers = set()
        self.data = {}
        self.form = None
        self.textarea = None
        self.select = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        for name, value in attrs.items():
            if name.startswith("data-") and value:
                self.data[name[5:].replace("-", "_")] = value
        hx = next((attrs[k] for k in ("hx-post", "hx-get", "hx-put", "hx-delete", "hx-patch") if k in attrs), None)
        if hx is not None and attrs.get("id"):
            self.triggers.add(attrs["id"])
        if tag == "form":
            action = attrs.get("action") or attrs.get("hx-post") or self.page_url
            self.form = self.forms.setdefault(urlsplit(urljoin(self.page_url, action)).path, [])
            if attrs.get("id"):
                self.triggers.add(attrs["id"])
        elif hx is not None and tag != "form":
            fields = self.forms.setdefault(urlsplit(urljoin(self.page_url, hx)).path, [])
            if attrs.get("name"):
                fields.append((attrs["name"], attrs.get("value", "")))
            if attrs.get("hx-vals", "").startswith("{"):
                try:
                    fields.extend((k, str(v)) for k, v in json.loads(attrs["hx-vals"]).items())
                except ValueError:
                    pass
        if self.form is None or not attrs.get("name"):
            return
        if tag == "input" and attrs.get("type") not in ("submit", "image", "reset", "file"):
            if attrs.get("type") in ("checkbox", "radio") and any(n == attrs["name"] for n, _ in self.form):
                return
            self.form.append((attrs["name"], attrs.get("value", "")))
        elif tag == "button" and attrs.get("value"):
            self.form.append((attrs["name"], attrs["value"]))
        elif tag == "textarea":
            self.textarea = [attrs["name"], ""]
            self.form.append(self.textarea)
        elif tag == "select":
            self.select = attrs["name"]
        elif tag == "option" and self.select and not any(n == self.select for n, *_ in self.form):
            self.form.append((self.select, attrs.get("value", "")))

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None


class Browser:
    """One identity's requests.Session, what it learnt from the pages it saw, and its checks."""

    def __init__(self, world: World, who: str):
        self.world, self.who = world, who
        self.http = requests.Session()
        # A connection per request: gunicorn closes one idle for its keepalive (5 s), and a
        # request sent on it just then is lost with "Remote end closed connection" (seen
        # under load), which says nothing about the portal.
        self.http.headers["Connection"] = "close"
        self.csrf = self.csrf_cookie = None
        self.forms = {}
        self.triggers = {}
        self.data = {}
        self.cookie = world.app.config["PORTAL_SESSION_COOKIE"]
        self.host = urlsplit(world.base).hostname
        self.adapter = world.app.url_map.bind("portal.test")

    def revive(self):
        """A live session for the identity (nobody: none), and a CSRF token for its cookie."""
        for cookie in [c for c in self.http.cookies if c.name == self.cookie]:
            self.http.cookies.clear(cookie.domain, cookie.path, cookie.name)
        if self.who != "anon":
            self.http.cookies.set(self.cookie, self.world.raw_sessions[self.who], domain=self.host, path="/")
        csrf_cookie = self.http.cookies.get(self.world.app.config["SESSION_COOKIE_NAME"])
        if self.csrf and csrf_cookie == self.csrf_cookie:
            return  # the token still belongs to the cookie: no page needed to get another
        self.csrf = None
        for path in ("/sign-in", "/portal", "/clinic/calendar"):
            self.request("GET", path, rule=None, follow=True)
            if self.csrf:
                break
        self.csrf_cookie = self.http.cookies.get(self.world.app.config["SESSION_COOKIE_NAME"])

    def signed_in(self) -> bool:
        return self.cookie in self.http.cookies

    def request(self, method: str, path: str, *, rule, follow=False, expect=None, label="", **options):
        """Send one request, check the answer, learn from it; None where the connection failed."""
        headers = options.pop("headers", {})
        started = time.monotonic()
        as_signed_in = self.signed_in()
        for attempt in (1, 2):
            try:
                response = self.http.request(method, self.world.base + path, headers=headers, timeout=60,
                                             allow_redirects=follow, **options)
                break
            except requests.ConnectionError as failed:
                # A server that answers before reading a body (a 413) closes the connection
                # after it; a browser sends its next request on a new one, and so does this.
                if attempt == 2 or isinstance(options.get("data"), types.GeneratorType):
                    if expect == DROPPED:
                        return None
                    self.world.record(f"{self.who} {method} {path[:120]} [{label}]: {failed!r}")
                    return None
        took = time.monotonic() - started
        with self.world.lock:
            self.world.sent[self.who] += 1 + len(response.history)
            if took > self.world.slowest[0]:
                self.world.slowest = (took, f"{self.who} {method} {path[:80]} [{label}]")
            if rule is not None:
                self.world.visited[key(rule)] += 1
                if response.status_code not in (404, 405):
                    self.world.reached.add(key(rule))
        self.check(response, method, path, label, expect, as_signed_in)
        if label in LEARN_FROM:  # parsing every page would cost more than sending it
            self.learn(response)
        return response

    def check(self, response, method, path, label, expect, as_signed_in):
        where = f"{self.who} {method} {path[:120]} [{label}]"
        body = response.text
        if response.status_code >= 500:
            self.world.record(f"{where}: {response.status_code} {body[:300]!r}")
        elif expect is not None and response.status_code not in ((400, 413) if expect == DROPPED else (expect,)):
            self.world.record(f"{where}: {response.status_code}, expected {expect}")
        if any(trace in body for trace in STACK_TRACE):
            self.world.record(f"{where}: a stack trace in the body")
        if self.is_dev_mailbox(path):
            return  # the dev mailbox shows the emails, links and all: that is what it is for
        sent = (response.request.url or "") + str(response.request.body or "")[:10_000]
        w = self.world
        shapes = set(SECRET_SHAPE.findall(body)) - set(SECRET_SHAPE.findall(sent))
        if shapes & (w.sign_in_tokens | w.session_ids):
            w.record(f"{where}: a sign-in token or session id in the body")
        if not as_signed_in or self.who == "clinician":  # kim is neither Alex's clinician nor an admin
            for name in ("join", "feed"):
                allowed = w.tokens[name] in sent or (name == "join" and w.tokens["feed"] in sent)
                if w.tokens[name] in body and not allowed:
                    w.record(f"{where}: Alex's {name} token in the body")
        with w.lock:
            for shape in shapes:
                w.secrets_in_bodies.setdefault(shape, where)

    def is_dev_mailbox(self, path):
        try:
            endpoint, _ = self.adapter.match(path.split("?")[0], "GET")
        except Exception:
            return False
        return endpoint.startswith("devmail.")

    def learn(self, response):
        if "html" not in response.headers.get("Content-Type", "") or len(response.content) > 500_000:
            return
        parts = PageParts(urlsplit(response.url).path)
        try:
            parts.feed(response.text)
        except Exception:  # a page our parser cannot read is no finding of this test
            return
        for action, fields in parts.forms.items():
            if fields or action not in self.forms:
                self.forms[action] = [tuple(field) for field in fields]
        self.triggers[urlsplit(response.url).path] = parts.triggers
        self.data.update(parts.data)
        token = CSRF_INPUT.search(response.text) or re.search(r'"X-CSRFToken": "([^"]+)"', response.text)
        if token and not self.csrf:
            self.csrf = token.group(1)


# ---- the attack -------------------------------------------------------------------------

def key(rule) -> str:
    """A rule as the URL map holds it: one path may have a rule per method (GET and POST views)."""
    return f"{rule.endpoint} {rule.rule}"


def real_fills(world: World, rule) -> list[str]:
    """The rule with real values; for several arguments, every pairing (a share of a client)."""
    pieces = CONVERTER.split(rule.rule)  # text, converter, name, text, ...
    result = [pieces[0]]
    for index in range(1, len(pieces), 3):
        options = [quote(v, safe=".") for v in world.real_values(pieces[index], pieces[index + 1])]
        result = [done + option + pieces[index + 2] for done in result for option in options]
    return result[:12]


def hostile_fills(rule) -> list[str]:
    arguments = list(CONVERTER.finditer(rule.rule))
    if not arguments:
        return []
    paths = []
    for argument in arguments:
        for value in HOSTILE_PATH_VALUES.get(argument.group("converter") or "default",
                                             HOSTILE_PATH_VALUES["default"]):
            paths.append(CONVERTER.sub(lambda m: value if m.group(0) == argument.group(0) else "1", rule.rule))
    return paths


def fields_for(browser: Browser, path: str) -> list[tuple[str, str]]:
    """The form that posts to this path as the page showed it, else the common names."""
    fields = browser.forms.get(path)
    if fields is None:
        fields = next((b.forms[path] for b in browser.world.browsers.values() if path in b.forms), None)
    if fields is None:
        fields = [(name, browser.data.get(name, "")) for name in COMMON_FIELDS]
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    good = []
    for name, value in fields:
        if name == "csrf_token":
            continue
        if not value and name in PLAUSIBLE:
            value = PLAUSIBLE[name] or tomorrow
        good.append((name, value or browser.data.get(name, "")))
    return good


def body_attacks(browser: Browser, path: str, full: bool):
    """(label, request options, expected status or None) for a method with a body."""
    good = fields_for(browser, path)
    names = [name for name, _ in good] or ["field"]
    token = {"csrf_token": browser.csrf or ""}
    csrf_header = {"X-CSRFToken": browser.csrf or "", "HX-Request": "true"}
    attacks = [("missing fields", dict(data=token), None),
               ("the page's own values", dict(data=[*good, *token.items()]), None),
               ("a file part in every field", dict(data=token, files={n: ("x.txt", b"alex@example.com") for n in names}),
                400),
               ("JSON nested past the parser", dict(data=b"[" * 5000, headers={
                   **csrf_header, "Content-Type": "application/json"}), None),
               ("no CSRF token", dict(data=good), None),
               ("a forged CSRF token", dict(data=[*good, ("csrf_token", "x")]), None)]
    if not full:
        return attacks
    kinds = list(HOSTILE.items())
    for kind in EVERY_FIELD:
        attacks.append((f"{kind} in every field", dict(data=[*((n, HOSTILE[kind]) for n in names), *token.items()]),
                        None))
    for index, name in enumerate(names[:6]):
        kind, value = kinds[index % len(kinds)]
        spoiled = [(n, value if n == name else v) for n, v in good]
        attacks.append((f"{kind} in {name}", dict(data=[*spoiled, *token.items()]), None))
    surrogate = "{" + ", ".join(f'"{n}": "\\ud800"' for n in [*names, "connection", "kind"]) + "}"
    attacks += [
        ("every field twice, and fields nobody asked for", dict(data=[
            *good, *((n, HOSTILE["markup"]) for n in names), ("id", "1"), ("is_admin", "y"),
            ("next", "//evil.example"), ("target", "http://evil.example"), *token.items()]), None),
        ("every field as a text part", dict(files={**{n: (None, v) for n, v in good}, "csrf_token": (None, token[
            "csrf_token"])}), None),
        ("a field just under the body limit", dict(data={names[0]: "x" * 900_000, **token}), None),
        ("a body past the limit", dict(data=[("x", "y" * (2 * 1024 * 1024)), *token.items()]), 413),
        # No length to refuse it by: read up to the limit, then refused (400 or 413), or the
        # connection closed while it is still being sent; never read whole.
        ("a chunked body past the limit", dict(data=(b"x=" + b"y" * 65536 for _ in range(40)), headers={
            "Content-Type": "application/x-www-form-urlencoded"}), DROPPED),
        ("bytes that are not UTF-8", dict(data=b"&".join(
            [f"csrf_token={token['csrf_token']}".encode(), *(n.encode() + b"=%ff%fe%ED%A0%80%zz\xff" for n in names)]),
            headers={"Content-Type": "application/x-www-form-urlencoded"}), None),
        ("JSON objects nested past the parser", dict(data=b'{"kind": "offer", "body": ' + b"[" * 5000 + b"}",
                                                     headers={**csrf_header, "Content-Type": "application/json"}),
         None),
        ("lone surrogates in JSON", dict(data=surrogate.encode(), headers={
            **csrf_header, "Content-Type": "application/json"}), None),
        ("the page's values as JSON", dict(data=json.dumps({**dict(good), "connection": browser.data.get(
            "connection", "")}), headers={**csrf_header, "Content-Type": "application/json"}), None),
        ("JSON of the wrong types", dict(data=json.dumps({n: [1, {"a": None}] for n in names}), headers={
            **csrf_header, "Content-Type": "application/json"}), None),
        ("a body of no known type", dict(data=b"\x00\xff hello", headers={"Content-Type": "text/plain"}), None),
    ]
    return attacks


def query_attacks(browser: Browser, path: str, full: bool):
    names = list(dict.fromkeys([n for n, _ in browser.forms.get(path, [])] + list(COMMON_FIELDS)))
    attacks = [("plain", {}, None), ("HEAD", {"method": "HEAD"}, None)]
    if not full:
        return attacks
    room = 3000 // len(names)  # gunicorn refuses a request line past 4094 bytes
    for kind in EVERY_FIELD:
        attacks.append((f"{kind} in every argument", dict(params={n: HOSTILE[kind][:room] for n in names}), None))
    kinds = [kind for kind in HOSTILE if kind not in EVERY_FIELD]
    attacks.append(("one of each kind", dict(params={n: HOSTILE[kinds[i % len(kinds)]][:room]
                                                     for i, n in enumerate(names)}), None))
    attacks += [
        ("every argument twice", dict(params=[*((n, "1") for n in names), *((n, "<b>") for n in names)]), None),
        ("bytes that are not UTF-8", dict(params=None, raw_query="&".join(f"{n}=%ff%ED%A0%80%zz" for n in names)),
         None),
        ("hostile headers", dict(headers={"Accept-Language": "zz-ZZ;q=nan, es;q=1e999, ;q=, *;q=2",
                                          "User-Agent": "é" * 3000, "If-Modified-Since": "yesterday",
                                          "Range": "bytes=999999-1", "HX-Request": "maybe"}), None),
        ("a stranger's Host", dict(headers={"Host": "evil.example"}), 400),
    ]
    for trigger in sorted(browser.triggers.get(path, ()))[:4] + ["no-such-element"]:
        attacks.append((f"htmx from #{trigger}", dict(headers={"HX-Request": "true", "HX-Trigger": trigger,
                                                              "HX-Target": trigger}), None))
    return attacks


OWNERS = ("anon", "client", "admin", "clinician")  # who gets the whole attack, of those past the door


def attack_rule(world: World, pool, rule, paths: list[str]):
    """Every method of the rule at its real paths: the plainest request as everyone; the whole
    attack as the first who got past the door, a few requests as the others; then hostile
    values in its arguments (as that first one: the view reads them), and the methods it does
    not take."""
    for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
        owner = None
        for path in paths:
            full = {who: probe_full(browser, rule, method, path) for who, browser in world.browsers.items()}
            if all(value is None for value in full.values()):
                continue  # another rule answers this path
            owner = owner or next((world.browsers[who] for who in OWNERS if full[who]), world.browsers["anon"])
            jobs = []
            for who, browser in world.browsers.items():
                is_owner = browser is owner
                attacks = (query_attacks if method == "GET" else body_attacks)(browser, path, is_owner)
                jobs += [(browser, method, path, attack) for attack in attacks]
            list(pool.map(lambda job: send(*job, rule=rule), jobs))
        owner = owner or world.browsers["anon"]
        data = {"csrf_token": owner.csrf or ""} if method != "GET" else None
        list(pool.map(lambda path: owner.request(method, path, rule=None, label="hostile path value", data=data),
                      hostile_fills(rule)))
    admin = world.browsers["admin"]
    for wrong in sorted({"GET", "POST", "PUT", "DELETE", "PATCH"} - rule.methods):
        admin.request(wrong, paths[0], rule=None, label="a method the rule does not take",
                      data={"csrf_token": admin.csrf or ""})


def send(browser: Browser, method: str, path: str, attack, *, rule):
    label, options, expect = attack
    options = dict(options)
    send_method = options.pop("method", method)
    raw_query = options.pop("raw_query", None)
    browser.request(send_method, f"{path}?{raw_query}" if raw_query else path, rule=rule, expect=expect,
                    label=label, **options)


def probe_full(browser: Browser, rule, method: str, path: str):
    """Whether this identity gets past the door here (then it gets every attack), judged by
    the plainest request; None when the path is not this rule's (another rule matched it)."""
    try:
        endpoint, _ = browser.adapter.match(path, method)
    except Exception:
        return None
    if endpoint != rule.endpoint:
        return None
    options = {} if method == "GET" else {"data": {"csrf_token": browser.csrf or ""}}
    response = browser.request(method, path, rule=rule, label="probe", **options)
    if response is None:
        return False
    location = response.headers.get("Location", "") + response.headers.get("HX-Redirect", "")
    return response.status_code not in (401, 403, 404) and "sign-in" not in location


def test_every_route_survives_the_attack(portal):
    world = portal
    browsers = world.browsers = {who: Browser(world, who) for who in IDENTITIES}
    rules = sorted(world.app.url_map.iter_rules(), key=lambda r: r.rule)
    started = time.monotonic()
    # First every page as everyone, so that the forms are known before they are attacked.
    for browser in browsers.values():
        browser.revive()
    for rule in rules:
        if "GET" in rule.methods:
            for browser in browsers.values():
                for path in real_fills(world, rule)[:3]:
                    browser.request("GET", path, rule=rule, label="crawl")
    with ThreadPoolExecutor(4) as pool:
        for rule in rules:
            world.revive()
            for browser in browsers.values():
                browser.revive()
            attack_rule(world, pool, rule, pick_real_paths(world, browsers["admin"], rule))
    took = time.monotonic() - started
    sent = sum(world.sent.values())
    print(f"\n{world.app.config['DATABASE_URL'].split(':')[0]}: {sent} requests to {len(rules)} rules in {took:.1f}s "
          f"({dict(world.sent)}); slowest {world.slowest[0]:.2f}s: {world.slowest[1]}")

    # Let the worker send what the attack queued, then read the logs.
    wait_for_outbox(world)
    logs = {"web": world.web_log.read_text(encoding="utf-8", errors="replace"), "worker": world.worker.log()}
    mailed = set()
    for message in world.inbox.messages if world.inbox else ():
        mailed.update(LINK_IN_MAIL.findall(text_part(message)))
    secrets = world.sign_in_tokens | world.session_ids | mailed | set(world.tokens.values())
    for name, text in logs.items():
        for trace in ("Traceback", "Exception on "):
            if trace in text:
                start = text.index(trace)
                world.problems.append(f"{name} log: {text[max(0, start - 300):start + 1500]}")
        if any(secret in text for secret in secrets):
            world.problems.append(f"{name} log: holds a raw token or session id")
    for token in mailed & set(world.secrets_in_bodies):
        world.problems.append(f"a mailed sign-in token in a body: {world.secrets_in_bodies[token]}")

    unvisited = [key(rule) for rule in rules if not world.visited[key(rule)]]
    assert unvisited == [], "rules no request reached"
    unreached = [key(rule) for rule in rules if key(rule) not in world.reached]
    assert unreached == [], "rules that answered only 404 or 405: give their arguments real values (World.real_values)"
    (world.log_dir / "problems.txt").write_text("\n".join(world.problems))
    assert world.problems == [], "\n".join(world.problems[:40])


def wait_for_outbox(world, seconds: float = 15):
    """Bounded: until no mail is due (sent, failed for good, or waiting for a later retry)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with world.app.app_context(), db.connection_context():
            due = Email.select().where((Email.status.in_(["queued", "sending"])) &
                                       (Email.next_attempt_at <= utcnow())).count()
        close_test_connections()
        if not due:
            return
        time.sleep(0.2)


def pick_real_paths(world, browser, rule) -> list[str]:
    """Of the rule's real fillings, the first that is not a 404 for the admin (one token fits a
    sign-in link, another a join link), else the first."""
    paths = real_fills(world, rule)
    if len(paths) <= 1:
        return paths
    method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"OPTIONS", "HEAD"})[0]
    for path in paths:
        response = browser.request(method, path, rule=rule, label="finding real values",
                                   data=None if method == "GET" else {"csrf_token": browser.csrf or ""})
        if response is not None and response.status_code != 404:
            return [path]
    return paths[:1]
