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

from icalendar import Calendar, Event, vCalAddress, vText, vUri
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


def new_calendar(practice: Practice, method: str) -> Calendar:
    """PUBLISH for the feed (a subscription); REQUEST or CANCEL for an emailed invitation."""
    calendar = Calendar()
    calendar.add("prodid", "-//Portico//client portal//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add("x-wr-calname", practice.name)
    return calendar


FOLD_AT = 75  # icalendar folds a content line once it reaches 75 octets (RFC 5545 3.1)


def calendar_bytes(calendar: Calendar) -> bytes:
    """calendar.to_ical(), byte for byte, with only the long lines folded by icalendar:
    its folding walks every character of every line, which was a third of composing a
    reminder, and nearly every line is short."""
    return b"".join((line.encode() if len(line) < FOLD_AT and line.isascii() else line.to_ical()) + b"\r\n"
                    for line in calendar.content_lines() if line)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc)


def organizer(practice: Practice) -> vCalAddress:
    """The practice, as the organizer mail apps expect of an invitation: its contact address,
    else the address its mail comes from."""
    address = practice.contact_email or parseaddr(runtime.settings().mail_sender)[1]
    value = vCalAddress(f"mailto:{address}")
    value.params["cn"] = vText(practice.name)
    return value


def attendee(client: Client) -> vCalAddress:
    """The client, already accepted: no mail app asks them to reply."""
    value = vCalAddress(f"mailto:{client.email}")
    value.params.update({"cn": vText(client.name), "role": "REQ-PARTICIPANT",
                         "partstat": "ACCEPTED", "rsvp": "FALSE"})
    return value


def appointment_event(appointment: Appointment, practice: Practice, *, host: str, join_url: str | None,
                      stamp: datetime | None = None, invitation: bool = False) -> Event:
    """One appointment as a calendar event: the same UID wherever it appears (emails, the
    feed), a SEQUENCE that grows with every change, times in UTC, and nothing clinical.
    An invitation names the organizer and the client (RFC 5546), so that mail apps update
    the entry they already have. `join_url` is the telehealth link, never a sign-in link."""
    cancelled = appointment.status == "cancelled"
    event = Event()
    event.add("uid", f"appointment-{appointment.id}@{host}")
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", _utc(stamp or utcnow()))
    event.add("last-modified", _utc(appointment.updated_at))
    event.add("dtstart", _utc(appointment.starts_at))
    event.add("dtend", _utc(appointment.ends_at))
    event.add("summary", _("Appointment with %(practice)s", practice=practice.name))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if invitation:
        event.add("organizer", organizer(practice))
        event.add("attendee", attendee(appointment.client))
    if join_url and not cancelled:
        event.add("location", vText(join_url))
        event.add("url", vUri(join_url))
        event.add("conference", vUri(join_url), parameters={"value": "URI", "feature": "VIDEO",
                                                             "label": _("Video session")})
        event.add("description", _("Join the video session: %(url)s", url=join_url))
    else:
        event.add("location", vText(practice.name))
    return event


def feed_calendar(client: Client, now: datetime | None = None) -> bytes:
    """Every appointment not yet over; a cancelled one stays, as cancelled, until its original
    end, so that a calendar which saw it removes it. The bytes change only when what they say
    does (DTSTAMP is each event's last change, not the time of the request): their hash is the
    feed's ETag. In the client's language, as their emails are."""
    with in_language(client.language):
        return _feed_calendar(client, now or utcnow())


def _feed_calendar(client: Client, now: datetime) -> bytes:
    practice = Practice.current()
    calendar = new_calendar(practice, "PUBLISH")
    calendar.add("refresh-interval", REFRESH, parameters={"value": "DURATION"})
    calendar.add("x-published-ttl", vText("PT1H"))  # the older, Outlook and Apple name of the same
    for appointment in Appointment.in_feed_for(client, now):
        live = appointment.kind == "telehealth" and appointment.status != "cancelled"
        calendar.add_component(appointment_event(
            appointment, practice, host=runtime.settings().host, join_url=join_url(appointment) if live else None,
            stamp=appointment.updated_at))
    return calendar_bytes(calendar)


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
