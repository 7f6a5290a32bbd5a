"""The command line: serve, worker, init-db, add-client, create-clinician, reset-second-factor, demo,
backup, restore, translations.
Each command is given the app factory (portal.create_app) as click's context object."""
import os
import re
import signal
import sys
import threading
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from practice.backup import (PG_BACKUP_ADVICE, PG_RESTORE_ADVICE, BackupError, backup_sqlite, backups_dir,
                             check_backup, restore_sqlite, sqlite_file, timestamped)
from practice.clients import ClientError, add_client as add_client_to_practice
from practice.clinicians import ClinicianError, create_clinician as create_clinician_account
from practice.demo import seed_demo
from practice.migrations import SCHEMA_VERSION
from practice import second_factor
from practice.models import Clinician, Practice, db, is_sqlite
from practice.wakeup import MailListener

from . import scheduler
from .hardening import configure_logging


def build_cli(create_app) -> click.Group:
    """`python portal.py [command]`; with no command, serve on 127.0.0.1:5000."""

    @click.group(invoke_without_command=True, context_settings={"obj": create_app})
    @click.pass_context
    def cli(ctx):
        """Portico, the client portal. With no command: serve on 127.0.0.1:5000."""
        if ctx.invoked_subcommand is None:
            ctx.invoke(serve)

    for command in (serve, worker, init_db_command, add_client, create_clinician, reset_second_factor, demo, backup,
                    restore, translations):
        cli.add_command(command)
    return cli


@click.command("init-db")
@click.option("--practice-name", help="The practice's name, shown to clients.")
@click.option("--timezone", "zone", help="The practice's IANA time zone, e.g. Europe/London.")
@click.option("--contact", help="The practice's contact address (Reply-To of every email).")
@click.pass_obj
def init_db_command(create_app, practice_name, zone, contact):
    """Create or upgrade the database schema (safe to run again)."""
    create_app()  # creates or upgrades the schema on the configured database
    with db.connection_context():
        practice = Practice.current()
        if zone:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise click.BadParameter(f"unknown time zone {zone!r}", param_hint="--timezone")
            practice.timezone = zone
        if practice_name:
            practice.name = practice_name.strip()
        if contact:
            practice.contact_email = contact.strip()
        practice.save()
    click.echo(f"Database ready: {_describe_db()}")


def _describe_db() -> str:
    url = os.environ.get("DATABASE_URL") or "sqlite (instance/portico.db)"
    return re.sub(r"://[^@/]*@", "://…@", url)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.pass_obj
def serve(create_app, host, port):
    """Serve the portal (with the scheduler unless PORTAL_SCHEDULER=off)."""
    configure_logging()
    app = create_app()
    if app.config["PORTAL_SCHEDULER"] != "off":
        scheduler.start_scheduler(app)
    if not app.config["MAIL_SERVER"]:
        click.echo(f"No MAIL_SERVER set: emails appear at {app.config['PORTAL_BASE_URL']}/dev/mailbox")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@click.command()
@click.pass_obj
def worker(create_app):
    """Run only the scheduler and mail jobs (for web processes started with PORTAL_SCHEDULER=off)."""
    configure_logging()
    app = create_app()
    scheduler.start_scheduler(app)
    stop = threading.Event()
    if not is_sqlite():  # web processes wake this worker's mail job when a client waits for a link
        MailListener(scheduler.wake_mail_job, stop=stop).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo("Portico worker running; Ctrl-C to stop.")
    stop.wait()
    scheduler.stop_scheduler()


@click.command("add-client")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--timezone", "zone", default=None)
@click.pass_obj
def add_client(create_app, email, name, zone):
    """Add a client who can then ask for sign-in links."""
    app = create_app()
    with app.app_context(), db.connection_context():
        try:
            client = add_client_to_practice(email, name, zone)
        except ClientError as error:
            raise click.ClickException(str(error))
    click.echo(f"Added client {client.name} <{client.email}>")


@click.command("create-clinician")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--admin/--no-admin", default=True, show_default=True)
@click.pass_obj
def create_clinician(create_app, email, name, admin):
    """Create a clinician; the password is prompted for (or read from stdin when piped)."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    app = create_app()
    with app.app_context(), db.connection_context():
        try:
            clinician = create_clinician_account(email, name, password, is_admin=admin)
        except ClinicianError as error:
            raise click.ClickException(str(error))
    click.echo(f"Created clinician {clinician.name} <{clinician.email}>")


@click.command("reset-second-factor")
@click.argument("email")
@click.pass_obj
def reset_second_factor(create_app, email):
    """Clear a clinician's second factor (an admin who lost theirs and their recovery codes)."""
    app = create_app()
    with app.app_context(), db.connection_context():
        clinician = Clinician.get_or_none(Clinician.email == email.strip().lower())
        if clinician is None:
            raise click.ClickException(f"No clinician has the address {email}.")
        second_factor.reset(clinician, by=None)
    click.echo(f"Reset the second factor of {clinician.name} <{clinician.email}>: they set up a new one at "
               "their next sign-in.")


@click.command()
@click.pass_obj
def demo(create_app):
    """Seed a demo practice with a clinician and clients, for trying Portico out."""
    app = create_app()
    with app.app_context(), db.connection_context():
        lines = seed_demo()
    for line in lines:
        click.echo(line)


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def backup(create_app, path):
    """Back up the SQLite database, safely while the portal runs.

    Into PATH, or by default a timestamped file in backups/ beside the database
    (instance/backups). On PostgreSQL it says how to use pg_dump instead."""
    app = create_app({"PORTAL_CREATE_SCHEMA": False})
    try:
        database = sqlite_file(app.config["DATABASE_URL"])
        if database is None:
            raise click.ClickException(PG_BACKUP_ADVICE)
        path = path or timestamped(backups_dir(database))
        holds = backup_sqlite(database, path)
    except BackupError as error:
        raise click.ClickException(str(error))
    click.echo(f"Backed up {database} to {path} ({holds}). Keep SECRET_KEY (instance/secret_key) too.")


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def restore(create_app, path, yes):
    """Replace the SQLite database with a backup.

    The current database is saved to backups/ first. Stop the web processes and the worker
    before, start them after. On PostgreSQL it says how to use pg_restore instead."""
    app = create_app({"PORTAL_CREATE_SCHEMA": False})
    try:
        database = sqlite_file(app.config["DATABASE_URL"])
        if database is None:
            raise click.ClickException(PG_RESTORE_ADVICE)
        holds = check_backup(path, SCHEMA_VERSION)
        if not yes:
            click.confirm(f"Replace everything in {database} with {path} ({holds})?\n"
                          "Stop the web processes and the worker first. Continue?", abort=True)
        if database.exists():
            saved = timestamped(backups_dir(database), "before-restore")
            backup_sqlite(database, saved)
            click.echo(f"Saved the current database to {saved}")
        restore_sqlite(path, database)
    except BackupError as error:
        raise click.ClickException(str(error))
    create_app()  # upgrades a backup made by an older Portico
    click.echo(f"Restored {database} from {path} ({holds}).")


@click.command()
def translations():
    """Bring the catalogs up to date: extract the text, update each .po, compile the .mo files."""
    import tempfile
    from .catalog import CLINIC_POT, compile_catalogs, extract, extract_clinic, update
    with tempfile.TemporaryDirectory() as folder:
        pot = Path(folder) / "messages.pot"
        extract(pot)
        update(pot)
    compile_catalogs()
    extract_clinic(CLINIC_POT)
    click.echo("Catalogs updated: translate any new entries in translations/*/LC_MESSAGES/messages.po, "
               f"then run this again to compile them. The clinician side's text is in {CLINIC_POT.name} "
               "beside them (English for now).")
