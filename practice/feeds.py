"""A client's private calendar feed: upcoming appointments with their join links, for phones.

The URL's token is derived (HMAC of the app secret and the client's feed nonce), so nothing
secret is stored, the client can be shown the same URL again, and rotating the nonce revokes it.
"""
import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr

from icalendar import Parameters, vCalAddress, vDuration, vText, vUri
from icalendar.parser import Contentline
from peewee import fn

from . import audit, runtime
from .clock import utcnow
from .i18n import gettext as _, in_language
from .mail import external_url
from .models import Appointment, Client, Practice
from .telehealth import join_url


def _digest(secret: bytes, client: Client) -> str:
    mac = hmac.new(secret, f"feed:{client.id}:{client.feed_nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def feed_token(client: Client, secret: bytes) -> str:
    if not client.feed_nonce:
        client.feed_nonce = secrets.token_hex(16)
        Client.update(feed_nonce=client.feed_nonce).where(Client.id == client.id).execute()
    return f"{client.id}.{_digest(secret, client)}"


def client_for_feed(token: str, secret: bytes) -> Client | None:
    """The client whose live feed token this is; None for anything else (a sign-in or
    telehealth token, a revoked feed, an archived client)."""
    client_id, _dot, digest = (token or "").partition(".")
    # ASCII digits only ("²".isdigit() is true, int("²") fails), within an integer column.
    if not (client_id.isascii() and client_id.isdigit()) or len(client_id) > 9:
        return None
    if not digest or not digest.isascii() or len(token) > 200:
        return None
    client = Client.get_or_none(Client.id == int(client_id))
    if client is None or not client.feed_nonce or client.archived_at is not None:
        return None
    return client if hmac.compare_digest(_digest(secret, client), digest) else None


def revoke_feed(client: Client, *, by=None) -> bool:
    """The old URL stops working at once; a new one is made when next asked for. False when
    the client had no calendar address in use."""
    if not client.feed_nonce:
        return False
    Client.update(feed_nonce=None).where(Client.id == client.id).execute()
    client.feed_nonce = None
    audit.record("feed_revoked", client=client, clinician=by)
    return True


REFRESH = timedelta(hours=1)  # how often a subscribed calendar should fetch the feed again

# The .ics is written line by line rather than with icalendar's Calendar and Event objects,
# which took more than half of composing a reminder; icalendar still does everything that
# needs care: TEXT escaping (vText), parameter quoting (Parameters) and folding (Contentline).
# Lines come in the order icalendar writes them (the canonical order of its Calendar and
# Event, then alphabetical), so the bytes are the ones it wrote before (tests/test_ics_writer.py).
FOLD_AT = 75  # icalendar folds a content line once it reaches 75 octets (RFC 5545 3.1)
_REFRESH = vDuration(REFRESH).to_ical().decode()
FEED_REFRESH = [f"REFRESH-INTERVAL;VALUE=DURATION:{_REFRESH}".encode(),
                f"X-PUBLISHED-TTL:{_REFRESH}".encode()]  # the older, Outlook and Apple name of the same


def _line(name: str, value: str, parameters: dict | None = None) -> bytes:
    """One content line; `value` already in its iCalendar form, folded as icalendar folds
    (its folding walks every character, in Python)."""
    line = f"{name};{Parameters(parameters).to_ical().decode()}:{value}" if parameters else f"{name}:{value}"
    if not line.isascii() or "\\" in line or "^" in line:
        return Contentline(line).to_ical()
    # One octet a character and no escape to keep whole: icalendar's folding comes down to
    # pieces of FOLD_AT - 1 (a join link's lines, in every telehealth invitation).
    return "\r\n ".join(line[start:start + FOLD_AT - 1] for start in range(0, len(line), FOLD_AT - 1)).encode()


def _text(value: str) -> str:
    return vText(value).to_ical().decode()


def _date_time(moment: datetime) -> str:
    """A DATE-TIME in UTC (the database's naive datetimes are UTC), as icalendar writes one."""
    return f"{moment.year:04}{moment.month:02}{moment.day:02}T{moment.hour:02}{moment.minute:02}{moment.second:02}Z"


def calendar_bytes(practice: Practice, method: str, events: list[list[bytes]]) -> bytes:
    """PUBLISH for the feed (a subscription, which says how often to refresh it); REQUEST or
    CANCEL for an emailed invitation. `events` are event_lines()."""
    lines = [b"BEGIN:VCALENDAR", b"VERSION:2.0", b"PRODID:-//Portico//client portal//EN", _line("METHOD", method)]
    # Escaped as TEXT, as calendar apps read it: icalendar (7.2 on) writes a property it does
    # not know verbatim, and "Hale, Morgan; Partners" was read back as "Hale".
    lines.append(_line("X-WR-CALNAME", _text(practice.name)))
    if method == "PUBLISH":
        lines += FEED_REFRESH
    for event in events:
        lines += event
    lines.append(b"END:VCALENDAR")
    return b"\r\n".join(lines) + b"\r\n"


def _address(email: str) -> str:
    return vCalAddress(f"mailto:{email}").to_ical().decode()  # refuses a line break, as vUri does


def _organizer(practice: Practice) -> bytes:
    """The practice, as the organizer mail apps expect of an invitation: its contact address,
    else the address its mail comes from."""
    address = practice.contact_email or parseaddr(runtime.settings().mail_sender)[1]
    return _line("ORGANIZER", _address(address), {"cn": practice.name})


def _attendee(client: Client) -> bytes:
    """The client, already accepted: no mail app asks them to reply."""
    return _line("ATTENDEE", _address(client.email),
                 {"cn": client.name, "role": "REQ-PARTICIPANT", "partstat": "ACCEPTED", "rsvp": "FALSE"})


def event_lines(appointment: Appointment, practice: Practice, *, host: str, join_url: str | None,
                stamp: datetime | None = None, invitation: bool = False) -> list[bytes]:
    """One appointment as a calendar event: the same UID wherever it appears (emails, the
    feed), a SEQUENCE that grows with every change, times in UTC, and nothing clinical.
    An invitation names the organizer and the client (RFC 5546), so that mail apps update
    the entry they already have. `join_url` is the telehealth link, never a sign-in link."""
    cancelled = appointment.status == "cancelled"
    video = bool(join_url) and not cancelled
    uri = vUri(join_url).to_ical().decode() if video else None
    lines = [b"BEGIN:VEVENT",
             _line("SUMMARY", _text(_("Appointment with %(practice)s", practice=practice.name))),
             _line("DTSTART", _date_time(appointment.starts_at)),
             _line("DTEND", _date_time(appointment.ends_at)),
             _line("DTSTAMP", _date_time(stamp or utcnow())),
             _line("UID", _text(f"appointment-{appointment.id}@{host}")),
             _line("SEQUENCE", str(appointment.sequence))]
    # The rest alphabetically, as icalendar orders what its canonical order does not name.
    if invitation:
        lines.append(_attendee(appointment.client))
    if video:
        lines += [_line("CONFERENCE", uri, {"value": "URI", "feature": "VIDEO", "label": _("Video session")}),
                  _line("DESCRIPTION", _text(_("Join the video session: %(url)s", url=join_url)))]
    lines += [_line("LAST-MODIFIED", _date_time(appointment.updated_at)),
              _line("LOCATION", _text(join_url if video else practice.name))]
    if invitation:
        lines.append(_organizer(practice))
    lines.append(_line("STATUS", "CANCELLED" if cancelled else "CONFIRMED"))
    if video:
        lines.append(_line("URL", uri))
    lines.append(b"END:VEVENT")
    return lines


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc)


def feed_calendar(client: Client, now: datetime | None = None) -> bytes:
    """Every appointment not yet over; a cancelled one stays, as cancelled, until its original
    end, so that a calendar which saw it removes it. The bytes change only when what they say
    does (DTSTAMP is each event's last change, not the time of the request): their hash is the
    feed's ETag. In the client's language, as their emails are."""
    with in_language(client.language):
        return _feed_calendar(client, now or utcnow())


def _feed_calendar(client: Client, now: datetime) -> bytes:
    practice = Practice.current()
    host = runtime.settings().host
    events = []
    for appointment in Appointment.in_feed_for(client, now):
        live = appointment.kind == "telehealth" and appointment.status != "cancelled"
        events.append(event_lines(appointment, practice, host=host, join_url=join_url(appointment) if live else None,
                                  stamp=appointment.updated_at))
    return calendar_bytes(practice, "PUBLISH", events)


def feed_last_modified(client: Client, now: datetime | None = None) -> datetime:
    """When the feed last changed: an appointment in it changed, or one left it by ending."""
    now = now or utcnow()
    changed = [a.updated_at for a in Appointment.in_feed_for(client, now)]
    ended = Appointment.select(fn.MAX(Appointment.ends_at)).where(
        (Appointment.client == client) & (Appointment.ends_at <= now)).scalar()
    moments = [m for m in (*changed, ended) if m is not None]
    return _utc(max(moments)) if moments else _utc(client.created_at)


def feed_url(client: Client) -> str:
    """The client's calendar address (made when first asked for)."""
    return external_url("feed.calendar_feed", token=feed_token(client, runtime.settings().code_key))


def feed_client(token: str) -> Client | None:
    return client_for_feed(token, runtime.settings().code_key)
