"""Sending outbox rows over SMTP with Flask-Mail: the mailer the domain's mail job is given.
The outbox, its claims and retries are the domain's (practice/mail.py); this is the wire."""
import base64
import functools
import re
import secrets
import smtplib
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from email.header import Header
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr, quote

from flask_mail import Connection, Message, sanitize_address

from practice.mail import MessageRefused, MessageTimedOut


class FlaskMailer:
    """The app's Flask-Mail settings, opened once per mail tick with a timeout, verified TLS
    and an overall deadline per message."""

    def __init__(self, app):
        self.app = app
        self.timeout = app.config["MAIL_TIMEOUT"]
        self.deadline = app.config["MAIL_DEADLINE"]
        self.sender = app.config.get("MAIL_DEFAULT_SENDER")

    @contextmanager
    def connect(self):
        # Flask-Mail reads its settings (and builds messages) inside the app's context.
        with self.app.app_context(), Sending(self.app.extensions["mail"], self.sender, self.timeout,
                                             self.deadline) as sending:
            yield sending


@dataclass(frozen=True)
class Prepared:
    """A message ready for the wire: its envelope and its bytes."""
    sender: str
    recipients: list
    data: bytes


class Sending:
    """One SMTP connection, opened when the first message needs it and again after a message
    that ran out of time. `prepare` builds a message (it may run in another thread, while the
    connection waits on the server); `send` puts it on the wire within MAIL_DEADLINE."""

    def __init__(self, mail, sender: str | None, timeout: float, deadline: float):
        self.mail, self.sender, self.timeout, self.deadline = mail, sender, timeout, deadline
        self.connection = None
        self.watchdog = Watchdog()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.watchdog.stop()
        self.close(polite=exc_info[0] is None)

    def prepare(self, row) -> Prepared:
        message = as_message(row, self.sender)
        if message.has_bad_headers():
            raise MessageRefused("a header holds a line break", permanent=True)
        message.date = time.time()
        return Prepared(envelope_address(message.sender), [envelope_address(to) for to in message.send_to],
                        message.as_bytes())

    def send(self, prepared: Prepared) -> None:
        """Connecting (when needed) and the whole conversation for this message share one
        deadline: a server that answers a byte at a time cannot hold it past that."""
        self.watchdog.arm(self.deadline)
        try:
            if self.connection is None:
                self.connection = DeadlineConnection(self.mail, self.timeout, self.watchdog)
                self.connection.__enter__()
            self.connection.host.sendmail(prepared.sender, prepared.recipients, prepared.data)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
            if self.watchdog.disarm():
                self.close(polite=False)
                raise MessageTimedOut(self.deadline) from error
            raise MessageRefused(str(error)) from error
        except (OSError, smtplib.SMTPException) as error:
            fired = self.watchdog.disarm()
            self.close(polite=False)
            if fired:
                raise MessageTimedOut(self.deadline) from error
            raise
        if self.watchdog.disarm():  # it went through just as the time ran out: a fresh line for the next
            self.close(polite=False)

    def close(self, *, polite: bool) -> None:
        connection, self.connection = self.connection, None
        if connection is None or connection.host is None:
            return
        try:
            if polite:
                connection.host.quit()
            else:
                connection.host.close()
        except (OSError, smtplib.SMTPException):
            connection.host.close()


class Watchdog:
    """Shuts the SMTP socket down once the message in flight passes its deadline, which ends
    any read or write blocked on it. MAIL_TIMEOUT bounds each read; a server that sends a byte
    just before each read times out would otherwise hold a message (and the mail behind it)
    for as long as it likes. One thread per connection, waiting on a condition."""

    def __init__(self):
        self.condition = threading.Condition()
        self.until = None  # the deadline (time.monotonic) of the message in flight
        self.host = None  # the smtplib object whose socket the deadline shuts
        self.fired = self.stopped = False
        self.thread = threading.Thread(target=self.watch, name="smtp-deadline", daemon=True)
        self.thread.start()

    def arm(self, seconds: float) -> None:
        with self.condition:
            self.until, self.fired = time.monotonic() + seconds, False
            self.condition.notify()

    def watching(self, host) -> None:
        with self.condition:
            self.host = host

    def disarm(self) -> bool:
        """No message in flight; whether its deadline had passed."""
        with self.condition:
            self.until = None
            self.condition.notify()
            return self.fired

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify()
        self.thread.join()

    def watch(self) -> None:
        with self.condition:
            while not self.stopped:
                if self.until is None:
                    self.condition.wait()
                    continue
                left = self.until - time.monotonic()
                if left > 0:
                    self.condition.wait(left)
                    continue
                self.until, self.fired = None, True
                sock = getattr(self.host, "sock", None)
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


class DeadlineConnection(Connection):
    """Flask-Mail 0.10 opens SMTP with no timeout and no certificate checks (its issues
    #114 and #241): a silent server would hang the sender and TLS would trust anyone. This
    opens it with both, under the watchdog from the first byte (the greeting included)."""

    def __init__(self, mail, timeout: float, watchdog: Watchdog):
        super().__init__(mail)
        self.timeout, self.watchdog = timeout, watchdog

    def configure_host(self):
        options = dict(timeout=self.timeout, local_hostname=local_hostname(), watchdog=self.watchdog)
        if self.mail.use_ssl:
            host = WatchedSMTPSSL(self.mail.server, self.mail.port, context=tls_context(), **options)
        else:
            host = WatchedSMTP(self.mail.server, self.mail.port, **options)
        if self.mail.use_tls:
            host.starttls(context=tls_context())
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class Watched:
    """smtplib's connect() with the watchdog told whose socket to shut, before the greeting is read."""

    def __init__(self, *args, watchdog: Watchdog, **kwargs):
        self.watchdog = watchdog
        super().__init__(*args, **kwargs)

    def connect(self, *args, **kwargs):
        self.watchdog.watching(self)
        return super().connect(*args, **kwargs)


class WatchedSMTP(Watched, smtplib.SMTP):
    pass


class WatchedSMTPSSL(Watched, smtplib.SMTP_SSL):
    pass


@functools.cache
def local_hostname() -> str:
    """What EHLO says: smtplib looks up this machine's name (a DNS query) for every connection."""
    return socket.getfqdn()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying context per process: loading the system's CA certificates costs tens of
    milliseconds, which once per connection (every 20 messages) was a third of the mail tick."""
    return ssl.create_default_context()


class _SmtpCompat32(Compat32):
    """compat32 with SMTP's line ends. A plain header that is short, or one word that cannot
    be folded (a long Message-ID), is written as it is: compat32 would start it on a line of
    its own, and the value would begin with a space. (fold_binary is the policy API's hook
    for writing a header; BytesGenerator calls it for each one.)"""

    def fold_binary(self, name, value):
        if isinstance(value, str) and value.isascii() and "\n" not in value and "\r" not in value:
            length = len(name) + len(value) + 2
            if length <= self.max_line_length or (length <= 998 and not any(c.isspace() for c in value)):
                return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


SMTP_COMPAT32 = _SmtpCompat32(linesep="\r\n")
FOLDABLE_WORD = 60  # longer words in a header do not fit a folded line: policy.SMTP handles those


class OutboxMessage(Message):
    """Flask-Mail's message, written straight to bytes.

    Flask-Mail builds the MIME tree with its headers already encoded, then has policy.SMTP
    write it, which parses every header again; building the same tree from the email
    package's classes and writing it with compat32 still took a millisecond a message, most
    of it parsing and re-quoting parameters the package had just written. For what the outbox
    sends (a text and an HTML part, maybe an invitation, attachments, headers that are ASCII
    and fold at spaces) the bytes that tree gives are written here directly, each header
    folded by the email package's own policy (tests/test_mail_bytes.py compares the two);
    anything else takes Flask-Mail's own path."""

    def as_bytes(self) -> bytes:
        if not self._plain_headers() or not self._outbox_shaped():
            return super().as_bytes()
        return self.written(new_boundary(), new_boundary())

    def _plain_headers(self) -> bool:
        values = [self.subject, self.reply_to, self.sender, *self.recipients]
        text = " ".join(" ".join(v) if isinstance(v, tuple) else v for v in values if v)
        return text.isascii() and max(map(len, text.split()), default=0) <= FOLDABLE_WORD

    def _outbox_shaped(self) -> bool:
        """Only what written() writes as Flask-Mail's tree would be: UTF-8, no Cc, no extra
        headers, an HTML part, alternatives of the kinds below, attachments with plain names
        (Flask-Mail may rewrite other names) and a plain type."""
        return (bool(self.alts) and self.body is not None and self.charset in (None, "utf-8") and not self.cc
                and not self.extra_headers and all(ALTERNATIVE.fullmatch(kind) for kind in self.alts)
                and all(a.filename and a.filename.isascii() and a.filename.split() == [a.filename]
                        and not a.headers and ATTACHMENT_TYPE.fullmatch(a.content_type) for a in self.attachments))

    def written(self, mixed: str, alternative: str) -> bytes:
        """The message with these boundaries, as compat32 writes the tree Flask-Mail 0.10
        builds for it: multipart/mixed of a multipart/alternative (the text, the HTML, an
        invitation) and the attachments, base64."""
        headers = [("Content-Type", f'multipart/mixed; boundary="{mixed}"'), ("MIME-Version", "1.0")]
        if self.subject:
            headers.append(("Subject", self.subject))  # ASCII: Flask-Mail leaves it as it is
        headers += [("From", _encoded_address(self.sender, "utf-8")),
                    ("To", ", ".join(list({_encoded_address(to, "utf-8") for to in self.recipients}))),
                    ("Date", formatdate(self.date, localtime=True)),
                    ("Message-ID", self.msgId)]
        if self.reply_to:
            headers.append(("Reply-To", _encoded_address(self.reply_to, "utf-8")))
        texts = [_text_part(subtype, content) for subtype, content in [("plain", self.body), *self.alts.items()]]
        return _multipart(headers, [
            _multipart([("Content-Type", f'multipart/alternative; boundary="{alternative}"'), ("MIME-Version", "1.0")],
                       texts, alternative),
            *(_attachment_part(attachment) for attachment in self.attachments)], mixed)


# Alternatives Flask-Mail makes with MIMEText(content, kind): "html", and an invitation
# ("calendar; method=REQUEST", from as_message); attachment types as as_message gives them.
ALTERNATIVE = re.compile(r"html|calendar; method=[A-Z-]+")
ATTACHMENT_TYPE = re.compile(r"[a-z]+/[a-z.+-]+(; [a-z-]+=[A-Za-z0-9-]+)*")
LINE_END = re.compile(r"\r\n|\r|\n")  # what the generator splits a text payload on (email.generator.NLCRE)
CRLF = b"\r\n"


def _headers(headers: list[tuple[str, str]]) -> bytes:
    return b"".join(SMTP_COMPAT32.fold_binary(name, value) for name, value in headers) + CRLF


def _multipart(headers: list[tuple[str, str]], parts: list[bytes], boundary: str) -> bytes:
    """A multipart entity as the generator writes one: no preamble, no epilogue."""
    delimiter = f"--{boundary}".encode()
    return (_headers(headers) + delimiter + CRLF + (CRLF + delimiter + CRLF).join(parts)
            + CRLF + delimiter + b"--" + CRLF)


def _text_part(subtype: str, content: str) -> bytes:
    """MIMEText(content, subtype, "utf-8"): as Flask-Mail registers UTF-8 (no body encoding),
    the text as it is, 7bit when it is ASCII, else 8bit; line ends become CRLF."""
    kind, _, method = subtype.partition("; method=")
    headers = [("Content-Type", f'text/{kind}; charset="utf-8"'), ("MIME-Version", "1.0")]
    if method:  # set_param rewrote the type with its parameter quoted: the header went to the end
        headers = [("MIME-Version", "1.0"), ("Content-Type", f'text/{kind}; method="{method}"; charset="utf-8"')]
    data = LINE_END.sub("\r\n", content).encode()
    return _headers([*headers, ("Content-Transfer-Encoding", "7bit" if data.isascii() else "8bit")]) + data


def _attachment_part(attachment) -> bytes:
    """MIMEBase with the attachment's type as given, its bytes in base64 lines of 76."""
    return _headers([("Content-Type", attachment.content_type), ("MIME-Version", "1.0"),
                     ("Content-Transfer-Encoding", "base64"),
                     ("Content-Disposition", f'{attachment.disposition}; filename="{quote(attachment.filename)}"')]
                    ) + base64.encodebytes(attachment.data).replace(b"\n", CRLF)


def new_boundary() -> str:
    """A boundary of our own, 96 random bits that no text in a part can guess (the generator's
    own choice searches the whole message for a clash, with a regular expression compiled per
    boundary), and short enough that the Content-Type that names it fits on one line: folding
    it was a third of writing the headers."""
    return f"=_{secrets.token_hex(12)}"


# Flask-Mail's envelope address (parsed, its name encoded): a third of building a message, and
# the sender is the same for every message, a client's address the same for each of theirs.
envelope_address = functools.lru_cache(maxsize=4096)(sanitize_address)


@functools.lru_cache(maxsize=1024)  # the sender and the Reply-To are the same for every message
def _encoded_address(address: str | tuple[str, str], encoding: str) -> str:
    """An ASCII address as Flask-Mail writes it: the display name always as an encoded word."""
    name, address = parseaddr(address) if isinstance(address, str) else address
    return formataddr((Header(name, encoding).encode(), address))


def as_message(row, sender: str | None) -> Message:
    """An outbox row as the message Flask-Mail sends."""
    message = OutboxMessage(
        subject=row.subject,
        recipients=[row.to_addr],
        body=row.text_body,
        html=row.html_body,
        reply_to=row.reply_to,
        sender=sender or row.reply_to,
    )
    message.msgId = row.message_id
    if row.ics:
        # Mail apps offer an invitation (and update it later) from a text/calendar part
        # inside the multipart/alternative that names its method (RFC 6047); the attachment
        # is for the rest. Flask-Mail makes each alternative with MIMEText(content, key):
        # the email package writes the key after "text/", parameters included, just as
        # Flask-Mail's attach() takes "text/calendar; charset=utf-8".
        content_type = f"calendar; method={calendar_method(row.ics)}"
        message.alts[content_type] = row.ics
        message.attach("appointment.ics", f"text/{content_type}; charset=utf-8", row.ics.encode())
    return message


def calendar_method(ics: str) -> str:
    """The iTIP method of a calendar (REQUEST, CANCEL, PUBLISH), from its METHOD line."""
    match = re.search(r"^METHOD:([A-Z-]+)\r?$", ics, re.MULTILINE)
    return match.group(1) if match else "PUBLISH"
