"""A client's private calendar feed: upcoming appointments with their join links, for phones.

The URL's token is derived (HMAC of the app secret and the client's feed nonce), so nothing
secret is stored, the client can be shown the same URL again, and rotating the nonce revokes it.
"""
import base64
import hashlib
import hmac
import secrets
from datetime import timezone

from icalendar import Calendar, Event, vText

from . import audit, runtime
from .clock import utcnow
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
    client_id, _, digest = (token or "").partition(".")
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


def new_calendar(practice: Practice) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", "-//Portico//client portal//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", practice.name)
    return calendar


def appointment_event(appointment: Appointment, practice: Practice, *, host: str, join_url: str | None) -> Event:
    """One appointment as a calendar event: the same UID wherever it appears (emails, the
    feed), a SEQUENCE that grows with every change, and nothing clinical."""
    cancelled = appointment.status == "cancelled"
    event = Event()
    event.add("uid", f"appointment-{appointment.id}@{host}")
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", utcnow().replace(tzinfo=timezone.utc))
    event.add("dtstart", appointment.starts_at.replace(tzinfo=timezone.utc))
    event.add("dtend", appointment.ends_at.replace(tzinfo=timezone.utc))
    event.add("summary", f"Appointment with {practice.name}")
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    if join_url:
        event.add("location", vText(join_url))
        event.add("description", f"Join the video session: {join_url}")
    else:
        event.add("location", vText(practice.name))
    return event


def feed_calendar(client: Client) -> bytes:
    practice = Practice.current()
    calendar = new_calendar(practice)
    for appointment in Appointment.upcoming_for(client, utcnow()):
        url = join_url(appointment) if appointment.kind == "telehealth" else None
        calendar.add_component(appointment_event(appointment, practice, host=runtime.settings().host, join_url=url))
    return calendar.to_ical()


def feed_url(client: Client) -> str:
    """The client's calendar address (made when first asked for)."""
    return external_url("feed.calendar_feed", token=feed_token(client, runtime.settings().code_key))


def feed_client(token: str) -> Client | None:
    return client_for_feed(token, runtime.settings().code_key)
