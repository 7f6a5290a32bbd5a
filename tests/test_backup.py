"""Backups and restores: `python portal.py backup` and `restore` on SQLite (SQLite's online
backup API), and on PostgreSQL the pg_dump and pg_restore commands that docs/operations.md gives."""
import shutil
import sqlite3
import subprocess
from datetime import timedelta

import pytest
from click.testing import CliRunner

from portal import cli
from practice.appointments import cancel_appointment, create_appointment
from practice.clients import add_client
from practice.clock import utcnow
from practice.migrations import SCHEMA_VERSION
from practice.models import Appointment, Client, Practice, SchemaVersion, db

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _close():
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    elif not db.is_closed():
        db.close()


@pytest.fixture
def run(database_url, monkeypatch):
    """`python portal.py ...` against this test's database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", "test-secret-key")

    def invoke(*args, input=None):
        result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
        _close()
        return result

    return invoke


def seed(app, clinician):
    """A named practice, a client and her appointment next week."""
    with app.app_context():
        Practice.update(name="Riverside Counselling").execute()
        alex = add_client("alex@example.com", "Alex Morgan")
        start = utcnow().replace(microsecond=0) + timedelta(days=7)
        create_appointment(clinician=clinician, client=alex, starts_at=start, ends_at=start + timedelta(minutes=50))
    _close()


def change_everything(app):
    with app.app_context():
        Practice.update(name="Renamed by mistake").execute()
        add_client("sam@example.com", "Sam Rivera")
        cancel_appointment(Appointment.get())
    _close()


def state(app) -> tuple:
    with app.app_context(), db.connection_context():
        return (Practice.current().name, sorted(c.email for c in Client.select()),
                [a.status for a in Appointment.select()])


BEFORE = ("Riverside Counselling", ["alex@example.com"], ["scheduled"])


@sqlite_only
def test_backup_then_restore_brings_the_data_back(app, dana, run, tmp_path):
    seed(app, dana)
    backup = tmp_path / "nightly.db"

    made = run("backup", str(backup))

    assert made.exit_code == 0, made.output
    assert f"to {backup} (1 client, 1 appointment, " in made.output
    assert oct(backup.stat().st_mode & 0o777) == "0o600"  # it holds client data
    copy = sqlite3.connect(backup)
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file, nothing beside it
    copy.close()

    change_everything(app)
    assert state(app) == ("Renamed by mistake", ["alex@example.com", "sam@example.com"], ["cancelled"])

    restored = run("restore", str(backup), "--yes")

    assert restored.exit_code == 0, restored.output
    assert state(app) == BEFORE
    # What was replaced was saved first, beside the database.
    (saved,) = (tmp_path / "backups").glob("before-restore-*.db")
    assert f"Saved the current database to {saved}" in restored.output
    kept = sqlite3.connect(saved)
    assert kept.execute("SELECT count(*) FROM client WHERE email = 'sam@example.com'").fetchone()[0] == 1
    kept.close()
    # The portal carries on with the restored database.
    assert app.test_client().get("/healthz").status_code == 200


@sqlite_only
def test_backup_by_default_goes_to_a_timestamped_file_in_backups_beside_the_database(app, run, tmp_path):
    first = run("backup")
    assert first.exit_code == 0, first.output
    (made,) = (tmp_path / "backups").glob("portico-*Z.db")
    assert str(made) in first.output
    assert oct((tmp_path / "backups").stat().st_mode & 0o777) == "0o700"


@sqlite_only
def test_backup_takes_a_consistent_copy_while_a_write_is_in_progress(app, run, tmp_path, database_url):
    seed_clients = 3
    with app.app_context():
        for n in range(seed_clients):
            add_client(f"client{n}@example.com", f"Client {n}")
    _close()
    writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # the portal in the middle of a write
    writer.execute("INSERT INTO client (email, name, phone, language, created_at) VALUES ('late@example.com', 'Late', '', 'en', '2026-01-01')")
    try:
        made = run("backup", str(tmp_path / "during.db"))
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert made.exit_code == 0, made.output
    assert f"({seed_clients} clients," in made.output  # the committed state, not the write in flight


@sqlite_only
def test_restore_asks_first_and_a_no_changes_nothing(app, dana, run, tmp_path):
    seed(app, dana)
    backup = tmp_path / "nightly.db"
    assert run("backup", str(backup)).exit_code == 0
    change_everything(app)
    changed = state(app)

    answer = run("restore", str(backup), input="n\n")

    assert answer.exit_code == 1 and "Stop the web processes and the worker first" in answer.output
    assert state(app) == changed
    assert not (tmp_path / "backups").exists()


@sqlite_only
@pytest.mark.parametrize("make, message", [
    (lambda path: path.write_text("not a database at all " * 100), "is not a SQLite database"),
    (lambda path: sqlite3.connect(path).execute("CREATE TABLE notes (body TEXT)").connection.commit(),
     "is not a Portico database"),
    (lambda path: None, "There is no database at"),
])
def test_restore_refuses_what_is_not_a_portico_backup(app, run, tmp_path, make, message):
    candidate = tmp_path / "candidate.db"
    make(candidate)
    result = run("restore", str(candidate), "--yes")
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "backups").exists()
    assert app.test_client().get("/healthz").status_code == 200


@sqlite_only
def test_restore_refuses_a_backup_from_a_newer_portico_and_backup_never_overwrites(app, run, tmp_path):
    backup = tmp_path / "nightly.db"
    assert run("backup", str(backup)).exit_code == 0
    again = run("backup", str(backup))
    assert again.exit_code == 1 and "already exists" in again.output

    newer = sqlite3.connect(backup)
    newer.execute("INSERT INTO schemaversion (version, applied_at) VALUES (99, '2030-01-01')")
    newer.commit()
    newer.close()
    result = run("restore", str(backup), "--yes")
    assert result.exit_code == 1 and "made by a newer Portico (schema version 99)" in result.output
    with app.app_context(), db.connection_context():
        assert SchemaVersion.select().where(SchemaVersion.version == 99).count() == 0


@postgres_only
def test_on_postgres_backup_and_restore_say_how_to_use_pg_dump(app, run, tmp_path):
    backup = run("backup", str(tmp_path / "x.db"))
    assert backup.exit_code == 1 and "pg_dump --format=custom" in backup.output
    restore = run("restore", str(tmp_path / "x.dump"), "--yes")
    assert restore.exit_code == 1 and "pg_restore --clean --if-exists --no-owner" in restore.output
    assert not (tmp_path / "x.db").exists()


@postgres_only
@pytest.mark.skipif(not shutil.which("pg_dump"), reason="pg_dump is not installed")
def test_the_documented_pg_dump_and_pg_restore_bring_the_data_back(app, dana, database_url, run, tmp_path):
    seed(app, dana)
    dump = tmp_path / "portico.dump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", database_url], check=True, timeout=60)
    change_everything(app)
    assert state(app) != BEFORE
    _close()

    subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={database_url}", str(dump)],
                   check=True, timeout=60)
    assert run("init-db").exit_code == 0  # as docs/operations.md says: upgrades a dump from an older Portico

    assert state(app) == BEFORE


@sqlite_only
def test_restoring_a_backup_from_an_older_portico_upgrades_it(app, run, tmp_path):
    from tests.test_migrations import build_early_version_1
    old = tmp_path / "from-an-early-build.db"
    build_early_version_1(f"sqlite:///{old}")

    restored = run("restore", str(old), "--yes")

    assert restored.exit_code == 0, restored.output
    with app.app_context(), db.connection_context():
        assert [v.version for v in SchemaVersion.select().order_by(SchemaVersion.version)] == list(range(1, SCHEMA_VERSION + 1))
        assert Practice.current().name == "Riverside Counselling"
        assert Client.by_email("alex@example.com").phone == ""  # a column the early build lacked
