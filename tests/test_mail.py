"""The outbox and the mail job: nothing lost when SMTP is down, no hangs, no token kept."""
import random
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from flask_mail import Message

from practice import jobs
from practice.clients import add_client
from portico.mailer import as_message
from practice.mail import SCRUBBED, backoff, claim_due_mail, queue_email
from practice.clock import utcnow
from practice.models import Email, db, is_sqlite
from practice.sign_in import send_link
from practice.sealed import PREFIX
from tests.conftest import Inbox, ask_for_link, code_from, deliver, free_port, mailed_link, token_from

pytestmark = pytest.mark.usefixtures("traveller")
KEY = b"test-secret-key"


def queue_note(app, to, subject="Hello", kind="test"):
    with app.app_context():
        return queue_email(to=to, subject=subject, template="sign_in", kind=kind,
                           client_name="Test", url="http://portal.test/", sign_in_url="http://portal.test/sign-in",
                           code="123456", lifetime="24 hours", expires="tomorrow")


def test_mail_job_sends_every_due_email_through_smtp(app, smtp_server):
    for n in range(3):
        queue_note(app, f"client{n}@example.com", subject=f"Note {n}")
    assert deliver(app) == 3
    assert sorted(m["Subject"] for m in smtp_server.messages) == ["Note 0", "Note 1", "Note 2"]
    assert all(m.is_multipart() for m in smtp_server.messages)  # a text and an HTML part
    assert Email.select().where(Email.status == "sent").count() == 3
    assert deliver(app) == 0  # sent once, never twice


def test_sent_sign_in_mail_keeps_no_token_in_the_outbox(app, client, alex, smtp_server):
    token = mailed_link(app, client, smtp_server)
    row = Email.get()
    assert row.status == "sent" and row.transport == "smtp"
    assert token not in row.text_body + row.html_body and row.text_body == SCRUBBED


def database_files(app) -> list:
    path = Path(urlsplit(app.config["DATABASE_URL"]).path.removeprefix("/"))
    return [file for file in (path, Path(f"{path}-wal")) if file.exists()]


def test_no_sign_in_token_or_code_is_written_in_plaintext(app, client, alex, smtp_server):
    # SQLite keeps old page images in its WAL (and PostgreSQL dead tuples until VACUUM): a
    # body erased after sending is still on disk. The token and the code must never be written.
    token = mailed_link(app, client, smtp_server)
    code = code_from(smtp_server.to("alex@example.com")[-1])
    ask_for_link(client, "alex@example.com")  # and one still queued: its link is live
    with app.app_context():
        jobs.process_sign_in_requests()
        assert Email.select().where(Email.status == "queued").count() == 1
        stored = db.execute_sql("SELECT text_body, html_body, subject FROM email").fetchall()
    for text_body, html_body, subject in stored:
        assert text_body.startswith(PREFIX) or text_body == SCRUBBED
        assert html_body.startswith(PREFIX) or html_body == SCRUBBED
        assert token not in text_body + html_body + subject and code not in text_body + html_body + subject
    if is_sqlite():
        files = database_files(app)
        assert any(file.name.endswith("-wal") for file in files)
        bare_code = re.compile(rb"(?<![A-Za-z0-9])" + code.encode() + rb"(?![A-Za-z0-9])")
        for file in files:
            data = file.read_bytes()
            assert token.encode() not in data and not bare_code.search(data), file.name
    assert deliver(app) == 1  # sending opens what was sealed
    newer = smtp_server.to("alex@example.com")[-1]
    assert len(code_from(newer)) == 6 and code_from(newer) != code and token_from(newer) != token


def test_message_ids_stay_distinct_when_the_clock_stands_still_and_random_is_reseeded(app):
    # make_msgid draws from `random`, which Hypothesis (or any library) may reseed; the
    # clock stands still here. The column is unique: a repeat would lose the mail with a 500.
    ids = set()
    for n in range(3):
        random.seed(0)
        ids.add(queue_note(app, f"client{n}@example.com").message_id)
    assert len(ids) == 3


def test_smtp_down_keeps_mail_queued_and_retries_with_backoff(make_app, smtp_server, traveller):
    app = make_app(MAIL_PORT=free_port())  # nothing listens there
    alex = add_client("alex@example.com", "Alex Morgan")
    with app.app_context():
        send_link(alex, "clinician")
    assert deliver(app) == 0
    row = Email.get()
    assert (row.status, row.attempts) == ("queued", 1)
    assert "ConnectionRefusedError" in row.last_error
    assert (row.next_attempt_at - row.queued_at) == backoff(1)
    # Not retried before its time, and then delivered once the server is back.
    app.extensions["mail"].port = smtp_server.port
    traveller.shift(backoff(1).total_seconds() - 1)
    assert deliver(app) == 0
    traveller.shift(1)
    assert deliver(app) == 1
    assert len(smtp_server.to("alex@example.com")) == 1
    assert Email.get().status == "sent"


def test_backoff_grows_and_is_capped():
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(20).total_seconds() == 3600


@pytest.mark.parametrize("subject, sender", [
    ("Reminder: your appointment on Tue 1 Dec at 3:00 PM", "portal@portal.test"),
    ("Welcome to Zoë's Counselling & Psychotherapy client portal (sent Tue 1 Dec at 3:00 PM)",
     "Zoë's Counselling and Psychotherapy Practice of Greater Manchester <portal@portal.test>"),
    ("A subject with a word too long to fold: " + "x" * 80, "portal@portal.test"),
])
def test_sent_mail_says_what_flask_mail_would_have_said(app, subject, sender):
    # The mail job writes messages with compat32 rather than Flask-Mail's policy.SMTP (for
    # speed): a mail client must read the very same headers, parts and attachment.
    app.config["MAIL_DEFAULT_SENDER"] = sender
    queue_note(app, "alex@example.com", subject=subject)
    with app.app_context():
        ours = as_message(Email.get(), app.config["MAIL_DEFAULT_SENDER"])
        ours.date = 1_700_000_000
        theirs = Message(subject=ours.subject, recipients=ours.recipients, body=ours.body, html=ours.html,
                         reply_to=ours.reply_to, sender=ours.sender, date=ours.date)
        theirs.msgId = ours.msgId
        theirs.attach("appointment.ics", "text/calendar; charset=utf-8", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        ours.attach("appointment.ics", "text/calendar; charset=utf-8", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
        read = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in (ours, theirs)]
        raw = ours.as_bytes()
    assert b"\n" not in raw.replace(b"\r\n", b"") and max(map(len, raw.split(b"\r\n"))) <= 998
    for header in ("Subject", "From", "To", "Reply-To", "Message-ID", "Date", "MIME-Version"):
        assert read[0][header] == read[1][header]
    assert read[0]["Subject"] == subject
    assert message_from_bytes(raw)["Message-ID"] == ours.msgId  # as written, unfolded
    parts = [[(p.get_content_type(), p.get_filename(), p.get_content()) for p in m.walk() if not p.is_multipart()]
             for m in read]
    assert parts[0] == parts[1] and [p[0] for p in parts[0]] == ["text/plain", "text/html", "text/calendar"]


def test_one_refused_recipient_does_not_stop_the_batch(app, smtp_server):
    smtp_server.refuse.add("gone@example.com")
    queue_note(app, "first@example.com")
    queue_note(app, "gone@example.com")
    queue_note(app, "last@example.com")
    assert deliver(app) == 2
    assert sorted(m["To"] for m in smtp_server.messages) == ["first@example.com", "last@example.com"]
    refused = Email.get(Email.to_addr == "gone@example.com")
    assert refused.status == "queued" and "refused" in refused.last_error


@pytest.fixture
def silent_server():
    """Accepts connections and never says a word, like a wedged mail relay."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_silent_smtp_server_does_not_hang_the_sender(make_app, silent_server):
    app = make_app(MAIL_PORT=silent_server, MAIL_TIMEOUT=0.5)
    queue_note(app, "alex@example.com")
    assert deliver(app) == 0
    row = Email.get()
    assert row.status == "queued" and "timed out" in row.last_error


@pytest.fixture
def self_signed_smtp(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
    controller.start()
    yield port, inbox
    controller.stop()


def test_tls_certificates_are_verified(make_app, self_signed_smtp):
    port, inbox = self_signed_smtp
    app = make_app(MAIL_PORT=port, MAIL_USE_TLS=True)
    queue_note(app, "alex@example.com")
    assert deliver(app) == 0
    assert inbox.messages == []
    assert "CERTIFICATE_VERIFY_FAILED" in Email.get().last_error


def test_two_senders_never_claim_the_same_mail(app):
    for n in range(5):
        queue_note(app, f"c{n}@example.com")
    with app.app_context():
        first = claim_due_mail(Email.get().queued_at, batch=3)
        second = claim_due_mail(Email.get().queued_at, batch=10)
    assert len(first) == 3 and len(second) == 2
    assert not {e.id for e in first} & {e.id for e in second}


def test_mail_whose_sender_died_mid_send_is_sent_after_the_lease(app, smtp_server, traveller):
    queue_note(app, "alex@example.com")
    with app.app_context():
        claimed = claim_due_mail(Email.get().queued_at)  # ...and the process dies here
    assert len(claimed) == 1 and deliver(app) == 0
    traveller.shift(121)
    assert deliver(app) == 1
    assert len(smtp_server.messages) == 1


def test_dev_mailbox_shows_queued_mail_with_clickable_links(make_app, traveller):
    app = make_app(MAIL_SERVER=None)
    add_client("alex@example.com", "Alex Morgan")
    client = app.test_client()
    ask_for_link(client, "alex@example.com")
    deliver(app)
    listing = client.get("/dev/mailbox").get_data(as_text=True)
    assert "is your sign-in code for Portico" in listing and "alex@example.com" in listing
    message = client.get(f"/dev/mailbox/{Email.get().id}").get_data(as_text=True)
    assert '<a href="http://portal.test/s/' in message
    assert Email.get().transport == "dev-mailbox"


def test_dev_mailbox_is_only_for_this_machine(make_app):
    app = make_app(MAIL_SERVER=None)
    response = app.test_client().get("/dev/mailbox", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 404


def test_no_dev_mailbox_when_an_smtp_server_is_configured(client):
    assert client.get("/dev/mailbox").status_code == 404


def seed_outbox(now, sent: int, sending: int = 5):
    """An outbox a practice has used for years: many sent rows, a few in flight."""
    rows = [dict(to_addr=f"c{n}@example.com", subject="s", text_body="b", html_body="b", message_id=f"<seed{n}@x>",
                 kind="reminder", status="sent" if n < sent else "sending", queued_at=now, next_attempt_at=now,
                 sent_at=now if n < sent else None, lease_until=None if n < sent else now)
            for n in range(sent + sending)]
    for start in range(0, len(rows), 500):
        Email.insert_many(rows[start:start + 500]).execute()


def query_plan(query) -> str:
    sql, params = query.sql()
    if is_sqlite():
        return " / ".join(row[-1] for row in db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params))
    return " / ".join(row[0] for row in db.execute_sql(f"EXPLAIN {sql}", params))


def test_claiming_abandoned_mail_reads_an_index_not_the_whole_outbox(app):
    # The claim runs inside the write transaction: a scan of the outbox there makes every
    # writer wait. After ANALYZE the planner must still take an index.
    now = utcnow()
    with app.app_context():
        seed_outbox(now, sent=20_000)
        db.execute_sql("ANALYZE")
        for query in (Email.abandoned(now + timedelta(minutes=5)), Email.due(now)):
            plan = query_plan(query.columns(Email.id).limit(20))
            if is_sqlite():  # SEARCH: a range of an index; SCAN would read every row (or index entry)
                assert plan.startswith("SEARCH") and "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
            else:  # an index on what the query filters by, not the whole table (nor its primary key)
                assert "Index" in plan and "Seq Scan" not in plan and "email_pkey" not in plan, plan


class DribblingServer:
    """A real SMTP server on loopback (asyncio) that answers RCPT for `slow` addresses one
    byte at a time, each byte well inside MAIL_TIMEOUT: a per-read timeout never fires."""

    def __init__(self, slow: set, byte_every: float = 0.05):
        import asyncio
        self.asyncio, self.slow, self.byte_every = asyncio, slow, byte_every
        self.received = []  # (recipients, raw message) in the order they were accepted
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(started,), daemon=True)
        self.thread.start()
        started.wait(5)

    def run(self, started):
        async def serve():
            self.stopping = self.asyncio.Event()
            self.server = await self.asyncio.start_server(self.session, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            started.set()
            await self.stopping.wait()
            self.server.close()
            sessions = [task for task in self.asyncio.all_tasks() if task is not self.asyncio.current_task()]
            for task in sessions:
                task.cancel()
            await self.asyncio.gather(*sessions, return_exceptions=True)
        self.loop.run_until_complete(serve())
        self.loop.close()

    async def session(self, reader, writer):
        async def say(line, dribble=False):
            data = (line + "\r\n").encode()
            if not dribble:
                writer.write(data)
                return await writer.drain()
            for byte in data:
                if reader.at_eof():  # the client hung up: stop talking
                    raise ConnectionResetError
                writer.write(bytes([byte]))
                await writer.drain()
                await self.asyncio.sleep(self.byte_every)

        recipients = []
        try:
            await say("220 slow.test ESMTP")
            while line := (await reader.readline()).decode().strip():
                verb = line.split(" ")[0].upper()
                if verb in ("EHLO", "HELO"):
                    await say("250 slow.test")
                elif verb == "MAIL":
                    recipients = []
                    await say("250 OK")
                elif verb == "RCPT":
                    address = line.split(":", 1)[1].strip("<> ")
                    recipients.append(address)
                    await say("250 " + "slowly " * 20 + "OK", dribble=address in self.slow)
                elif verb == "DATA":
                    await say("354 go on")
                    data = b""
                    while (chunk := await reader.readline()) != b".\r\n":
                        data += chunk
                    self.received.append((recipients, message_from_bytes(data)))
                    await say("250 accepted")
                elif verb == "QUIT":
                    await say("221 bye")
                    break
                else:
                    await say("250 OK")
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(5)


@pytest.fixture
def dribbling_server():
    server = DribblingServer(slow={"slow@example.com", "slower@example.com"})
    yield server
    server.stop()


def test_a_slowly_answering_server_holds_one_message_only_until_its_deadline(make_app, dribbling_server):
    # Each byte of the RCPT reply comes well inside MAIL_TIMEOUT, the whole reply takes over 7 s:
    # the message gets MAIL_DEADLINE in all, and the mail behind it goes on over a new line.
    app = make_app(MAIL_PORT=dribbling_server.port, MAIL_TIMEOUT=5, MAIL_DEADLINE=0.3)
    queue_note(app, "slow@example.com", subject="Slow")
    queue_note(app, "next@example.com", subject="Next")
    started = time.monotonic()
    assert deliver(app) == 1
    assert time.monotonic() - started < 3
    assert [m["Subject"] for _, m in dribbling_server.received] == ["Next"]
    slow = Email.get(Email.to_addr == "slow@example.com")
    assert (slow.status, slow.attempts) == ("queued", 1)
    assert "longer than 0.3 s" in slow.last_error and slow.next_attempt_at > slow.queued_at
    assert Email.get(Email.to_addr == "next@example.com").status == "sent"


def test_two_late_messages_in_a_row_leave_the_rest_for_the_next_tick_untried(make_app, dribbling_server):
    app = make_app(MAIL_PORT=dribbling_server.port, MAIL_TIMEOUT=5, MAIL_DEADLINE=0.2)
    for address in ("slow@example.com", "slower@example.com", "later@example.com"):
        queue_note(app, address)
    assert deliver(app) == 0
    later = Email.get(Email.to_addr == "later@example.com")
    assert (later.status, later.attempts, later.last_error) == ("queued", 0, None)
    assert later.next_attempt_at <= utcnow()
    assert deliver(app) == 1 and dribbling_server.received[0][0] == ["later@example.com"]


def test_the_sign_in_link_a_client_waits_for_leaves_before_queued_reminders(app, client, alex, smtp_server):
    for n in range(25):  # more than a batch
        queue_note(app, f"client{n}@example.com", subject=f"Reminder {n}")
    ask_for_link(client, "alex@example.com")
    assert deliver(app) == 26
    assert smtp_server.messages[0]["To"] == "alex@example.com"


# ---- subjects: none an earlier email had, and no code kept once sent ---------------------

def test_sign_in_emails_in_the_same_minute_lead_with_their_code_and_never_share_a_subject(
        app, client, alex, smtp_server, traveller):
    for _ in range(3):
        ask_for_link(client, "alex@example.com")
        deliver(app)
        traveller.shift(5)  # all within one minute: a subject naming the minute would repeat
    messages = smtp_server.to("alex@example.com")
    assert [m["Subject"] for m in messages] == [f"{code_from(m)} is your sign-in code for Portico" for m in messages]
    assert len({m["Subject"] for m in messages}) == 3


def test_a_sent_sign_in_subject_keeps_no_code_and_no_log_line_has_it(app, client, alex, smtp_server, caplog):
    caplog.set_level("DEBUG")
    mailed_link(app, client, smtp_server)
    code = code_from(smtp_server.to("alex@example.com")[-1])
    row = Email.get(Email.kind == "sign_in")
    assert row.status == "sent" and row.subject == "•••••• is your sign-in code for Portico"
    # Portico's own log lines, and its libraries' (aiosmtpd's "mail.log" is the test's SMTP server).
    assert [r.name for r in caplog.records if code in r.getMessage() and r.name != "mail.log"] == []


def test_the_dev_mailbox_keeps_the_code_in_the_subject_it_shows(make_app, smtp_server):
    app = make_app(MAIL_SERVER=None)
    client = app.test_client()
    with app.app_context():
        add_client("alex@example.com", "Alex Morgan")
    ask_for_link(client, "alex@example.com")
    deliver(app)
    row = Email.get(Email.kind == "sign_in")
    assert row.transport == "dev-mailbox"
    assert re.fullmatch(r"\d{6} is your sign-in code for Portico", row.subject)
    assert row.subject in client.get("/dev/mailbox").get_data(as_text=True)


def test_two_invitations_in_the_same_minute_get_subjects_a_person_can_tell_apart(app, alex, dana, smtp_server, traveller):
    from practice.clients import invite_client
    with app.app_context():
        invite_client(alex, by=dana)
        traveller.shift(10)
        invite_client(alex, by=dana)
    deliver(app)
    first, second = (m["Subject"] for m in smtp_server.to("alex@example.com"))
    assert first == "Welcome to Portico's client portal (sent Mon 2 Mar 2026, 9:00 AM UTC)"
    assert second == first + " (2)"


def test_sent_records_on_postgresql_do_not_wait_for_the_disk_and_the_connection_is_left_as_it_was(
        app, smtp_server, monkeypatch):
    if is_sqlite():
        pytest.skip("PostgreSQL's synchronous_commit")
    from practice import mail
    seen = []
    record = mail._record_sent

    def recording(row, now):
        seen.append(db.execute_sql("SHOW synchronous_commit").fetchone()[0])
        record(row, now)

    monkeypatch.setattr(mail, "_record_sent", recording)
    queue_note(app, "alex@example.com")
    queue_note(app, "sam@example.com")
    with app.app_context(), db.connection_context():
        assert mail.send_due_mail() == 2
        after = db.execute_sql("SHOW synchronous_commit").fetchone()[0]
    assert seen == ["off", "off"] and after == "on"
    assert [e.status for e in Email.select()] == ["sent", "sent"] and len(smtp_server.messages) == 2
