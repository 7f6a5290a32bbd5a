"""Sending outbox rows over SMTP with Flask-Mail: the mailer the domain's mail job is given.
The outbox, its claims and retries are the domain's (practice/mail.py); this is the wire."""
import functools
import io
import re
import smtplib
import ssl
from contextlib import contextmanager
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr

from flask_mail import BadHeaderError, Connection, Message

from practice.mail import MessageRefused


class FlaskMailer:
    """The app's Flask-Mail settings, opened once per batch with a timeout and verified TLS
    (Flask-Mail writes messages inside the app's context)."""

    def __init__(self, app):
        self.app = app
        self.timeout = app.config["MAIL_TIMEOUT"]
        self.sender = app.config.get("MAIL_DEFAULT_SENDER")

    @contextmanager
    def connect(self):
        with self.app.app_context(), TimeoutConnection(self.app.extensions["mail"], self.timeout) as connection:
            yield _Sending(connection, self.sender)


class _Sending:
    def __init__(self, connection, sender: str):
        self.connection = connection
        self.sender = sender

    def send(self, row) -> None:
        try:
            self.connection.send(as_message(row, self.sender))
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
            raise MessageRefused(str(error)) from error
        except BadHeaderError as error:
            raise MessageRefused(str(error), permanent=True) from error


class TimeoutConnection(Connection):
    """Flask-Mail 0.10 opens SMTP with no timeout and no certificate checks (its issues
    #114 and #241): a silent server would hang the sender and TLS would trust anyone."""

    def __init__(self, mail, timeout: float):
        super().__init__(mail)
        self.timeout = timeout

    def configure_host(self):
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(self.mail.server, self.mail.port, timeout=self.timeout, context=tls_context())
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls(context=tls_context())
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


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
    """Flask-Mail's message, written out by the email package's compat32 generator.

    Flask-Mail builds the MIME tree with its headers already encoded, then has policy.SMTP
    write it, which parses every header again: over half of the mail tick's time. For what
    the outbox sends (a text and an HTML part, attachments, headers that are ASCII and fold
    at spaces) the same tree is built here from the email package's public classes and
    written by compat32 in a fraction of it; anything else takes Flask-Mail's own path."""

    def as_bytes(self) -> bytes:
        if not self._plain_headers() or not self._outbox_shaped():
            return super().as_bytes()
        buffer = io.BytesIO()
        BytesGenerator(buffer, mangle_from_=False, policy=SMTP_COMPAT32).flatten(self._mime_tree())
        return buffer.getvalue()

    def _plain_headers(self) -> bool:
        values = [self.subject, self.reply_to, self.sender, *self.recipients]
        text = " ".join(" ".join(v) if isinstance(v, tuple) else v for v in values if v)
        return text.isascii() and max(map(len, text.split()), default=0) <= FOLDABLE_WORD

    def _outbox_shaped(self) -> bool:
        """Only what _mime_tree builds as Flask-Mail would: no Cc, no extra headers, an HTML
        part, attachments with plain names (Flask-Mail may rewrite other names)."""
        return bool(self.alts) and self.body is not None and not self.cc and not self.extra_headers and all(
            a.filename and a.filename.isascii() and a.filename.split() == [a.filename] and not a.headers
            for a in self.attachments)

    def _mime_tree(self) -> MIMEMultipart:
        """The tree Flask-Mail 0.10 builds for such a message, part for part and header for header."""
        encoding = self.charset or "utf-8"
        tree = MIMEMultipart()
        alternative = MIMEMultipart("alternative")
        alternative.attach(MIMEText(self.body, "plain", encoding))
        for subtype, content in self.alts.items():
            alternative.attach(MIMEText(content, subtype, encoding))
        tree.attach(alternative)
        if self.subject:
            tree["Subject"] = self.subject  # ASCII: Flask-Mail leaves it as it is
        tree["From"] = _encoded_address(self.sender, encoding)
        tree["To"] = ", ".join(list({_encoded_address(to, encoding) for to in self.recipients}))
        tree["Date"] = formatdate(self.date, localtime=True)
        tree["Message-ID"] = self.msgId
        if self.reply_to:
            tree["Reply-To"] = _encoded_address(self.reply_to, encoding)
        for attachment in self.attachments:
            part = MIMEBase(*attachment.content_type.split("/"))
            part.set_payload(attachment.data)
            encode_base64(part)
            part.add_header("Content-Disposition", attachment.disposition, filename=attachment.filename)
            tree.attach(part)
        return tree


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
