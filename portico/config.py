"""Configuration: defaults, then the environment, then a test's own values."""
import json
import os
import secrets
from urllib.parse import urlsplit

from . import ratelimit_storage

DEFAULTS = dict(
    MAIL_SUPPRESS_SEND=False,  # Flask-Mail would silently drop mail whenever TESTING is set
    SIGN_IN_IP_LIMIT="20 per minute; 200 per hour",
    CODE_IP_LIMIT="10 per minute; 60 per hour",
    PASSKEY_IP_LIMIT="20 per minute; 200 per hour",  # each passkey request and answer
    CLINIC_SIGN_IN_IP_LIMIT="10 per minute; 100 per hour",
    CLINIC_SECOND_FACTOR_IP_LIMIT="10 per minute; 100 per hour",  # codes after the password
    WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the (server-side) session cookie
    # Our Referrer-Policy is no-referrer (tokens live in URLs), so browsers send no Referer
    # (and Origin: null) on our own POSTs; the token plus SameSite=Lax cookies guard forms.
    WTF_CSRF_SSL_STRICT=False,
    RATELIMIT_HEADERS_ENABLED=True,
    # Redis down: each process counts in memory until it is back, rather than failing sign-in.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
    TELEHEALTH_POLL_SECONDS=20,  # how long the room's signalling long-poll waits
    # "relay" makes the room's browsers use TURN only: a test setting (it proves the relay
    # carries the call), never read from the environment.
    TELEHEALTH_ICE_TRANSPORT_POLICY="all",
    # No body of ours comes near this: the largest form, an intake form's draft, keeps 20,000
    # characters a field, and a template's text is at most 20,000 (practice/document_fields.py).
    # Anything bigger is refused with 413 before it is read, rather than parsed at length.
    MAX_CONTENT_LENGTH=1024 * 1024,
)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str) -> list[str]:
    """A comma-separated list (e.g. of URLs), blanks dropped."""
    return [item.strip() for item in (os.environ.get(name) or "").split(",") if item.strip()]


def environment_config(instance_path: str) -> dict:
    env = os.environ.get
    return {
        "DATABASE_URL": env("DATABASE_URL") or "sqlite:///" + os.path.join(instance_path, "portico.db"),
        "PORTAL_BASE_URL": (env("PORTAL_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "PORTAL_SCHEDULER": (env("PORTAL_SCHEDULER") or "on").lower(),
        "PORTAL_REMINDER_TICK_SECONDS": float(env("PORTAL_REMINDER_TICK_SECONDS") or 30),
        "PORTAL_MAIL_TICK_SECONDS": float(env("PORTAL_MAIL_TICK_SECONDS") or 5),
        # Days answered sign-in requests and sent emails are kept before the retention job
        # prunes them (docs/operations.md, "What is kept").
        "PORTAL_RETENTION_DAYS": float(env("PORTAL_RETENTION_DAYS") or 90),
        "MAIL_SERVER": env("MAIL_SERVER") or None,
        "MAIL_PORT": int(env("MAIL_PORT") or 25),
        "MAIL_USE_TLS": env_bool("MAIL_USE_TLS"),
        "MAIL_USE_SSL": env_bool("MAIL_USE_SSL"),
        "MAIL_USERNAME": env("MAIL_USERNAME"),
        "MAIL_PASSWORD": env("MAIL_PASSWORD"),
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER") or "portal@localhost",
        "MAIL_TIMEOUT": float(env("MAIL_TIMEOUT") or 10),
        # The whole conversation for one message (connecting included): past it, the message
        # waits for a retry and the rest of the queue goes on.
        "MAIL_DEADLINE": float(env("MAIL_DEADLINE") or 30),
        "MAIL_LEASE_SECONDS": float(env("MAIL_LEASE_SECONDS") or 120),
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI") or "memory://",
        "RATELIMIT_KEY_PREFIX": env("RATELIMIT_KEY_PREFIX") or "portico",  # one Redis, several portals
        # How many proxies in front of us set X-Forwarded-For/-Proto (0: trust no such header).
        "PORTAL_PROXY_COUNT": int(env("PORTAL_PROXY_COUNT") or 0),
        # Host names accepted besides PORTAL_BASE_URL's, comma-separated: e.g. the address a load
        # balancer's health check uses. Every other Host is answered 400 (see trusted_hosts).
        "PORTAL_EXTRA_HOSTS": env_list("PORTAL_EXTRA_HOSTS"),
        # STUN/TURN servers for the video room, as RTCPeerConnection takes them, e.g.
        # '[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]'
        "PORTAL_ICE_SERVERS": json.loads(env("PORTAL_ICE_SERVERS") or "[]"),
        # coturn with use-auth-secret: each room page gets credentials of its own, minted from
        # this secret, valid for PORTAL_TURN_TTL seconds (see practice/turn.py).
        "PORTAL_TURN_URLS": env_list("PORTAL_TURN_URLS"),
        "PORTAL_TURN_SECRET": env("PORTAL_TURN_SECRET") or "",
        "PORTAL_TURN_TTL": int(env("PORTAL_TURN_TTL") or 2 * 3600),
        "PORTAL_STUN_URLS": env_list("PORTAL_STUN_URLS"),
    }


def secret_key(instance_path: str) -> str:
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


LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def trusted_hosts(base_url: str) -> list[str]:
    """The Host names a request may carry: PORTAL_BASE_URL's, and for a portal served on this
    machine (the dev server) both loopback names.

    Flask then answers any other Host with 400 before routing, so no redirect (a 308 to add a
    slash, a Location) and no url_for is ever built from a Host an attacker chose. Answering
    400 to strangers is more robust than fixing each place that reads the Host: a new redirect
    cannot forget it. A proxy in front must pass the public Host on (it does by default)."""
    host = urlsplit(base_url).hostname or "localhost"
    return [host, *(name for name in LOOPBACK_HOSTS if name != host)] if host in LOOPBACK_HOSTS else [host]


def load(app, test_config: dict) -> None:
    """Fill app.config: our defaults, the environment, the test's values, derived settings."""
    app.config.from_mapping(DEFAULTS)
    app.config.update(environment_config(app.instance_path))
    app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key(app.instance_path)
    if app.config["RATELIMIT_STORAGE_URI"] == "memory://" \
            and app.config.get("RATELIMIT_STRATEGY", "fixed-window") == "fixed-window":
        # The same counters, kept without a thread per request (portico/ratelimit_storage.py).
        app.config["RATELIMIT_STORAGE_URI"] = f"{ratelimit_storage.SCHEME}://"
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 2, "socket_timeout": 2})
    if app.config.get("TRUSTED_HOSTS") is None:  # a test (or an operator) may name them itself
        app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config["PORTAL_BASE_URL"]) + app.config["PORTAL_EXTRA_HOSTS"]
    secure = app.config["PORTAL_BASE_URL"].startswith("https://")
    app.config.update(
        SESSION_COOKIE_NAME="__Host-portico_csrf" if secure else "portico_csrf",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PORTAL_SESSION_COOKIE="__Host-portico" if secure else "portico",
    )
