"""Mail: compose into the outbox, and the job that claims due rows and sends them.

A request only inserts rows. The mail job claims a few due rows atomically (with a lease, so
a sender that dies mid-send is retried), sends them over one SMTP connection and records
each outcome; SMTP being down loses nothing.
"""
import functools
import logging
import secrets
import smtplib
import socket
import ssl
from datetime import datetime, timedelta
from email.utils import make_msgid
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


def queue_email(*, to: str, subject: str, template: str, kind: str, client=None, link=None,
                now: datetime | None = None, ics: str | None = None, practice: Practice | None = None,
                **context) -> Email:
    """Render email/<template>.txt and .html into an outbox row; sending is the job's."""
    now = now or utcnow()
    practice = practice or Practice.current()
    context.update(practice=practice)
    domain = urlsplit(current_app.config["PORTAL_BASE_URL"]).hostname or "localhost"
    return Email.create(
        to_addr=to,
        subject=subject,
        text_body=render_template(f"email/{template}.txt", **context),
        html_body=render_template(f"email/{template}.html", **context),
        reply_to=practice.contact_email or current_app.config.get("MAIL_DEFAULT_SENDER"),
        # make_msgid alone adds only 17 random bits to the time: mail queued in one
        # centisecond (a batch of reminders) could collide, and the column is unique.
        message_id=make_msgid(idstring=f'{kind.replace("_", "-")}.{secrets.token_hex(8)}', domain=domain),
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
        query = Email.due(now).limit(batch)
        if not is_sqlite():
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        ids = [row.id for row in query]
        if ids:
            lease = timedelta(seconds=current_app.config.get("MAIL_LEASE_SECONDS") or LEASE.total_seconds())
            Email.update(status="sending", lease_until=now + lease).where(Email.id.in_(ids)).execute()
    return list(Email.select().where(Email.id.in_(ids)).order_by(Email.id)) if ids else []


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _as_message(row: Email) -> Message:
    message = Message(
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


def _mark_sent(row: Email, now: datetime, transport: str) -> None:
    update = dict(status="sent", sent_at=now, lease_until=None, transport=transport, last_error=None,
                  attempts=Email.attempts + 1)
    if transport == "smtp" and row.link_id is not None:
        update.update(text_body=SCRUBBED, html_body=SCRUBBED)
    Email.update(**update).where(Email.id == row.id).execute()


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
        for row in rows:
            _mark_sent(row, now, "dev-mailbox")
        return len(rows)
    sent = 0
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
                _mark_sent(row, now, "smtp")
                sent += 1
    except (OSError, smtplib.SMTPException, socket.timeout) as error:
        for row in Email.select().where(Email.id.in_([r.id for r in rows]) & (Email.status == "sending")):
            _mark_failed(row, now, f"{type(error).__name__}: {error}")
    return sent
