"""The app as a whole: configuration defaults, commands, health, headers, logs."""
import logging

import pytest
from click.testing import CliRunner

from portal import cli, create_app
from portico.hardening import RedactTokens
from practice.models import Appointment, AuditEvent, Client, Clinician, Practice, SchemaVersion, db, is_sqlite
from practice.clinicians import check_password


@pytest.fixture
def run(database_url, tmp_path, monkeypatch):
    """Run a `python portal.py ...` command against this test's database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SECRET_KEY", "test-secret-key")
    runner = CliRunner()

    def invoke(*args, input=None):
        result = runner.invoke(cli, list(args), input=input, catch_exceptions=False)
        if not db.is_closed():
            db.close()
        return result

    return invoke


def test_healthz_answers_200_with_the_database_reachable(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "PORTAL_CREATE_SCHEMA": False,
                      "DATABASE_URL": f"sqlite:///{tmp_path}/missing-dir/nope.db"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.get_data(as_text=True)


def test_secret_key_is_generated_into_instance_on_first_run(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    config = {"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    first = create_app(dict(config)).config["SECRET_KEY"]
    second = create_app(dict(config)).config["SECRET_KEY"]
    assert first == second and len(first) >= 64
    key_file = tmp_path / "instance" / "secret_key"
    assert key_file.read_text().strip() == first
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_instance_folder_and_sqlite_database_are_readable_by_the_owner_only(tmp_path, monkeypatch):
    """The database holds client data as secret_key holds the key: neither is for other users."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    app = create_app({"INSTANCE_PATH": str(instance), "PORTAL_SCHEDULER": "off"})
    app.test_client().get("/healthz")  # a request writes: the -wal and -shm files exist now
    assert oct(instance.stat().st_mode & 0o777) == "0o700"
    files = sorted(path.name for path in instance.iterdir())
    assert {"portico.db", "portico.db-wal", "portico.db-shm"} <= set(files)
    assert {name: oct((instance / name).stat().st_mode & 0o777) for name in files} == {name: "0o600" for name in files}
    db.close()


def test_an_existing_database_readable_by_others_is_made_private_at_start(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    instance = tmp_path / "instance"
    create_app({"INSTANCE_PATH": str(instance), "PORTAL_SCHEDULER": "off"})
    db.close()
    instance.chmod(0o755)
    (instance / "portico.db").chmod(0o644)
    create_app({"INSTANCE_PATH": str(instance), "PORTAL_SCHEDULER": "off"})
    db.close()
    assert oct(instance.stat().st_mode & 0o777) == "0o700"
    assert oct((instance / "portico.db").stat().st_mode & 0o777) == "0o600"


@pytest.mark.builds_schema
def test_init_db_is_idempotent_and_records_the_schema_version(run):
    first = run("init-db", "--practice-name", "Riverside Counselling", "--timezone", "Europe/London")
    second = run("init-db")
    assert first.exit_code == second.exit_code == 0
    assert "Database ready" in second.output
    with db.connection_context():
        assert Practice.current().name == "Riverside Counselling"
        assert Practice.current().timezone == "Europe/London"
        assert SchemaVersion.select().count() == 1


def test_init_db_rejects_an_unknown_time_zone(run):
    result = run("init-db", "--timezone", "Mars/Olympus")
    assert result.exit_code == 2 and "unknown time zone" in result.output


def test_add_client_command(run):
    result = run("add-client", "Sam@Example.com", "--name", "Sam Rivera")
    assert result.exit_code == 0 and "Added client Sam Rivera <sam@example.com>" in result.output
    again = run("add-client", "sam@example.com", "--name", "Sam")
    assert again.exit_code == 1 and "already exists" in again.output
    bad = run("add-client", "not-an-address", "--name", "X")
    assert bad.exit_code == 1 and "not valid" in bad.output


def test_create_clinician_reads_the_password_from_stdin(run):
    result = run("create-clinician", "dana@example.com", "--name", "Dana Hale", input="correct horse battery\n")
    assert result.exit_code == 0
    with db.connection_context():
        dana = Clinician.get(Clinician.email == "dana@example.com")
        assert dana.is_admin and check_password(dana, "correct horse battery")
        assert "correct horse" not in dana.password_hash
    short = run("create-clinician", "kim@example.com", "--name", "Kim", input="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output


def test_reset_second_factor_command_for_an_admin_locked_out_with_their_phone(run):
    from practice import second_factor
    run("create-clinician", "dana@example.com", "--name", "Dana Hale", input="correct horse battery\n")
    with db.connection_context():
        dana = Clinician.get(Clinician.email == "dana@example.com")
        second_factor.begin_totp(dana)
        second_factor.new_recovery_codes(dana)
        Clinician.update(totp_confirmed_at=dana.created_at).execute()
    result = run("reset-second-factor", "Dana@Example.com")
    assert result.exit_code == 0 and "Reset the second factor of Dana Hale" in result.output
    with db.connection_context():
        dana = Clinician.get(Clinician.email == "dana@example.com")
        assert not second_factor.has_second_factor(dana) and second_factor.recovery_codes_left(dana) == 0
        assert AuditEvent.get(AuditEvent.kind == "second_factor_reset").detail == "from the command line"
    missing = run("reset-second-factor", "nobody@example.com")
    assert missing.exit_code == 1 and "No clinician has the address" in missing.output


def test_demo_seeds_a_practice_with_clients_and_prints_the_login(run):
    result = run("demo")
    assert result.exit_code == 0
    assert "Clinician: clinician@example.com / password" in result.output
    with db.connection_context():
        assert Client.select().count() == 3
        assert Client.select().where(Client.clinician.is_null()).count() == 0  # the demo clinician's
        assert Appointment.select().count() == 3
    assert run("demo").exit_code == 0  # safe to run twice
    with db.connection_context():
        assert Appointment.select().count() == 3


def test_security_headers_on_every_page(client):
    for path in ("/sign-in", "/portal", "/healthz", "/s/whatever", "/no-such-page"):
        headers = client.get(path).headers
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src" not in headers["Content-Security-Policy"] or "'unsafe-inline'" not in headers["Content-Security-Policy"]


def test_unknown_page_gets_a_friendly_404(client):
    response = client.get("/nothing-here")
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)


def test_wrong_method_gets_a_friendly_405(client):
    response = client.get("/sign-out")
    assert response.status_code == 405 and "Traceback" not in response.get_data(as_text=True)


def test_sqlite_runs_in_wal_with_busy_timeout_and_foreign_keys(app):
    if not is_sqlite():
        pytest.skip("SQLite only")
    with db.connection_context():
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_log_filter_redacts_tokens_from_request_lines():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - "%s" %s',
                               ("127.0.0.1", "GET /s/AbC-123_xyz HTTP/1.1", "200"), None)
    RedactTokens().filter(record)
    assert "AbC-123_xyz" not in record.getMessage() and "/s/…" in record.getMessage()
