"""Portico: create_app() and the command line (serve, worker, init-db, add-client, ...)."""
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, abort, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_login.utils import _user_context_processor
from flask_mail import Mail
from flask_wtf.csrf import CSRFError, CSRFProtect
from htmx_flask import Htmx
from peewee import OperationalError
from werkzeug.routing import IntegerConverter
from werkzeug.middleware.proxy_fix import ProxyFix

from practice import jobs, reminders  # noqa: F401  (reminders follow appointment changes)
from practice.wakeup import MailListener, announce_mail
from practice.models import (Practice, create_schema, db, end_request_memo, is_sqlite,
                             open_database, start_request_memo)

login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()
htmx = Htmx()
scheduler = None  # started by `serve` or `worker` only, never at import or in create_app
RATE_LIMITS = "_portico_rate_limits"
# flask-limiter settings that limit requests beyond the views that declare limits.
APP_WIDE_LIMITS = ("RATELIMIT_DEFAULT", "RATELIMIT_APPLICATION", "RATELIMIT_META", "RATELIMIT_IN_MEMORY_FALLBACK")


def rate_limit(config_name: str, **options):
    """Declares a limit, read from app.config[config_name], for the view it decorates.

    Each app gets its own Limiter in create_app (see _apply_rate_limits): flask-limiter keeps
    storage, key prefix and on/off on the Limiter itself, so one module-level Limiter would
    carry those from one app to the next (several apps per test run, or per embedding process).
    """
    def declare(view):
        view.__dict__.setdefault(RATE_LIMITS, []).append((config_name, options))
        return view
    return declare


class _ViewLimiter(Limiter):
    """Portico declares its limits on views only. flask-limiter also runs a pass before every
    request for default and application-wide limits; with none configured it finds nothing
    to check, yet cost a GET of the sign-in page more than its database read. Skip that pass
    then; the views' own limits are checked as before."""

    def __init__(self, *, app_wide: bool, **options):
        super().__init__(**options)
        self.app_wide = app_wide

    def _check_request_limit(self, callable_name=None, in_middleware=True):
        if in_middleware and not self.app_wide:
            return None
        return super()._check_request_limit(callable_name, in_middleware)


def _apply_rate_limits(app: Flask) -> None:
    app_limiter = _ViewLimiter(app_wide=any(app.config.get(name) for name in APP_WIDE_LIMITS),
                               key_func=get_remote_address, default_limits=[])
    app_limiter.init_app(app)
    if not app_limiter.enabled:  # RATELIMIT_ENABLED=False
        return
    # The limits hold their Limiter weakly; the app must keep it alive.
    app.extensions["portico_limiter"] = app_limiter
    for endpoint, view in list(app.view_functions.items()):
        declared = getattr(view, RATE_LIMITS, ())
        if not declared:
            continue
        limited = view
        for config_name, options in declared:
            limited = app_limiter.limit(lambda name=config_name: app.config[name], **options)(limited)
        methods = _limited_methods(declared)
        app.view_functions[endpoint] = limited if methods is None else _limit_only(methods, view, limited)


def _limited_methods(declared) -> frozenset | None:
    """The methods some declared limit covers, or None when one covers every method."""
    methods = set()
    for _, options in declared:
        if not options.get("methods"):
            return None
        methods.update(method.upper() for method in options["methods"])
    return frozenset(methods)


def _limit_only(methods: frozenset, view, limited):
    """A GET of a page whose limits are for its POST skips flask-limiter altogether."""
    @wraps(view)  # the same qualified name: flask-limiter finds its limits by it
    def dispatch(*args, **kwargs):
        return (limited if request.method in methods else view)(*args, **kwargs)
    return dispatch


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session (it holds only the CSRF token), with its signer built
    once per key rather than twice per request."""

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = app.extensions.get("portico_session_signer")
        if cached is None or cached[0] != keys:
            cached = app.extensions["portico_session_signer"] = (keys, super().get_signing_serializer(app))
        return cached[1]


TOKEN_PATH_PREFIXES = ("/s/", "/t/", "/feed/")  # sign-in, telehealth join, calendar feed
TOKEN_IN_PATH = re.compile(r"(/(?:s|t|feed)/)[^\s/?\"']+")


class RedactTokens(logging.Filter):
    """Request logs show /s/… instead of the token: a log line must never sign anyone in."""

    @staticmethod
    def _redact(value):
        return TOKEN_IN_PATH.sub(r"\1…", value) if isinstance(value, str) else value

    def filter(self, record):
        # Format once and redact the line: gunicorn's access log passes every header and
        # environ value as arguments, and redacting each one cost more than the line itself.
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: redact its parts, and let logging report it
            record.msg = self._redact(record.msg)
            if isinstance(record.args, Mapping):
                record.args = {key: self._redact(value) for key, value in record.args.items()}
            elif isinstance(record.args, tuple):
                record.args = tuple(self._redact(value) for value in record.args)
            return True
        record.msg, record.args = self._redact(message), None
        return True


REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "portal")  # portal: Flask's error log names the path


class HideQueryParameters(logging.Filter):
    """peewee's DEBUG log is (sql, params): the statement is useful, the values are not ours to
    print (an outbox INSERT carries a sign-in link and its code)."""

    def filter(self, record):
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            sql, params = record.msg
            record.msg, record.args = "%s -- %d parameters not logged", (sql, len(params or ()))
        return True


def install_log_redaction() -> None:
    """Once per process, on the loggers that write request lines (dev server and gunicorn)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
    peewee_log = logging.getLogger("peewee")
    if not any(isinstance(f, HideQueryParameters) for f in peewee_log.filters):
        peewee_log.addFilter(HideQueryParameters())


class RowId(IntegerConverter):
    """`<int:...>` in our URLs is a database id: one past PostgreSQL's integer range is a 404,
    not a driver error."""

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):
        super().__init__(map, fixed_digits, min, max, signed)


def _refuse_nul_characters():
    """No field, query argument or path of ours ever holds a NUL, and PostgreSQL cannot store
    one: refuse the request before any view sees it."""
    texts = [request.headers.get("User-Agent", "")]
    texts += [value for value in (request.view_args or {}).values() if isinstance(value, str)]
    for given in (request.args, request.form):
        for name, values in given.lists():  # every value of a repeated name, not just the first
            texts += [name, *values]
    if any("\x00" in text for text in texts):
        abort(400)


def _env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def _secret_key(instance_path: str) -> str:
    """SECRET_KEY from the environment, else one generated into instance/ on first run."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    with open(path) as handle:
        return handle.read().strip()


def environment_config(instance_path: str) -> dict:
    env = os.environ.get
    return {
        "DATABASE_URL": env("DATABASE_URL") or "sqlite:///" + os.path.join(instance_path, "portico.db"),
        "PORTAL_BASE_URL": (env("PORTAL_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "PORTAL_SCHEDULER": (env("PORTAL_SCHEDULER") or "on").lower(),
        "PORTAL_REMINDER_TICK_SECONDS": float(env("PORTAL_REMINDER_TICK_SECONDS") or 30),
        "PORTAL_MAIL_TICK_SECONDS": float(env("PORTAL_MAIL_TICK_SECONDS") or 5),
        "MAIL_SERVER": env("MAIL_SERVER") or None,
        "MAIL_PORT": int(env("MAIL_PORT") or 25),
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS"),
        "MAIL_USE_SSL": _env_bool("MAIL_USE_SSL"),
        "MAIL_USERNAME": env("MAIL_USERNAME"),
        "MAIL_PASSWORD": env("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER") or "portal@localhost",
        "MAIL_TIMEOUT": float(env("MAIL_TIMEOUT") or 10),
        "MAIL_LEASE_SECONDS": float(env("MAIL_LEASE_SECONDS") or 120),
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI") or "memory://",
        "RATELIMIT_KEY_PREFIX": env("RATELIMIT_KEY_PREFIX") or "portico",  # one Redis, several portals
        # How many proxies in front of us set X-Forwarded-For/-Proto (0: trust no such header).
        "PORTAL_PROXY_COUNT": int(env("PORTAL_PROXY_COUNT") or 0),
        # STUN/TURN servers for the video room, as RTCPeerConnection takes them, e.g.
        # '[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]'
        "PORTAL_ICE_SERVERS": json.loads(env("PORTAL_ICE_SERVERS") or "[]"),
    }


def create_app(test_config: dict | None = None) -> Flask:
    test_config = dict(test_config or {})
    app = Flask(__name__, instance_relative_config=True, instance_path=test_config.pop("INSTANCE_PATH", None))
    os.makedirs(app.instance_path, exist_ok=True)
    app.url_map.converters["int"] = RowId  # before any blueprint adds its rules
    app.config.from_mapping(
        MAIL_SUPPRESS_SEND=False,  # Flask-Mail would silently drop mail whenever TESTING is set
        SIGN_IN_IP_LIMIT="20 per minute; 200 per hour",
        CODE_IP_LIMIT="10 per minute; 60 per hour",
        CLINIC_SIGN_IN_IP_LIMIT="10 per minute; 100 per hour",
        CLINIC_SIGN_IN_ACCOUNT_LIMIT="5 per minute; 30 per hour",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (server-side) session cookie
        # Our Referrer-Policy is no-referrer (tokens live in URLs), so browsers send no Referer
        # (and Origin: null) on our own POSTs; the token plus SameSite=Lax cookies guard forms.
        WTF_CSRF_SSL_STRICT=False,
        RATELIMIT_HEADERS_ENABLED=True,
        # Redis down: each process counts in memory until it is back, rather than failing sign-in.
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    )
    app.config.update(environment_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app.instance_path)
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 2, "socket_timeout": 2})
    if app.config["PORTAL_PROXY_COUNT"]:
        # Behind a TLS proxy: the client's address (per-IP rate limits, audit) and scheme
        # come from the proxy's X-Forwarded-For/-Proto; without this setting they are ignored.
        proxies = app.config["PORTAL_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    install_log_redaction()
    secure = app.config["PORTAL_BASE_URL"].startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME="__Host-portico_csrf" if secure else "portico_csrf",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PORTAL_SESSION_COOKIE="__Host-portico" if secure else "portico",
    )

    db.initialize(open_database(app.config["DATABASE_URL"]))
    if app.config.get("PORTAL_CREATE_SCHEMA", True):
        with db.connection_context():
            create_schema()

    app.session_interface = _SessionInterface()
    login_manager.init_app(app)
    login_manager.session_protection = None  # the server-side session row is the protection
    # flask-login's context processor loads the user for every template rendered, whether
    # it shows them or not; the proxy gives templates the same `current_user`, loaded lazily.
    app.template_context_processors[None].remove(_user_context_processor)
    app.context_processor(lambda: {"current_user": current_user})
    mail.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)

    from blueprints import clinic, devmail, documents, feed, meta, portal_home, signin, telehealth
    app.register_blueprint(meta.bp)
    app.register_blueprint(feed.bp)
    app.register_blueprint(clinic.bp)
    app.register_blueprint(signin.bp)
    app.register_blueprint(portal_home.bp)
    app.register_blueprint(documents.bp)
    app.register_blueprint(telehealth.bp)
    if not app.config["MAIL_SERVER"]:
        app.register_blueprint(devmail.bp)
    signin.init_app(app)
    _apply_rate_limits(app)

    app.before_request(_refuse_nul_characters)

    @app.before_request
    def _connect():
        db.connect(reuse_if_open=True)
        g.request_memo = start_request_memo()

    @app.teardown_request
    def _close(exc):
        if "request_memo" in g:
            end_request_memo(g.pop("request_memo"))
        # SQLite keeps its connection (one per thread): opening one cost more than most
        # requests (pragmas, and a WAL checkpoint at the last close). Pools take theirs back.
        if not is_sqlite() and not db.is_closed():
            db.close()

    @app.errorhandler(CSRFError)
    def _csrf_failed(error):
        return render_template("error.html", title="This form has expired",
                               message="Please go back, reload the page and try again."), 400

    @app.errorhandler(400)
    def _bad_request(error):
        return render_template("error.html", title="That request could not be read",
                               message="Please go back, reload the page and try again."), 400

    @app.errorhandler(429)
    def _too_many(error):
        return render_template("error.html", title="Please wait a moment",
                               message="There have been too many attempts from your connection. "
                                       "Please wait a few minutes and try again."), 429

    @app.errorhandler(403)
    def _forbidden(error):
        return render_template("error.html", title="Not allowed",
                               message="You do not have access to this page."), 403

    @app.errorhandler(404)
    def _not_found(error):
        return render_template("error.html", title="Page not found",
                               message="There is no page at this address."), 404

    @app.errorhandler(405)
    def _not_allowed(error):
        return render_template("error.html", title="Not allowed",
                               message="That action is not available here."), 405

    @app.errorhandler(500)
    def _server_error(error):
        return render_template("error.html", title="Something went wrong",
                               message="Nothing you entered was lost. Please try again in a moment."), 500

    @app.errorhandler(OperationalError)
    def _database_down(error):
        app.logger.error("database unavailable: %s", error)
        return render_template("error.html", title="Temporarily unavailable",
                               message="The portal cannot reach its database. Please try again shortly."), 503

    @app.after_request
    def _security_headers(response):
        if request.path.startswith(TOKEN_PATH_PREFIXES):
            # A token in the URL is a credential: keep it out of caches and search engines.
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Robots-Tag"] = "noindex"
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'")
        if secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return app


def wake_mail_job() -> None:
    """Run the mail job now rather than at its next tick: a client is waiting for a link.
    The job of this process when it runs the scheduler; else a worker's, through PostgreSQL."""
    if scheduler is not None and scheduler.running:
        scheduler.modify_job("mail", next_run_time=datetime.now(timezone.utc))
    else:
        announce_mail()


def start_scheduler(app, *, paused: bool = False) -> BackgroundScheduler:
    """One scheduler per process: called by `serve` (when PORTAL_SCHEDULER is on) and `worker`."""
    global scheduler
    if scheduler is not None:
        return scheduler
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(jobs.safe_reminder_tick, "interval", seconds=app.config["PORTAL_REMINDER_TICK_SECONDS"],
                      args=[app], id="reminders", name="reminder tick", max_instances=1, coalesce=True,
                      next_run_time=datetime.now(timezone.utc))
    scheduler.add_job(jobs.safe_mail_tick, "interval", seconds=app.config["PORTAL_MAIL_TICK_SECONDS"],
                      args=[app], id="mail", name="mail tick", max_instances=1, coalesce=True,
                      next_run_time=datetime.now(timezone.utc))
    scheduler.start(paused=paused)
    return scheduler


def stop_scheduler() -> None:
    global scheduler
    if scheduler is not None:
        scheduler.shutdown(wait=False)
        scheduler = None


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Two lines per tick, every 5 s, would bury what matters; a failing tick still logs an error.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    install_log_redaction()


# ---- command line -------------------------------------------------------------------------

@click.command("init-db")
@click.option("--practice-name", help="The practice's name, shown to clients.")
@click.option("--timezone", "zone", help="The practice's IANA time zone, e.g. Europe/London.")
@click.option("--contact", help="The practice's contact address (Reply-To of every email).")
def init_db_command(practice_name, zone, contact):
    """Create or upgrade the database schema (safe to run again)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
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


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx):
    """Portico, the client portal. With no command: serve on 127.0.0.1:5000."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host, port):
    """Serve the portal (with the scheduler unless PORTAL_SCHEDULER=off)."""
    _configure_logging()
    app = create_app()
    if app.config["PORTAL_SCHEDULER"] != "off":
        start_scheduler(app)
    if not app.config["MAIL_SERVER"]:
        click.echo(f"No MAIL_SERVER set: emails appear at {app.config['PORTAL_BASE_URL']}/dev/mailbox")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@cli.command()
def worker():
    """Run only the scheduler and mail jobs (for web processes started with PORTAL_SCHEDULER=off)."""
    import signal
    import threading
    _configure_logging()
    app = create_app()
    start_scheduler(app)
    stop = threading.Event()
    if not is_sqlite():  # web processes wake this worker's mail job when a client waits for a link
        MailListener(wake_mail_job, stop=stop).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo("Portico worker running; Ctrl-C to stop.")
    stop.wait()
    stop_scheduler()


cli.add_command(init_db_command)


@cli.command("add-client")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--timezone", "zone", default=None)
def add_client(email, name, zone):
    """Add a client who can then ask for sign-in links."""
    from practice.clients import ClientError, add_client as add
    app = create_app()
    with app.app_context(), db.connection_context():
        try:
            client = add(email, name, zone)
        except ClientError as error:
            raise click.ClickException(str(error))
    click.echo(f"Added client {client.name} <{client.email}>")


@cli.command("create-clinician")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--admin/--no-admin", default=True, show_default=True)
def create_clinician(email, name, admin):
    """Create a clinician; the password is prompted for (or read from stdin when piped)."""
    from practice.clinicians import ClinicianError, create_clinician as create
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    app = create_app()
    with app.app_context(), db.connection_context():
        try:
            clinician = create(email, name, password, is_admin=admin)
        except ClinicianError as error:
            raise click.ClickException(str(error))
    click.echo(f"Created clinician {clinician.name} <{clinician.email}>")


@cli.command()
def demo():
    """Seed a demo practice with a clinician and clients, for trying Portico out."""
    from practice.demo import seed_demo
    app = create_app()
    with app.app_context(), db.connection_context():
        lines = seed_demo()
    for line in lines:
        click.echo(line)


@cli.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def backup(path):
    """Back up the SQLite database, safely while the portal runs.

    Into PATH, or by default a timestamped file in backups/ beside the database
    (instance/backups). On PostgreSQL it says how to use pg_dump instead."""
    from practice.backup import PG_BACKUP_ADVICE, BackupError, backup_sqlite, backups_dir, sqlite_file, timestamped
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


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(path, yes):
    """Replace the SQLite database with a backup.

    The current database is saved to backups/ first. Stop the web processes and the worker
    before, start them after. On PostgreSQL it says how to use pg_restore instead."""
    from practice.backup import (PG_RESTORE_ADVICE, BackupError, backup_sqlite, backups_dir, check_backup,
                                 restore_sqlite, sqlite_file, timestamped)
    from practice.migrations import SCHEMA_VERSION
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


if __name__ == "__main__":
    # Run the CLI from the importable module, so that `portal.login_manager`, `portal.scheduler`
    # and friends exist once, not twice (as __main__ and as portal).
    from portal import cli as portal_cli
    portal_cli()
