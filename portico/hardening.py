"""What every request and log line gets: security headers, refusal of NUL characters, row ids
in URLs kept within range, and tokens and query values kept out of logs."""
import logging
import re
from collections.abc import Mapping

from flask import abort, current_app, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

TOKEN_PATH_PREFIXES = ("/s/", "/t/", "/a/", "/feed/")  # sign-in, telehealth join, changes, calendar feed
TOKEN_IN_PATH = re.compile(r"(/(?:s|t|a|feed)/)[^\s/?\"']+")
REQUEST_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "portal")  # portal: Flask's error log names the path
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")


def init_app(app) -> None:
    """Before any blueprint adds its rules (the URL converter) and before the first request."""
    app.url_map.converters["int"] = RowId
    if app.config["PORTAL_PROXY_COUNT"]:
        # Behind a TLS proxy: the client's address (per-IP rate limits, audit) and scheme
        # come from the proxy's X-Forwarded-For/-Proto; without this setting they are ignored.
        proxies = app.config["PORTAL_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    install_log_redaction()
    app.before_request(refuse_nul_characters)
    app.before_request(refuse_file_parts)
    app.before_request(refuse_json_where_none_is_read)
    secure = app.config["SESSION_COOKIE_SECURE"]
    app.after_request(lambda response: security_headers(response, secure=secure))


def security_headers(response, *, secure: bool):
    if request.path.startswith(TOKEN_PATH_PREFIXES):
        # A token in the URL is a credential: keep it out of caches and search engines.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Robots-Tag"] = "noindex"
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def refuse_nul_characters():
    """No field, query argument or path of ours ever holds a NUL, and PostgreSQL cannot store
    one: refuse the request before any view sees it."""
    texts = [request.headers.get("User-Agent", "")]
    texts += [value for value in (request.view_args or {}).values() if isinstance(value, str)]
    for given in (request.args, request.form):
        for name, values in given.lists():  # every value of a repeated name, not just the first
            texts += [name, *values]
    if any("\x00" in text for text in texts):
        abort(400)


class FilePartRefused(BadRequest):
    """A file sent to a form that takes none (it has its own error page)."""


class UnreadableText(BadRequest):
    """Text that cannot be written as UTF-8 (a lone surrogate from JSON's \\ud800)."""


def refuse_file_parts():
    """A file part is taken only in a field a view names with @takes_files (the practice logo's):
    anywhere else it would reach the form's validators as a FileStorage (`len()` of it raises).
    Refuse it before any view."""
    if request.files:
        allowed = getattr(current_app.view_functions.get(request.endpoint), "takes_files", ())
        if any(name not in allowed for name in request.files):
            raise FilePartRefused()


def takes_files(*fields: str):
    """Marks a view that reads an uploaded file from these fields itself."""
    def mark(view):
        view.takes_files = fields
        return view
    return mark


def takes_json(view):
    """Marks a view that reads a JSON body itself (the room's signals); every other refuses one."""
    view.takes_json = True
    return view


def refuse_json_where_none_is_read():
    """A JSON body sent to a form: flask-wtf reads JSON in place of an empty form, so numbers
    and lists would reach validators that expect text (`len()` of an int raised), and "[" * 5000
    the parser (RecursionError). Only views marked @takes_json get one; the rest answer 415."""
    if request.is_json and not getattr(current_app.view_functions.get(request.endpoint), "takes_json", False):
        raise UnsupportedMediaType()


def refuse_unencodable_text(value) -> None:
    """Raise UnreadableText for a string anywhere in a parsed JSON value that is not valid
    Unicode (the driver, hmac and the templates would each fail on it later)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnreadableText() from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            refuse_unencodable_text(key)
            refuse_unencodable_text(item)
    elif isinstance(value, list):
        for item in value:
            refuse_unencodable_text(item)


class RowId(IntegerConverter):
    """`<int:...>` in our URLs is a database id: one past PostgreSQL's integer range is a 404,
    not a driver error."""

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):
        super().__init__(map, fixed_digits, min, max, signed)


class RedactTokens(logging.Filter):
    """Request logs show /s/… instead of the token: a log line must never sign anyone in."""

    @staticmethod
    def redact(value):
        return TOKEN_IN_PATH.sub(r"\1…", value) if isinstance(value, str) else value

    def filter(self, record):
        # Format once and redact the line: gunicorn's access log passes every header and
        # environ value as arguments, and redacting each one cost more than the line itself.
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: redact its parts, and let logging report it
            record.msg = self.redact(record.msg)
            if isinstance(record.args, Mapping):
                record.args = {key: self.redact(value) for key, value in record.args.items()}
            elif isinstance(record.args, tuple):
                record.args = tuple(self.redact(value) for value in record.args)
            return True
        record.msg, record.args = self.redact(message), None
        return True


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


def configure_logging() -> None:
    """For `serve` and `worker`: INFO to stderr, tokens redacted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Two lines per tick, every 5 s, would bury what matters; a failing tick still logs an error.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    # "Adding job tentatively -- it will be properly scheduled when the scheduler starts", once a
    # job, at every start: news to nobody. Its warnings and errors still show.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)
    install_log_redaction()
