"""What the domain needs from the application around it, given once by whoever builds it
(the web factory, the worker, a script: see practice/wiring.py).

The domain never asks Flask for its configuration: it reads `current().settings`, renders
email through `current().renderer`, sends through `current().mailer`, and tells
`current().listeners` what changed.
"""
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Protocol
from urllib.parse import urlsplit

from .turn import TurnSettings


@dataclass(frozen=True)
class Settings:
    base_url: str  # PORTAL_BASE_URL: the only source of hosts in emailed links
    secret_key: str
    mail_sender: str = "portal@localhost"
    dev_mailbox: bool = True  # no SMTP server: mail is kept for /dev/mailbox, never sent
    lease: timedelta = timedelta(minutes=2)  # how long a mail or reminder claim holds
    signal_wait_seconds: float = 20  # how long a signalling long-poll waits for a message
    # How long answered sign-in requests and sent emails are kept (practice/retention.py).
    retention: timedelta = timedelta(days=90)
    turn: TurnSettings = field(default_factory=TurnSettings)  # STUN/TURN for the video room

    @property
    def code_key(self) -> bytes:
        """The key sign-in codes are hashed with (a stolen table must not give them up)."""
        return self.secret_key.encode()

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"


class EmailRenderer(Protocol):
    def render(self, template: str, **context) -> str:
        """The named template (e.g. 'email/sign_in.txt') rendered with `context`."""

    def url(self, endpoint: str, **values) -> str:
        """An absolute URL on the base URL for an endpoint (e.g. 'signin.link_open')."""


class Translator(Protocol):
    """Client-facing words in the client's language (the web app's: Flask-Babel's catalogs)."""

    def language(self) -> str:
        """The language now in force ('en', 'es')."""

    def using(self, language: str):
        """A context manager: text, emails and dates inside it are in `language`."""

    def gettext(self, message: str, **variables) -> str: ...

    def ngettext(self, singular: str, plural: str, num: int, **variables) -> str: ...


class EnglishOnly:
    """A script's translator: the source text, which is English."""

    def language(self) -> str:
        return "en"

    @contextmanager
    def using(self, language: str):
        yield

    def gettext(self, message: str, **variables) -> str:
        return message % variables if variables else message

    def ngettext(self, singular: str, plural: str, num: int, **variables) -> str:
        variables.setdefault("num", num)
        return (singular if num == 1 else plural) % variables


class Mailer(Protocol):
    def connect(self):
        """A context manager for one SMTP connection whose `send(email_row)` sends one
        outbox row, raising practice.mail.MessageRefused for a message the server refuses."""


@dataclass(frozen=True)
class Listeners:
    """Who follows a change: each is called with the change's details, in order."""
    appointment_changed: tuple[Callable, ...] = ()  # (appointment, change, now)
    settings_changed: tuple[Callable, ...] = ()  # (names of the settings changed)
    client_zone_changed: tuple[Callable, ...] = ()  # (client)


def _no_wake() -> None:
    pass


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    renderer: EmailRenderer
    mailer: Mailer | None = None  # None: nothing can be sent (the dev mailbox keeps mail)
    listeners: Listeners = field(default_factory=Listeners)
    wake_mail: Callable[[], None] = _no_wake  # ask the mail job to run now, not at its next tick
    translator: Translator = field(default_factory=EnglishOnly)


class NotConfigured(RuntimeError):
    """The domain was used before practice.wiring.build_domain() gave it its runtime."""


_default: Runtime | None = None
_active: ContextVar[Runtime | None] = ContextVar("portico_runtime", default=None)


def configure(runtime: Runtime) -> None:
    """The runtime of this process (the latest built), used wherever none is active."""
    global _default
    _default = runtime


def push(runtime: Runtime):
    """Use `runtime` until pop(token): one app's context among several in one process."""
    return _active.set(runtime)


def pop(token) -> None:
    _active.reset(token)


@contextmanager
def active(runtime: Runtime):
    """Use `runtime` within this block."""
    token = push(runtime)
    try:
        yield runtime
    finally:
        pop(token)


def current() -> Runtime:
    runtime = _active.get() or _default
    if runtime is None:
        raise NotConfigured("call practice.wiring.build_domain() (create_app() does) before using the domain")
    return runtime


def settings() -> Settings:
    return current().settings
