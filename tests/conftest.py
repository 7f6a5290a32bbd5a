"""Fixtures: the app on a fresh database (SQLite, and PostgreSQL where it is reachable), a
real SMTP server (aiosmtpd on loopback), and helpers that act like a client would."""
import email
import email.policy
import functools
import os
import re
import shutil
import socket
import sqlite3
import threading
from contextlib import closing
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
import pytest
import time_machine
from aiosmtpd.controller import Controller
from werkzeug.security import generate_password_hash

from portal import create_app
from practice import jobs
from practice.clients import add_client
from practice.clock import utcnow
from practice.models import DocumentTemplate, DocumentVersion, Practice, SchemaVersion, db, open_database

PG_URL = os.environ.get("PORTICO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
START = datetime(2026, 3, 2, 9, 0, 0)  # a Monday morning, UTC


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
        database = open_database(PG_URL)
        database.connect()
        database.close()
        return True
    except Exception:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """What the aiosmtpd server has received, as parsed messages."""

    def __init__(self):
        self.messages = []
        self.envelopes = []
        self.refuse = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"

    def clear(self):
        self.messages.clear()
        self.envelopes.clear()
        self.refuse.clear()

    def to(self, address):
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="session")
def smtp_server():
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    yield inbox
    controller.stop()


@pytest.fixture(scope="session")
def postgres_url():
    """A database of this test run's own on the PostgreSQL server, so that two runs (or a
    run and a benchmark) never drop each other's tables."""
    if not postgres_reachable():
        if os.environ.get("PORTICO_REQUIRE_PG"):
            pytest.fail("PostgreSQL is required here (PORTICO_REQUIRE_PG) but not reachable")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import psycopg2
    name = f"portico_test_{os.getpid()}"
    admin = psycopg2.connect(PG_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    close_connections()
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def close_connections():
    """Let go of the database the last app was built on."""
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    elif db.obj is not None and not db.is_closed():
        db.close()


def build_schema(url: str) -> None:
    """What a new database gets from the app's start: create_schema, for real."""
    create_app({"TESTING": True, "SECRET_KEY": "test-secret-key", "DATABASE_URL": url, "PORTAL_SCHEDULER": "off"})
    close_connections()


# ---- each test's database: the schema built once a run, copied for each test ---------------
#
# Building the schema costs more than most tests, so it is built once a run, for real, and each
# test gets a copy. A test of building it (migrations, what a new database is seeded with) is
# marked `builds_schema` and gets an empty database instead, as every test once did.

SCHEMA_COPY = pytest.StashKey[str]()  # the url of the copy a test was given


@pytest.fixture(scope="session")
def sqlite_schema(tmp_path_factory) -> Path:
    """A SQLite file holding the schema, built once a run; each test gets a copy of it."""
    path = tmp_path_factory.mktemp("schema") / "portico.db"
    build_schema(f"sqlite:///{path}")
    with closing(sqlite3.connect(path)) as connection:  # all of it in the one file, to be copied
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


class PostgresSchema:
    """This run's PostgreSQL database, put back for each test to what create_schema leaves in a
    new database. The schema is built once, for real, in a template database of its own. Each
    test then gets the test database emptied and given the template's rows and sequence values
    again, in one transaction; if the test before changed the schema itself (a migration test,
    a restore), or still holds locks, it gets a new copy of the template instead."""

    SHAPE = """SELECT md5(concat(
        (SELECT string_agg(concat_ws(' ', table_name, column_name, data_type, is_nullable, column_default),
                           ',' ORDER BY table_name, ordinal_position)
         FROM information_schema.columns WHERE table_schema = 'public'),
        (SELECT string_agg(indexdef, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'),
        (SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ',' ORDER BY conname)
         FROM pg_constraint WHERE connamespace = 'public'::regnamespace)))"""

    def __init__(self, url: str):
        import psycopg2
        self.connect, self.Error = psycopg2.connect, psycopg2.Error
        self.url, self.name = url, url.rsplit("/", 1)[1]
        self.template = f"{self.name}_schema"
        self.admin = psycopg2.connect(PG_URL)
        self.admin.autocommit = True
        self.connection = None  # to the test database, while it has the template's schema
        self._admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)", f"CREATE DATABASE {self.template}")
        template_url = url.rsplit("/", 1)[0] + "/" + self.template
        build_schema(template_url)
        with closing(psycopg2.connect(template_url)) as template, template.cursor() as cursor:
            self.shape = self._shape(cursor)
            cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            self.tables = [table for (table,) in cursor.fetchall()]
            self.rows = []  # (INSERT statement, rows) per table that create_schema put rows in
            for table in self.tables:
                cursor.execute(f'SELECT * FROM "{table}"')
                rows = cursor.fetchall()
                if rows:
                    columns = ", ".join(f'"{column.name}"' for column in cursor.description)
                    values = ", ".join(["%s"] * len(cursor.description))
                    self.rows.append((f'INSERT INTO "{table}" ({columns}) VALUES ({values})', rows))
            cursor.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
            self.sequences = []
            for (sequence,) in cursor.fetchall():
                cursor.execute(f'SELECT last_value, is_called FROM "{sequence}"')
                self.sequences.append((sequence, *cursor.fetchone()))

    def _admin(self, *statements):
        with self.admin.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def _shape(self, cursor) -> str:
        cursor.execute(self.SHAPE)
        return cursor.fetchone()[0]

    def _drop(self):
        close_connections()
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def empty(self) -> str:
        """An empty database, for a test of building the schema."""
        self._drop()
        self._admin(f"CREATE DATABASE {self.name}")
        return self.url

    def fresh(self) -> str:
        """The database as create_schema leaves a new one."""
        close_connections()
        if self.connection is None or not self._refill():
            self._drop()
            self._admin(f"CREATE DATABASE {self.name} TEMPLATE {self.template}")
            self.connection = self.connect(self.url)
        return self.url

    def _refill(self) -> bool:
        """Empty every table and put the template's rows and sequence values back; False
        (nothing changed) where the schema is not the template's any more, or a lock is held."""
        try:
            with self.connection, self.connection.cursor() as cursor:  # one transaction
                if self._shape(cursor) != self.shape:
                    return False
                cursor.execute("SET LOCAL lock_timeout = '2s'")
                cursor.execute("SET LOCAL session_replication_role = replica")  # no foreign key triggers
                for table in self.tables:
                    cursor.execute(f'DELETE FROM "{table}"')
                for insert, rows in self.rows:
                    cursor.executemany(insert, rows)
                for sequence, last_value, is_called in self.sequences:
                    cursor.execute("SELECT setval(%s, %s, %s)", (f'"{sequence}"', last_value, is_called))
            return True
        except self.Error:
            return False

    def close(self):
        self._drop()
        self._admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")
        self.admin.close()


@pytest.fixture(scope="session")
def postgres_schema(postgres_url):
    schema = PostgresSchema(postgres_url)
    yield schema
    schema.close()


def _database_url(kind, tmp_path, request):
    builds_schema = request.node.get_closest_marker("builds_schema") is not None
    if kind == "sqlite":
        path = tmp_path / "portico.db"
        if not builds_schema:
            shutil.copyfile(request.getfixturevalue("sqlite_schema"), path)
        url = f"sqlite:///{path}"
    else:
        schema = request.getfixturevalue("postgres_schema")
        url = schema.empty() if builds_schema else schema.fresh()
    if not builds_schema:
        request.node.stash[SCHEMA_COPY] = url
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    return _database_url(request.param, tmp_path, request)


def as_if_built_now(app) -> None:
    """create_schema stamps the rows it seeds with the time it runs: so does a copy of them, for
    the first app of a test, which is when create_schema would have run."""
    now = utcnow()
    with app.app_context(), db.connection_context(), db.atomic():
        SchemaVersion.update(applied_at=now).execute()
        Practice.update(created_at=now).execute()
        DocumentTemplate.update(created_at=now, updated_at=now).execute()
        DocumentVersion.update(created_at=now).execute()


def without_second_factor(app) -> None:
    """A new practice requires clinicians' second factor; tests of other things sign in with
    the password alone, at a practice whose admin turned that off (a setting a practice may
    choose). tests/test_second_factor.py keeps the default (`second_factor_required`)."""
    with app.app_context(), db.connection_context():
        Practice.update(require_second_factor=False).execute()


class CompiledTemplates(jinja2.BytecodeCache):
    """Every app has a Jinja environment of its own, which compiles each template again; the
    tests' apps share what was compiled, in memory (Jinja checks it against the source)."""

    def __init__(self):
        self.compiled = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


@pytest.fixture
def make_app(database_url, smtp_server, tmp_path, request):
    """Build an app on this test's database; extra config overrides the defaults. The first
    app on a copy of the schema does not build it again: the copy is what it would build."""
    smtp_server.clear()
    built = []

    def make(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "DATABASE_URL": database_url,
            "PORTAL_BASE_URL": "http://portal.test",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp_server.port,
            "MAIL_TIMEOUT": 5,
            "MAIL_DEFAULT_SENDER": "portal@portal.test",
            "PORTAL_SCHEDULER": "off",
        }
        config.update(overrides)
        # The test client's requests carry Host: localhost unless a test names another, and a
        # test's own server (tests.test_hardening.serving) is reached on 127.0.0.1.
        config.setdefault("TRUSTED_HOSTS", [urlsplit(config["PORTAL_BASE_URL"]).hostname, "localhost", "127.0.0.1"])
        copied = not built and config["DATABASE_URL"] == request.node.stash.get(SCHEMA_COPY, None)
        if copied:
            config.setdefault("PORTAL_CREATE_SCHEMA", False)
        app = create_app(config)
        app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
        if copied and not config["PORTAL_CREATE_SCHEMA"]:
            as_if_built_now(app)
        schema_there = copied or config.get("PORTAL_CREATE_SCHEMA", True)
        if not built and schema_there and request.node.get_closest_marker("second_factor_required") is None:
            without_second_factor(app)
        built.append(app)
        return app

    yield make
    close_connections()


@pytest.fixture
def app(make_app):
    # No app context is pushed here: requests would share its `g` (and flask-login's user).
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def traveller():
    """Time frozen at START; `traveller.shift(seconds)` moves it, never a sleep."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def alex(app):
    return add_client("alex@example.com", "Alex Morgan")


def deliver(app) -> int:
    """What the scheduler's mail job does at its next tick (in the app's context, as the
    scheduler runs it: a test may have built more than one app)."""
    with app.app_context():
        return jobs.mail_tick()


CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path="/sign-in") -> str:
    html = client.get(path).get_data(as_text=True)
    match = CSRF_INPUT.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def ask_for_link(client, address, **headers):
    return client.post("/sign-in", data={"email": address, "csrf_token": csrf_token(client)}, headers=headers)


LINK_IN_MAIL = re.compile(r"http://portal\.test/s/([A-Za-z0-9_\-]+)")
CODE_IN_MAIL = re.compile(r"^\s+(\d{6})\s*$", re.M)


def text_part(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def token_from(message) -> str:
    return LINK_IN_MAIL.search(text_part(message)).group(1)


def code_from(message) -> str:
    return CODE_IN_MAIL.search(text_part(message)).group(1)


def mailed_link(app, client, smtp_server, address="alex@example.com") -> str:
    """Ask for a link as the client would and return the token from the email that arrives."""
    before = len(smtp_server.to(address))
    ask_for_link(client, address)
    deliver(app)
    messages = smtp_server.to(address)
    assert len(messages) == before + 1
    return token_from(messages[-1])


def continue_with(client, token):
    """Open the link and press "Continue to the portal"."""
    page = client.get(f"/s/{token}")
    match = CSRF_INPUT.search(page.get_data(as_text=True))
    token_value = match.group(1) if match else csrf_token(client)
    return client.post(f"/s/{token}", data={"csrf_token": token_value})


PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash(address: str) -> str:
    """PASSWORD's scrypt hash for one clinician, made once a run: scrypt is slow on purpose, and
    a clinician a test starts with need not pay for it every time (create_clinician's own
    tests, the commands' and the setup page's, still make theirs)."""
    return generate_password_hash(PASSWORD, method="scrypt")


def clinician(address: str, name: str, *, is_admin: bool = False):
    """The row create_clinician makes for PASSWORD, with the hash made once a run."""
    from practice.models import Clinician
    return Clinician.create(email=address, name=name, is_admin=is_admin, created_at=utcnow(),
                            password_hash=password_hash(address))


@pytest.fixture
def dana(app):
    """The practice's admin clinician."""
    return clinician("dana@example.com", "Dana Hale", is_admin=True)


@pytest.fixture
def kim(app):
    """A clinician who is not an admin."""
    return clinician("kim@example.com", "Kim Park")


def clinic_sign_in(client, email, password=PASSWORD, *, code=None):
    """Sign a clinician in through the real form; returns the POST's response. With `code`
    (from their app, or a recovery code), the second step too, when the password leads there."""
    token = csrf_token(client, "/clinic/sign-in")
    response = client.post("/clinic/sign-in", data={"email": email, "password": password, "csrf_token": token})
    if code is not None and response.headers.get("Location") == "/clinic/sign-in/second-factor":
        token = csrf_token(client, "/clinic/sign-in/second-factor")
        response = client.post("/clinic/sign-in/second-factor", data={"code": code, "csrf_token": token})
    return response


def clinic_csrf(client) -> str:
    """A CSRF token for a signed-in clinician's forms (the calendar page carries one)."""
    html = client.get("/clinic/calendar").get_data(as_text=True)
    match = re.search(r'"X-CSRFToken": "([^"]+)"', html) or CSRF_INPUT.search(html)
    assert match, "no CSRF token on /clinic/calendar"
    return match.group(1)


# ---- browser tests: headless Debian Chromium driven by Playwright -------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def live_portal_config():
    """Extra configuration for `live_portal`; a test module overrides this fixture."""
    return {}


@pytest.fixture
def live_portal_host():
    """The host of `live_portal`'s base URL (it listens on 127.0.0.1 either way); a test module
    overrides this fixture: passkeys need a name, `localhost`."""
    return "127.0.0.1"


@pytest.fixture
def live_portal(make_app, live_portal_config, live_portal_host):
    """The portal on a real port, served from a thread, so the links it emails open in the
    browser: (app, base_url)."""
    from werkzeug.serving import make_server
    port = free_port()
    base_url = f"http://{live_portal_host}:{port}"
    app = make_app(PORTAL_BASE_URL=base_url, **live_portal_config)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-portal", daemon=True)
    thread.start()
    yield app, base_url
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def chromium_args():
    """Extra Chromium switches (a fake camera, say); a test module overrides this fixture."""
    return []


@pytest.fixture
def chromium(chromium_args):
    """Debian's Chromium (never a browser Playwright downloads); skipped where it is not
    installed, unless PORTICO_REQUIRE_BROWSER says it must be there."""
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("PORTICO_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is required here (PORTICO_REQUIRE_BROWSER) but missing")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS + chromium_args)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """One page in a fresh desktop-sized context."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()
