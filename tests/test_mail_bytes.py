"""The bytes the mail job sends (portico/mailer.py writes them itself, for speed) are byte for
byte what the email package's compat32 generator writes of the MIME tree Flask-Mail 0.10
builds for the same message: the reference below is how mailer.py built and wrote it before
(tests/test_mail.py checks that what a mail client reads of ours is what it reads of
Flask-Mail's own). Subjects that fold, names that are encoded, bodies with every kind of line
end, non-ASCII text, invitations, attachments of any bytes."""
import io
from email import message_from_bytes, policy
from email.encoders import encode_base64
from email.generator import BytesGenerator
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from portico.mailer import SMTP_COMPAT32, OutboxMessage, _encoded_address, new_boundary

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # no database is read

EQUIVALENCE = settings(max_examples=200, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])


def reference_bytes(message: OutboxMessage, mixed: str, alternative: str) -> bytes:
    """The tree Flask-Mail 0.10 builds, part for part and header for header, written by compat32."""
    encoding = message.charset or "utf-8"
    tree = MIMEMultipart(boundary=mixed)
    alternatives = MIMEMultipart("alternative", boundary=alternative)
    alternatives.attach(MIMEText(message.body, "plain", encoding))
    for subtype, content in message.alts.items():
        alternatives.attach(MIMEText(content, subtype, encoding))
    tree.attach(alternatives)
    if message.subject:
        tree["Subject"] = message.subject
    tree["From"] = _encoded_address(message.sender, encoding)
    tree["To"] = ", ".join(list({_encoded_address(to, encoding) for to in message.recipients}))
    tree["Date"] = formatdate(message.date, localtime=True)
    tree["Message-ID"] = message.msgId
    if message.reply_to:
        tree["Reply-To"] = _encoded_address(message.reply_to, encoding)
    for attachment in message.attachments:
        part = MIMEBase(*attachment.content_type.split("/"))
        part.set_payload(attachment.data)
        encode_base64(part)
        part.add_header("Content-Disposition", attachment.disposition, filename=attachment.filename)
        tree.attach(part)
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, policy=SMTP_COMPAT32).flatten(tree)
    return buffer.getvalue()


# Plain headers: ASCII, words that fold (the outbox's subjects and addresses); the rest anything.
WORD = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
SUBJECT = st.lists(WORD, max_size=14).map(" ".join)
NAME = st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126).filter(lambda c: c not in '"\\'),
                        min_size=1, max_size=12), max_size=4).map(" ".join)
ADDRESS = st.builds("{}@{}.example".format, st.from_regex(r"[a-z0-9.+_-]{1,20}", fullmatch=True),
                    st.from_regex(r"[a-z0-9-]{1,15}", fullmatch=True))
MAILBOX = st.one_of(ADDRESS, st.builds("{} <{}>".format, NAME.filter(str.strip), ADDRESS))
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\r\n\r\n"])
BODY = st.one_of(
    st.text(),  # anything, non-ASCII and lone line ends included
    st.lists(st.one_of(st.text(max_size=80), st.sampled_from(["From here", "--", "--===============_x==", ".", ""])),
             max_size=12).flatmap(lambda lines: LINE_ENDS.map(lambda end: end.join(lines))),
    st.just("Hello Alex,\n\nYour appointment – Monday 7 December.\n\nPortico"))
ICS = st.one_of(st.text(), st.just("BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"))


@st.composite
def outbox_messages(draw) -> dict:
    """What an OutboxMessage is made of (made in the test: Flask-Mail's Message() draws a
    Message-ID from `random`, which a strategy must not use)."""
    spec = dict(subject=draw(SUBJECT), recipients=[draw(MAILBOX)], body=draw(BODY), html=draw(BODY),
                sender=draw(MAILBOX), reply_to=draw(st.none() | MAILBOX), alts={}, attachments=[],
                msgId=draw(st.builds("<{}.{}@portal.test>".format, st.integers(1, 99999),
                                     st.from_regex(r"[0-9a-f]{20}\.[a-z-]{3,20}", fullmatch=True))),
                date=draw(st.floats(0, 4_000_000_000)))
    if draw(st.booleans()):
        ics, method = draw(ICS), draw(st.sampled_from(["REQUEST", "CANCEL", "PUBLISH"]))
        spec["alts"][f"calendar; method={method}"] = ics
        spec["attachments"].append(("appointment.ics", f"text/calendar; method={method}; charset=utf-8",
                                    ics.encode("utf-8", "replace")))
    for n in range(draw(st.integers(0, 2))):
        spec["attachments"].append((draw(st.sampled_from(["notes.pdf", "a-b_c.txt", f"file{n}"])),
                                    draw(st.sampled_from(["application/pdf", "text/plain; charset=utf-8",
                                                          "image/svg+xml"])),
                                    draw(st.binary(max_size=400))))
    return spec


def made(spec: dict) -> OutboxMessage:
    message = OutboxMessage(**{key: spec[key] for key in ("subject", "recipients", "body", "html", "sender",
                                                          "reply_to", "alts")})
    message.msgId, message.date = spec["msgId"], spec["date"]
    for attachment in spec["attachments"]:
        message.attach(*attachment)
    return message


@EQUIVALENCE
@given(spec=outbox_messages())
def test_the_bytes_sent_are_what_compat32_writes_of_flask_mails_tree(app, spec):
    with app.app_context():
        message = made(spec)
    assert message._plain_headers() and message._outbox_shaped()  # what the direct writer takes
    mixed, alternative = new_boundary(), new_boundary()
    with app.app_context():
        assert message.written(mixed, alternative) == reference_bytes(message, mixed, alternative)


def test_a_written_message_reads_back_part_for_part(app):
    message = OutboxMessage(subject="Reminder: your appointment on Mon 7 Dec at 1:00 PM",
                            recipients=["alex@example.com"], body="Hello Alex,\n– see you\n",
                            html="<p>Hello Alex,</p>\r\n", sender="Portico <portal@portal.test>",
                            reply_to="desk@portal.test")
    message.date = 1_700_000_000
    message.alts["calendar; method=REQUEST"] = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    message.attach("appointment.ics", "text/calendar; method=REQUEST; charset=utf-8", b"BEGIN:VCALENDAR\r\n")
    with app.app_context():
        raw = message.as_bytes()
    read = message_from_bytes(raw, policy=policy.default)
    assert (read["Subject"], read["To"], read["Reply-To"]) == (message.subject, "alex@example.com", "desk@portal.test")
    parts = [(p.get_content_type(), p.get_param("method"), p.get_filename(), p.get_content())
             for p in read.walk() if not p.is_multipart()]
    # Text parts, the attachment too (text/calendar), as read: with the CRLF they travelled with.
    parts = [(*part[:3], part[3].replace("\r\n", "\n") if isinstance(part[3], str) else part[3]) for part in parts]
    assert parts == [("text/plain", None, None, "Hello Alex,\n– see you\n"),
                     ("text/html", None, None, "<p>Hello Alex,</p>\n"),
                     ("text/calendar", "REQUEST", None, "BEGIN:VCALENDAR\nEND:VCALENDAR\n"),
                     ("text/calendar", "REQUEST", "appointment.ics", "BEGIN:VCALENDAR\n")]
    assert b"\n" not in raw.replace(b"\r\n", b"")  # SMTP's line ends only


@pytest.mark.parametrize("change", [
    lambda m: setattr(m, "subject", "Cita: miércoles 9 de diciembre"),  # a header to encode
    lambda m: m.cc.append("cc@example.com"),
    lambda m: setattr(m, "charset", "iso-8859-1"),
    lambda m: m.alts.update({"watch-html": "<p>Hi</p>"}),
    lambda m: m.attach("nota médica.pdf", "application/pdf", b"%PDF"),
])
def test_anything_else_takes_flask_mails_own_path(app, change):
    message = OutboxMessage(subject="Hello", recipients=["alex@example.com"], body="Hi", html="<p>Hi</p>",
                            sender="portal@portal.test")
    change(message)
    assert not (message._plain_headers() and message._outbox_shaped())
    with app.app_context():
        read = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert read["To"] == "alex@example.com" and read.get_body(("plain",)).get_content().strip() == "Hi"
