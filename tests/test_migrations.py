"""Schema upgrades: `python portal.py init-db` brings an older database up to this version,
with its data, once, on SQLite and on PostgreSQL; a failing step changes nothing.

The older database is the shape the first builds left behind (recorded as version 1): the
repository's own instance/portico.db from then had these tables, without these columns.
"""
import os
import subprocess
import sys
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from peewee import CharField, Table
from playhouse.migrate import SchemaMigrator, migrate

from portal import create_app
from practice import migrations
from practice import jobs
from practice.appointments import create_appointment
from practice.clients import add_client, find_clients
from practice.clinicians import create_clinician
from practice.clock import utcnow
from practice.models import (AuditEvent, Client, Clinician, Email, JoinLinkNonce, Link, Practice, Reminder, PracticeLogo, RoomSeat,
                             SchemaVersion, Session, SignInRequest, create_schema, db, is_sqlite, open_database)
from tests.conftest import continue_with, csrf_token, mailed_link

pytestmark = pytest.mark.builds_schema  # each test starts from an empty database, not a copy of the schema

REPO = Path(__file__).resolve().parent.parent
EARLY_TABLES = [Practice, Clinician, Client, Link, SignInRequest, Email, Session, AuditEvent, SchemaVersion]
LATER_COLUMNS = {
    "practice": ["clinician_idle_minutes", "telehealth_grace_minutes", "telehealth_early_minutes",
                 "quiet_hours_start", "quiet_hours_end", "reminder_offsets", "set_up_at", "room_entry",
                 "logo_version", "require_second_factor",
                 "phone", "online_change_hours", "online_change_weeks", "online_change_approval", "buffer_minutes"],
    "clinician": ["totp_secret", "totp_confirmed_at", "totp_last_step"],
    "client": ["phone", "clinician_id", "feed_nonce", "language"],
    "auditevent": ["clinician_id"],
    "email": ["ics"],
}
THEN = datetime(2026, 1, 5, 9, 0)


def _close(database=None):
    for each in (database, db.obj):
        if each is None:
            continue
        if hasattr(each, "close_all"):
            each.close_all()
        elif not each.is_closed():
            each.close()


def build_early_version_1(url: str) -> None:
    """The early tables and columns, with a practice, a clinician, a client and some history."""
    database = open_database(url)
    with database.bind_ctx(EARLY_TABLES):
        database.create_tables(EARLY_TABLES)
        sqlite = url.startswith("sqlite")
        if sqlite:
            database.execute_sql("PRAGMA foreign_keys = OFF")  # the tables are rebuilt to drop columns
        migrator = SchemaMigrator.from_database(database)
        migrate(*[migrator.drop_column(table, column, **({"legacy": True} if sqlite else {}))
                  for table, columns in LATER_COLUMNS.items() for column in columns])

        def insert(table, **row):
            return Table(table).bind(database).insert(**row).execute()

        insert("practice", id=1, name="Riverside Counselling", timezone="Europe/London", contact_email="office@example.com",
               sign_in_link_minutes=1440, invitation_link_hours=72, client_idle_minutes=15, client_absolute_hours=12,
               created_at=THEN)
        insert("clinician", id=1, email="dana@example.com", name="Dana Hale", password_hash="scrypt$x", is_admin=True,
               created_at=THEN)
        insert("client", id=1, email="alex@example.com", name="Alex Morgan", timezone="Europe/London", created_at=THEN)
        insert("email", to_addr="alex@example.com", subject="Your sign-in link", text_body="", html_body="",
               message_id="<early@portal.test>", kind="sign_in", client_id=1, status="sent", queued_at=THEN,
               next_attempt_at=THEN, attempts=1, sent_at=THEN, transport="smtp")
        insert("auditevent", at=THEN, kind="link_issued", client_id=1, detail="client_request")
        insert("schemaversion", version=1, applied_at=THEN)
    _close(database)


def init_db(url: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "PORTAL_"))}
    env.update(DATABASE_URL=url, SECRET_KEY="test-secret-key")
    return subprocess.Popen([sys.executable, "portal.py", "init-db"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_init_db(*urls: str) -> list[str]:
    """`python portal.py init-db` once per url, all at the same time; each must succeed."""
    processes = [init_db(url) for url in urls]
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output
        assert "Database ready" in output
    return outputs


def steps_from(version: int) -> list[int]:
    """The versions recorded after upgrading a database `version` left: it, and each step since."""
    return list(range(version, migrations.SCHEMA_VERSION + 1))


@contextmanager
def left_by_version(version: int, make_app):
    """Inside: a new database, to take back to what `version` left (drop what came later);
    after: recorded as that version, and closed, as an older Portico would leave it."""
    app = make_app()
    with app.app_context(), db.connection_context():
        yield
        SchemaVersion.delete().execute()
        SchemaVersion.create(version=version, applied_at=THEN)
    _close()


def schema_of(url: str) -> dict:
    """Every table's columns (and whether they take NULL), indexes and foreign keys."""
    database = open_database(url)
    try:
        return {table: ({c.name: c.null for c in database.get_columns(table)},
                        {(tuple(i.columns), i.unique) for i in database.get_indexes(table)},
                        {(f.column, f.dest_table, f.dest_column) for f in database.get_foreign_keys(table)})
                for table in database.get_tables()}
    finally:
        _close(database)


_FRESH = {}


@pytest.fixture
def fresh_schema(database_url, tmp_path):
    """The schema a new database gets from this Portico, on the same engine (made once a run)."""
    kind = database_url.split(":", 1)[0]
    if kind not in _FRESH:
        if kind == "sqlite":
            _FRESH[kind] = _schema_of_new_database(f"sqlite:///{tmp_path / 'fresh.db'}")
        else:
            name = database_url.rsplit("/", 1)[1] + "_fresh"
            admin = psycopg2.connect(database_url)
            admin.autocommit = True
            try:
                with admin.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS {name}")
                    cursor.execute(f"CREATE DATABASE {name}")
                _FRESH[kind] = _schema_of_new_database(database_url.rsplit("/", 1)[0] + "/" + name)
            finally:
                with admin.cursor() as cursor:
                    cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.close()
    return _FRESH[kind]


def _schema_of_new_database(url: str) -> dict:
    create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": url, "PORTAL_SCHEDULER": "off"})
    _close()
    return schema_of(url)


def versions(url: str) -> list[int]:
    database = open_database(url)
    try:
        with database.bind_ctx([SchemaVersion]):
            return [row.version for row in SchemaVersion.select().order_by(SchemaVersion.version)]
    finally:
        _close(database)


def test_init_db_upgrades_an_early_version_1_database_keeping_its_data(
        database_url, fresh_schema, make_app, smtp_server):
    build_early_version_1(database_url)
    assert schema_of(database_url) != fresh_schema

    run_init_db(database_url)

    assert schema_of(database_url) == fresh_schema
    app = make_app(PORTAL_CREATE_SCHEMA=False)  # what init-db left, untouched by the app's own start
    assert versions(database_url) == steps_from(1)
    with app.app_context(), db.connection_context():
        practice = Practice.current()
        assert (practice.name, practice.timezone, practice.contact_email) == (
            "Riverside Counselling", "Europe/London", "office@example.com")
        assert (practice.clinician_idle_minutes, practice.telehealth_grace_minutes, practice.reminder_offsets,
                practice.quiet_hours_start) == (30, 30, "72,24", "21:00")
        assert not practice.require_second_factor  # an upgraded practice turns it on itself
        alex = Client.by_email("alex@example.com")
        assert (alex.name, alex.phone, alex.clinician_id, alex.feed_nonce, alex.language) == (
            "Alex Morgan", "", None, None, "en")
        assert Clinician.get(Clinician.email == "dana@example.com").is_admin
        assert Email.get(Email.message_id == "<early@portal.test>").ics is None
        assert AuditEvent.select().where(AuditEvent.client == alex).count() == 1
        # The client search's index was made and filled from the clients already there.
        dana = Clinician.get(Clinician.email == "dana@example.com")
        assert [c.name for c in find_clients(dana, "MORG")] == ["Alex Morgan"]
    # The upgraded database serves a whole sign-in, through the tables and columns it gained.
    client = app.test_client()
    token = mailed_link(app, client, smtp_server)
    assert continue_with(client, token).headers["Location"] == "/portal"
    assert "Hello, Alex Morgan" in client.get("/portal").get_data(as_text=True)


def test_processes_starting_together_upgrade_once_and_a_restart_changes_nothing(
        database_url, fresh_schema, make_app):
    build_early_version_1(database_url)
    run_init_db(database_url, database_url)  # two at once: one upgrades, the other waits, then finds it done
    upgraded = schema_of(database_url)
    assert upgraded == fresh_schema
    assert versions(database_url) == steps_from(1)

    make_app()  # a start runs the upgrade again: nothing to do

    _close()
    assert schema_of(database_url) == upgraded
    assert versions(database_url) == steps_from(1)


def _broken_step(migrator):
    migrations.add_columns(migrator, "client", half_done=CharField(null=True))
    raise RuntimeError("the last step failed half-way")


def test_a_failing_step_rolls_the_whole_upgrade_back(database_url, make_app, monkeypatch):
    build_early_version_1(database_url)
    early = schema_of(database_url)
    broken = migrations.Step(migrations.SCHEMA_VERSION + 1, "broken", _broken_step)
    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, broken])
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", broken.version)

    with pytest.raises(RuntimeError, match="half-way"):
        make_app()  # the app's start runs the same upgrade as init-db

    _close()
    assert schema_of(database_url) == early  # the earlier steps' columns too: one transaction
    assert versions(database_url) == [1]
    with db.connection_context():
        assert Client.select(Client.name).where(Client.email == "alex@example.com").scalar() == "Alex Morgan"
        if is_sqlite():
            assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_new_database_records_the_current_version_and_a_newer_one_is_refused(database_url, make_app):
    app = make_app()
    assert versions(database_url) == [migrations.SCHEMA_VERSION]
    with app.app_context(), db.connection_context():
        SchemaVersion.create(version=migrations.SCHEMA_VERSION + 1, applied_at=THEN)
        with pytest.raises(migrations.SchemaError, match="newer than this Portico"):
            create_schema()


def build_version_2(make_app) -> None:
    """A database as the last version-2 Portico left it: reminders without a claim lease,
    one of them pending for an appointment two days out."""
    with left_by_version(2, make_app):
        dana = create_clinician("dana@example.com", "Dana Hale", "a long password 1234", is_admin=True)
        Practice.update(reminder_offsets="24").execute()
        start = utcnow().replace(second=0, microsecond=0) + timedelta(days=2)
        create_appointment(clinician=dana, client=add_client("alex@example.com", "Alex Morgan"),
                           starts_at=start, ends_at=start + timedelta(minutes=50), kind="telehealth")
        migrator = SchemaMigrator.from_database(db.obj)
        migrate(migrator.drop_column("reminder", "claimed_until"), migrator.drop_column("practice", "logo_version"))


def test_init_db_upgrades_a_version_2_database_with_a_reminder_lease_keeping_its_reminders(
        database_url, fresh_schema, make_app, smtp_server):
    build_version_2(make_app)
    assert "claimed_until" not in schema_of(database_url)["reminder"][0]

    run_init_db(database_url)

    assert schema_of(database_url) == fresh_schema
    assert versions(database_url) == steps_from(2)
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    with app.app_context(), db.connection_context():
        (reminder,) = Reminder.select()
        assert (reminder.status, reminder.claimed_until) == ("pending", None)
        Reminder.update(due_at=utcnow() - timedelta(minutes=1)).execute()
    # The upgraded database claims and sends its reminder.
    assert jobs.reminder_tick() == 1 and jobs.mail_tick() == 1
    assert [m["Subject"].split(":")[0] for m in smtp_server.messages] == ["Reminder"]


def build_version_3(make_app) -> None:
    """A database as the last version-3 Portico left it: no retired join-link nonces, no
    waiting room; an appointment whose client has been in its room."""
    with left_by_version(3, make_app):
        dana = create_clinician("dana@example.com", "Dana Hale", "a long password 1234", is_admin=True)
        start = utcnow().replace(second=0, microsecond=0) + timedelta(days=2)
        appointment = create_appointment(clinician=dana, client=add_client("alex@example.com", "Alex Morgan"),
                                         starts_at=start, ends_at=start + timedelta(minutes=50), kind="telehealth")
        RoomSeat.create(appointment=appointment, role="client", key_hash="k", connection="c", entered_at=start,
                        last_seen_at=start)
        migrator = SchemaMigrator.from_database(db.obj)
        migrate(migrator.drop_column("practice", "room_entry"),
                migrator.drop_column("joinlinknonce", "retired_at"),
                migrator.drop_column("joinlinknonce", "retired_because"),
                migrator.drop_column("roomseat", "waiting_since"),
                migrator.drop_column("roomseat", "admitted_at"))


def build_version_4(make_app) -> None:
    """A database as the last version-4 Portico left it: a plaintext subject in a VARCHAR(255)."""
    with left_by_version(4, make_app):
        add_client("alex@example.com", "Alex Morgan")
        if not is_sqlite():
            db.execute_sql("ALTER TABLE email ALTER COLUMN subject TYPE VARCHAR(255)")
        db.execute_sql("INSERT INTO email (to_addr, subject, text_body, html_body, message_id, kind, status, "
                       "queued_at, next_attempt_at, attempts) VALUES ('alex@example.com', 'Before sealing', '', '', "
                       "'<v3@portal.test>', 'reminder', 'sent', '2026-01-05 09:00:00', '2026-01-05 09:00:00', 1)")


def test_init_db_upgrades_a_version_3_database_keeping_both_connect_when_both_are_there(
        database_url, fresh_schema, make_app):
    build_version_3(make_app)

    run_init_db(database_url)

    assert schema_of(database_url) == fresh_schema
    assert versions(database_url) == steps_from(3)
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    with app.app_context(), db.connection_context():
        assert Practice.current().room_entry == "together"  # an existing practice keeps today's behaviour
        (nonce,) = JoinLinkNonce.select()
        assert (nonce.retired_at, nonce.retired_because) == (None, None)
        (seat,) = RoomSeat.select()
        assert (seat.admitted_at, seat.waiting_since) == (None, None)


def test_init_db_upgrades_a_version_4_database_to_sealed_subjects_of_any_length(
        database_url, make_app, smtp_server):
    build_version_4(make_app)

    run_init_db(database_url)

    assert versions(database_url) == steps_from(4)
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    with app.app_context(), db.connection_context():
        assert Email.get(Email.message_id == "<v3@portal.test>").subject == "Before sealing"  # read as it was
        from practice.mail import queue_email
        queue_email(to="alex@example.com", subject="A long subject " + "x" * 200, template="sign_in", kind="test",
                    client_name="Alex", url="u", sign_in_url="u", code="123456", lifetime="1 hour", expires="")
        (stored,) = db.execute_sql("SELECT subject FROM email WHERE kind = 'test'").fetchone()
        assert stored.startswith("aesgcm1:") and len(stored) > 255


def test_init_db_upgrades_a_version_5_database_to_a_practice_logo_keeping_the_practice(
        database_url, fresh_schema, make_app):
    with left_by_version(5, make_app):
        Practice.update(name="Willow Street Therapy").execute()
        migrate(SchemaMigrator.from_database(db.obj).drop_column("practice", "logo_version"))
        db.drop_tables([PracticeLogo])
    assert "logo_version" not in schema_of(database_url)["practice"][0]

    run_init_db(database_url)

    assert schema_of(database_url) == fresh_schema
    assert versions(database_url) == steps_from(5)
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    with app.app_context(), db.connection_context():
        practice = Practice.current()
        assert (practice.name, practice.logo_version) == ("Willow Street Therapy", "")
        assert PracticeLogo.select().count() == 0


def build_version_6(make_app) -> None:
    """A database as the last version-6 Portico left it: clinicians without a second factor's
    columns, the practice without the requirement, passkey challenges without a clinician."""
    with left_by_version(6, make_app):
        create_clinician("dana@example.com", "Dana Hale", "a long password 1234", is_admin=True)
        migrator = SchemaMigrator.from_database(db.obj)
        sqlite = {"legacy": True} if is_sqlite() else {}
        migrate(migrator.drop_column("practice", "require_second_factor", **sqlite),
                *[migrator.drop_column("clinician", column, **sqlite)
                  for column in ("totp_secret", "totp_confirmed_at", "totp_last_step")],
                migrator.drop_column("passkeychallenge", "clinician_id", **sqlite))


def test_init_db_upgrades_a_version_6_database_with_second_factor_columns_keeping_it_off(
        database_url, fresh_schema, make_app):
    build_version_6(make_app)
    assert "totp_secret" not in schema_of(database_url)["clinician"][0]

    run_init_db(database_url)

    assert schema_of(database_url) == fresh_schema
    assert versions(database_url) == steps_from(6)
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    with app.app_context(), db.connection_context():
        # Clinicians sign in as they did until an admin turns the requirement on.
        assert not Practice.current().require_second_factor
        dana = Clinician.get(Clinician.email == "dana@example.com")
        assert (dana.totp_secret, dana.totp_confirmed_at, dana.totp_last_step) == (None, None, None)
    client = app.test_client()
    response = client.post("/clinic/sign-in", data={"email": "dana@example.com", "password": "a long password 1234",
                                                     "csrf_token": csrf_token(client, "/clinic/sign-in")})
    assert response.headers["Location"] == "/clinic/calendar"


ONLINE_CHANGE_COLUMNS = ("phone", "online_change_hours", "online_change_weeks", "online_change_approval",
                         "buffer_minutes")


def build_version_7(make_app) -> None:
    """A database as the last version-7 Portico left it: no online-change rules on the
    practice, no working hours, dates off or online changes."""
    with left_by_version(7, make_app):
        Practice.update(name="Riverside Counselling", online_change_hours=48).execute()
        sqlite = is_sqlite()
        migrator = SchemaMigrator.from_database(db.obj)
        migrate(*[migrator.drop_column("practice", column, **({"legacy": True} if sqlite else {}))
                  for column in ONLINE_CHANGE_COLUMNS])
        for table in ("onlinechange", "dayoff", "workinghours"):
            db.execute_sql(f'DROP TABLE "{table}"')


def test_init_db_upgrades_a_version_7_database_with_the_online_change_rules_at_their_defaults(
        database_url, fresh_schema, make_app):
    build_version_7(make_app)
    assert "online_change_hours" not in schema_of(database_url)["practice"][0]

    run_init_db(database_url)

    assert schema_of(database_url) == fresh_schema
    assert versions(database_url) == steps_from(7)
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    with app.app_context(), db.connection_context():
        practice = Practice.current()
        assert practice.name == "Riverside Counselling"
        assert (practice.online_change_hours, practice.online_change_weeks, practice.online_change_approval,
                practice.buffer_minutes, practice.phone) == (24, 8, False, 0, "")


def build_version_8(make_app) -> None:
    """A database as the last version-8 Portico left it: clients without a language."""
    with left_by_version(8, make_app):
        add_client("alex@example.com", "Alex Morgan")
        sqlite = is_sqlite()
        if sqlite:
            db.execute_sql("PRAGMA foreign_keys = OFF")  # the table is rebuilt to drop the column
        migrate(SchemaMigrator.from_database(db.obj).drop_column("client", "language",
                                                                 **({"legacy": True} if sqlite else {})))
        if sqlite:
            db.execute_sql("PRAGMA foreign_keys = ON")


def test_init_db_gives_a_version_8_databases_clients_english_and_keeps_them(
        database_url, fresh_schema, make_app, smtp_server):
    build_version_8(make_app)
    assert "language" not in schema_of(database_url)["client"][0]

    run_init_db(database_url)

    assert schema_of(database_url) == fresh_schema
    assert versions(database_url) == steps_from(8)
    app = make_app(PORTAL_CREATE_SCHEMA=False)
    with app.app_context(), db.connection_context():
        assert Client.by_email("alex@example.com").language == "en"
    client = app.test_client()
    continue_with(client, mailed_link(app, client, smtp_server))
    assert "Hello, Alex Morgan" in client.get("/portal").get_data(as_text=True)
