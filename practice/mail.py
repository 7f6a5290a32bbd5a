"""Mail: compose into the outbox, and the job that claims due rows and sends them.

A request only inserts rows. The mail job claims a few due rows atomically (with a lease, so
a sender that dies mid-send is retried), sends them over one SMTP connection (the runtime's
mailer: portico/mailer.py) and records each outcome; SMTP being down loses nothing.
"""
import contextvars
import logging
import os
import re
import secrets
import smtplib
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timedelta

from . import runtime
from .clock import format_local, utcnow
from .i18n import current_language, gettext as _, in_language, ngettext
from .models import Email, Practice, after_commit, commits_not_waiting_for_disk, db, is_sqlite, write_transaction
from .prepared import Prepared, db_values, slot
from .sealed import UNREADABLE

log = logging.getLogger(__name__)

BATCH = 20
SCRUBBED = "(This message has been sent. Its body is not kept because it carried a one-time link.)"


def external_url(endpoint: str, **values) -> str:
    """An absolute URL on PORTAL_BASE_URL: emailed links never take the request's Host."""
    return runtime.current().renderer.url(endpoint, **values)


def uses_dev_mailbox() -> bool:
    return runtime.settings().dev_mailbox


def mail_waiting() -> None:
    """Someone is waiting for what was just queued: the mail job runs as soon as the
    transaction that queued it commits, not at its next tick."""
    after_commit(runtime.current().wake_mail)


def queue_email(**fields) -> Email:
    """Render email/<template>.txt and .html into an outbox row; sending is the job's."""
    email = insert_email(compose_email(**fields))
    mail_waiting()
    return email


# What compose_email fills in, and the defaults it leaves to the columns.
_QUEUED_FIELDS = (Email.to_addr, Email.subject, Email.text_body, Email.html_body, Email.reply_to, Email.message_id,
                  Email.kind, Email.client, Email.link, Email.ics, Email.status, Email.queued_at,
                  Email.next_attempt_at, Email.attempts)
# One INSERT per sign-in email: its SQL built once (practice/prepared.py), where building it
# per row cost more than the database took to run it.
_NEW_EMAIL = Prepared(lambda: Email.insert(**{field.name: slot(field.name) for field in _QUEUED_FIELDS}))


def insert_email(fields: dict) -> Email:
    """One composed outbox row inserted; the row as Email.create would give it."""
    fields = dict(status=Email.status.default, attempts=Email.attempts.default, **fields)
    return Email(id=_NEW_EMAIL.insert(**db_values(_QUEUED_FIELDS, fields)), **fields)


def queue_emails(rows: list[dict]) -> list[int]:
    """Insert composed outbox rows (inside the caller's transaction); their ids, in order."""
    if not rows:
        return []
    if is_sqlite():  # in this process: a prepared INSERT per row costs less than building one for all
        ids = [insert_email(row).id for row in rows]
    else:  # one round trip for all (one per row was twice the time), the ids read back by Message-ID
        inserted = dict(Email.insert_many(rows).returning(Email.message_id, Email.id).tuples().execute())
        ids = [inserted[row["message_id"]] for row in rows]
    mail_waiting()
    return ids


def compose_email(*, to: str, subject: str, template: str, kind: str, client=None, link=None,
                  now: datetime | None = None, ics: str | None = None, practice: Practice | None = None,
                  **context) -> dict:
    """An outbox row's fields: email/<template>.txt and .html rendered, a fresh Message-ID."""
    now = now or utcnow()
    practice = practice or Practice.current()
    context.update(practice=practice, language=current_language())  # <html lang>
    settings, render = runtime.settings(), runtime.current().renderer.render
    domain = settings.host
    return dict(
        to_addr=to,
        subject=subject,
        text_body=render(f"email/{template}.txt", **context),
        html_body=render(f"email/{template}.html", **context),
        reply_to=practice.contact_email or settings.mail_sender,
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


def link_mail_subject(template: str, practice: str, sent: str, code: str) -> str:
    """Mail that carries a one-time link: its subject is one no earlier email had, so that none
    threads with another in a mail client. Sign-in mail leads with its code (read from a
    phone's notification); the code is masked in the row once it is sent."""
    if template == "invitation":
        return _("Welcome to %(practice)s's client portal (sent %(sent)s)", practice=practice, sent=sent)
    return _("%(code)s is your sign-in code for %(practice)s", code=code, practice=practice)


# The code leading a sign-in subject, in each language's words (see link_mail_subject).
CODE_IN_SUBJECT = re.compile(r"^\d{6}(?= is your sign-in code | es su código )")
MASKED_CODE = "••••••"


def masked_subject(subject: str) -> str:
    """A sent sign-in mail's subject as kept: the code hidden, the rest still says what it was."""
    return CODE_IN_SUBJECT.sub(MASKED_CODE, subject)


def unique_subject(client, subject: str, now: datetime) -> str:
    """`subject`, or with " (2)", " (3)"... after it when an email to this client queued in
    the same minute already had it: subjects name the minute, and a second invitation or
    share sent within it must not thread with the first."""
    since = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
    taken = {row.subject for (row,) in _SUBJECTS_SINCE.all(client=client.id, since=Email.queued_at.db_value(since))}
    candidate, number = subject, 1
    while candidate in taken:
        number += 1
        candidate = f"{subject} ({number})"
    return candidate


_SUBJECTS_SINCE = Prepared(lambda: Email.select(Email.subject).where(
    (Email.client == slot("client")) & (Email.queued_at >= slot("since"))))


def queue_sign_in_email(issued, *, now: datetime | None = None, template: str = "sign_in") -> Email:
    """The email that carries a freshly issued link and its code, in the client's language."""
    with in_language(issued.link.client.language):
        return _queue_sign_in_email(issued, now=now, template=template)


def _queue_sign_in_email(issued, *, now: datetime | None, template: str) -> Email:
    now = now or utcnow()
    practice = Practice.current()
    client = issued.link.client
    lifetime = issued.link.expires_at - issued.link.issued_at
    return queue_email(
        to=client.email,
        subject=unique_subject(client, link_mail_subject(template, practice.name, format_local(now, practice.timezone),
                                                         issued.code), now),
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
        expires=format_local(issued.link.expires_at, client.zone(practice)),
    )


def describe_duration(delta: timedelta) -> str:
    """'24 hours', '90 minutes', in the language in force."""
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60:
        return ngettext("%(num)d minute", "%(num)d minutes", minutes)
    return ngettext("%(num)d hour", "%(num)d hours", minutes // 60)


def claim_due_mail(now: datetime, batch: int = BATCH) -> list[Email]:
    """Atomically take up to `batch` due rows: two senders never take the same row. What a dead
    sender left goes first, then the sign-in links clients are waiting for, then the rest."""
    with write_transaction():
        rows = []
        for claim in _CLAIMS:
            rows += [row for (row,) in claim.all(now=Email.next_attempt_at.db_value(now), limit=batch - len(rows))]
            if len(rows) == batch:
                break
        if rows:
            Email.update(status="sending", lease_until=now + runtime.settings().lease).where(
                Email.id.in_([row.id for row in rows])).execute()
    return rows


# What sending needs: no timestamps to parse.
SENDING_COLUMNS = (Email.id, Email.to_addr, Email.subject, Email.text_body, Email.html_body, Email.reply_to,
                   Email.message_id, Email.kind, Email.client, Email.link, Email.ics, Email.attempts)


def _claimable(query):
    """A claim query: each reads its own index in its own order (where one with OR sorted every
    queued row's bodies at each claim), its SQL built once (building it per claim cost more
    than running it); on PostgreSQL, rows another sender holds are skipped."""
    query = query.columns(*SENDING_COLUMNS).limit(slot("limit"))
    return query if is_sqlite() else query.for_update("FOR UPDATE SKIP LOCKED")


# Abandoned (sending) and due (queued) rows are apart; so are sign-in mail and the rest.
_CLAIMS = (Prepared(lambda: _claimable(Email.abandoned(slot("now")))),
           Prepared(lambda: _claimable(Email.due(slot("now")).where(Email.kind == "sign_in"))),
           Prepared(lambda: _claimable(Email.due(slot("now")).where(Email.kind != "sign_in"))))


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _mark_sent(rows: list[Email], now: datetime, transport: str) -> None:
    """Record rows as sent in one transaction; mail that carried a one-time link keeps no body."""
    if not rows:
        return
    update = dict(status="sent", sent_at=now, lease_until=None, transport=transport, last_error=None,
                  attempts=Email.attempts + 1)
    scrub = {row.id for row in rows if transport == "smtp" and row.link_id is not None}
    keep = [row.id for row in rows if row.id not in scrub]
    with write_transaction():
        for row in rows:
            if row.id in scrub:
                Email.update(**update, text_body=SCRUBBED, html_body=SCRUBBED,
                             subject=masked_subject(row.subject)).where(Email.id == row.id).execute()
        if keep:
            Email.update(**update).where(Email.id.in_(keep)).execute()


def _record_sent(row: Email, now: datetime) -> None:
    """One message as sent over SMTP, the moment the server took it: one UPDATE, which commits
    as it runs (peewee works in autocommit outside a transaction), its SQL written once rather
    than built per message (it was a third of the mail job's own time)."""
    sql, values = SENT_SQL, [now, "smtp"]
    if row.link_id is not None:  # it carried a one-time link: no body kept, nor a code in the subject
        sql, values = SENT_SCRUBBED_SQL, [*values, SCRUBBED, SCRUBBED, masked_subject(row.subject)]
    db.execute_sql(sql.replace("?", db.param), [field.db_value(value) for field, value in zip(SENT_FIELDS, values)]
                   + [row.id])


SENT_FIELDS = (Email.sent_at, Email.transport, Email.text_body, Email.html_body, Email.subject)
SENT_SQL = ('UPDATE "email" SET "status" = \'sent\', "sent_at" = ?, "transport" = ?, "lease_until" = NULL, '
            '"last_error" = NULL, "attempts" = "attempts" + 1 WHERE "id" = ?')
SENT_SCRUBBED_SQL = SENT_SQL.replace(' WHERE', ', "text_body" = ?, "html_body" = ?, "subject" = ? WHERE')


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


class MessageRefused(Exception):
    """The server refused this one message (its recipient or sender, or a header that cannot
    be sent); the rest of the batch goes on. `permanent`: trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class MessageTimedOut(Exception):
    """This message's conversation with the server ran past its deadline (MAIL_DEADLINE); its
    connection is closed, and the rest of the batch goes on over a new one."""

    def __init__(self, seconds: float):
        super().__init__(f"the SMTP server took longer than {seconds:g} s over this message")


GIVE_UP_AFTER = 2  # messages in a row that ran out of time: the server is slow for everyone


def send_due_mail(now: datetime | None = None, batch: int = BATCH, *, before_batch=None) -> int:
    """The mail job's tick: claim due mail a batch at a time and send it, over one connection,
    until nothing is due (or the server is down or too slow); returns how many left.
    `before_batch` runs before each claim (the job turns new sign-in requests into mail there,
    so a client who asks mid-tick does not wait for the tick to end)."""
    fixed_now, sent = now, 0
    with Dispatch() as dispatch:
        while not dispatch.stopped:
            if before_batch is not None:
                before_batch()
            now = fixed_now or utcnow()
            rows = claim_due_mail(now, batch)
            if not rows:
                break
            sent += dispatch.send(rows, now)
    return sent


class Dispatch:
    """Sends claimed rows, each recorded the moment the server takes it (a sender killed
    mid-batch re-sends only the message in flight, after its lease). While the server answers
    one message, a helper thread builds the next, and the helper thread only builds: the
    database and the wire stay in this one."""

    def __init__(self):
        self.connection = self.builder = None
        self.stopped = False
        self.opened = ExitStack()  # the connection and the helper thread, once the first message needs them

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return self.opened.__exit__(*exc_info)

    def send(self, rows: list[Email], now: datetime) -> int:
        if uses_dev_mailbox():
            _mark_sent(rows, now, "dev-mailbox")
            return len(rows)
        if self.connection is None:
            self.connection = self.opened.enter_context(runtime.current().mailer.connect())
            self.builder = self.opened.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail-build"))
        # A record lost to a crash of PostgreSQL itself only sends its message again: the sent
        # records need not wait for the disk, which was a third of the time a message took.
        with commits_not_waiting_for_disk():
            return self._send(rows, now)

    def _send(self, rows: list[Email], now: datetime) -> int:
        built = self.build(rows[0])
        sent, late = 0, 0
        for index, row in enumerate(rows):
            message, built = built, self.build(rows[index + 1]) if index + 1 < len(rows) else None
            try:
                prepared = message.result()
            except MessageRefused as error:
                _mark_failed(row, now, f"refused: {error}", permanent=error.permanent)
                continue
            try:
                self.connection.send(prepared)
            except MessageRefused as error:
                # One refused recipient must not stop the batch.
                _mark_failed(row, now, f"refused: {error}", permanent=error.permanent)
                continue
            except MessageTimedOut as error:
                # It goes back in the queue, behind what is due now; the next message gets a new line.
                _mark_failed(row, now, str(error))
                late += 1
                if late < GIVE_UP_AFTER:
                    continue
                self.release(rows[index + 1:], now)
                self.stopped = True
                break
            except (OSError, smtplib.SMTPException, socket.timeout) as error:
                failure = f"{type(error).__name__}: {error}"
                for unsent in rows[index:]:
                    _mark_failed(unsent, now, failure)
                self.stopped = True
                break
            _record_sent(row, now)
            sent, late = sent + 1, 0
        return sent

    def build(self, row: Email):
        """The message for `row`, built in the helper thread (in a copy of this context: the
        app's, for Flask-Mail)."""
        if row.text_body == UNREADABLE or row.html_body == UNREADABLE:
            failed = Future()
            failed.set_exception(MessageRefused("its body was sealed under another SECRET_KEY", permanent=True))
            return failed
        return self.builder.submit(contextvars.copy_context().run, self.connection.prepare, row)

    @staticmethod
    def release(rows: list[Email], now: datetime) -> None:
        """Claimed, never tried: due again at once, no attempt counted."""
        if rows:
            Email.update(status="queued", lease_until=None, next_attempt_at=now).where(
                Email.id.in_([row.id for row in rows])).execute()
