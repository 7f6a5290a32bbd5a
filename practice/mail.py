"""Mail: compose into the outbox, and the job that claims due rows and sends them.

A request only inserts rows. The mail job claims a few due rows atomically (with a lease, so
a sender that dies mid-send is retried), sends them over one SMTP connection and records
each outcome; SMTP being down loses nothing.
"""
import functools
import io
import logging
import os
import secrets
import smtplib
import socket
import ssl
from datetime import datetime, timedelta
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import urlsplit

from flask import current_app, render_template
from flask_mail import BadHeaderError, Connection, Message

from .clock import format_local, utcnow
from .models import Email, Practice, is_sqlite, write_transaction

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)  # the default; MAIL_LEASE_SECONDS overrides it
BATCH = 20
SCRUBBED = "(This message has been sent. Its body is not kept because it carried a one-time link.)"


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


def external_url(endpoint: str, **values) -> str:
    """An absolute URL on PORTAL_BASE_URL: emailed links never take the request's Host."""
    base = urlsplit(current_app.config["PORTAL_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


def uses_dev_mailbox() -> bool:
    return not current_app.config.get("MAIL_SERVER")


def queue_email(**fields) -> Email:
    """Render email/<template>.txt and .html into an outbox row; sending is the job's."""
    return Email.create(**compose_email(**fields))


def queue_emails(rows: list[dict]) -> list[int]:
    """Insert composed outbox rows at once (inside the caller's transaction); their ids, in order."""
    if not rows:
        return []
    Email.insert_many(rows).execute()
    message_ids = [row["message_id"] for row in rows]
    ids = dict(Email.select(Email.message_id, Email.id).where(Email.message_id.in_(message_ids)).tuples())
    return [ids[message_id] for message_id in message_ids]


def compose_email(*, to: str, subject: str, template: str, kind: str, client=None, link=None,
                  now: datetime | None = None, ics: str | None = None, practice: Practice | None = None,
                  **context) -> dict:
    """An outbox row's fields: email/<template>.txt and .html rendered, a fresh Message-ID."""
    now = now or utcnow()
    practice = practice or Practice.current()
    context.update(practice=practice)
    domain = urlsplit(current_app.config["PORTAL_BASE_URL"]).hostname or "localhost"
    return dict(
        to_addr=to,
        subject=subject,
        text_body=render_template(f"email/{template}.txt", **context),
        html_body=render_template(f"email/{template}.html", **context),
        reply_to=practice.contact_email or current_app.config.get("MAIL_DEFAULT_SENDER"),
        # Random from secrets, not make_msgid's `random` (Hypothesis, or any library, may
        # reseed it: equal ids and a 500 on the unique column), and short: a long header
        # is folded, and some mail tools then read the id back with a leading space. The
        # pid says which process queued it, as make_msgid's did.
        message_id=f'<{os.getpid()}.{secrets.token_hex(10)}.{kind.replace("_", "-")}@{domain}>',
        kind=kind,
        client=client,
        link=link,
        ics=ics,
        queued_at=now,
        next_attempt_at=now,
    )


# Mail that carries a one-time link: template and kind, and its subject (the practice's
# name and the time it was sent, so that no two threads together in a mail client).
LINK_MAIL = {
    "sign_in": "Your sign-in link for {practice} (sent {sent})",
    "invitation": "Welcome to {practice}'s client portal (sent {sent})",
}


def queue_sign_in_email(issued, *, now: datetime | None = None, template: str = "sign_in") -> Email:
    """The email that carries a freshly issued link and its code."""
    now = now or utcnow()
    practice = Practice.current()
    client = issued.link.client
    lifetime = issued.link.expires_at - issued.link.issued_at
    return queue_email(
        to=client.email,
        subject=LINK_MAIL[template].format(practice=practice.name, sent=format_local(now, practice.timezone)),
        template=template,
        kind=template,
        client=client,
        link=issued.link,
        now=now,
        client_name=client.name,
        url=external_url("signin.link_open", token=issued.token),
        sign_in_url=external_url("signin.sign_in_page"),
        code=issued.code,
        lifetime=describe_duration(lifetime),
        expires=format_local(issued.link.expires_at, client.timezone or practice.timezone),
    )


def describe_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return "1 hour" if hours == 1 else f"{hours} hours"


def claim_due_mail(now: datetime, batch: int = BATCH) -> list[Email]:
    """Atomically take up to `batch` due rows: two senders never take the same row."""
    with write_transaction():
        ids = []
        # Two queries the index answers in order (ids only), where one with OR sorted every
        # queued row's bodies at each claim. What a dead sender left goes first.
        for query in (Email.abandoned(now), Email.due(now)):
            query = query.columns(Email.id).limit(batch - len(ids))
            if not is_sqlite():
                query = query.for_update("FOR UPDATE SKIP LOCKED")
            ids += [row_id for (row_id,) in query.tuples()]
            if len(ids) == batch:
                break
        if ids:
            lease = timedelta(seconds=current_app.config.get("MAIL_LEASE_SECONDS") or LEASE.total_seconds())
            Email.update(status="sending", lease_until=now + lease).where(Email.id.in_(ids)).execute()
    return list(Email.select().where(Email.id.in_(ids)).order_by(Email.id)) if ids else []


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


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


def _as_message(row: Email) -> Message:
    message = OutboxMessage(
        subject=row.subject,
        recipients=[row.to_addr],
        body=row.text_body,
        html=row.html_body,
        reply_to=row.reply_to,
        sender=current_app.config.get("MAIL_DEFAULT_SENDER") or row.reply_to,
    )
    message.msgId = row.message_id
    if row.ics:
        message.attach("appointment.ics", "text/calendar; charset=utf-8", row.ics.encode())
    return message


def _mark_sent(rows: list[Email], now: datetime, transport: str) -> None:
    """Record rows as sent in one transaction; mail that carried a one-time link keeps no body."""
    if not rows:
        return
    update = dict(status="sent", sent_at=now, lease_until=None, transport=transport, last_error=None,
                  attempts=Email.attempts + 1)
    scrub = {row.id for row in rows if transport == "smtp" and row.link_id is not None}
    keep = [row.id for row in rows if row.id not in scrub]
    with write_transaction():
        if scrub:
            Email.update(**update, text_body=SCRUBBED, html_body=SCRUBBED).where(Email.id.in_(list(scrub))).execute()
        if keep:
            Email.update(**update).where(Email.id.in_(keep)).execute()


def _mark_failed(row: Email, now: datetime, error: str, *, permanent: bool = False) -> None:
    attempts = row.attempts + 1
    Email.update(
        status="failed" if permanent or attempts >= 10 else "queued",
        attempts=attempts,
        last_error=error[:500],
        lease_until=None,
        next_attempt_at=now + backoff(attempts),
    ).where(Email.id == row.id).execute()
    log.warning("mail %s to client %s not sent (attempt %s): %s", row.id, row.client_id, attempts, error[:200])


def send_due_mail(now: datetime | None = None, batch: int = BATCH) -> int:
    """The mail job's tick: send what is due; returns how many left. Runs in an app context."""
    now = now or utcnow()
    rows = claim_due_mail(now, batch)
    if not rows:
        return 0
    if uses_dev_mailbox():
        _mark_sent(rows, now, "dev-mailbox")
        return len(rows)
    sent, failure = 0, None
    mail_state = current_app.extensions["mail"]
    try:
        with TimeoutConnection(mail_state, current_app.config["MAIL_TIMEOUT"]) as connection:
            for row in rows:
                try:
                    connection.send(_as_message(row))
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, BadHeaderError) as error:
                    # One refused recipient must not stop the batch.
                    _mark_failed(row, now, f"refused: {error}", permanent=isinstance(error, BadHeaderError))
                    continue
                # Recorded as soon as the server took it: a sender killed mid-batch re-sends
                # only the message in flight, not the batch, after its lease.
                _mark_sent([row], now, "smtp")
                sent += 1
    except (OSError, smtplib.SMTPException, socket.timeout) as error:
        failure = f"{type(error).__name__}: {error}"
    if failure:
        for row in Email.select().where(Email.id.in_([r.id for r in rows]) & (Email.status == "sending")):
            _mark_failed(row, now, failure)
    return sent
