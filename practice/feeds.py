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

from .clock import utcnow
from .models import Appointment, Client, Practice


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
    if not client_id.isdigit() or not digest or len(token) > 200:
        return None
    client = Client.get_or_none(Client.id == int(client_id))
    if client is None or not client.feed_nonce or client.archived_at is not None:
        return None
    return client if hmac.compare_digest(_digest(secret, client), digest) else None


def revoke_feed(client: Client) -> None:
    """The old URL stops working at once; a new one is made when next asked for."""
    Client.update(feed_nonce=None).where(Client.id == client.id).execute()
    client.feed_nonce = None


def feed_calendar(client: Client, *, host: str, join_url=None) -> bytes:
    practice = Practice.current()
    calendar = Calendar()
    calendar.add("prodid", "-//Portico//client portal//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", practice.name)
    for appointment in Appointment.upcoming_for(client, utcnow()):
        event = Event()
        event.add("uid", f"appointment-{appointment.id}@{host}")
        event.add("sequence", appointment.sequence)
        event.add("dtstamp", utcnow().replace(tzinfo=timezone.utc))
        event.add("dtstart", appointment.starts_at.replace(tzinfo=timezone.utc))
        event.add("dtend", appointment.ends_at.replace(tzinfo=timezone.utc))
        event.add("summary", f"Appointment with {practice.name}")
        if appointment.kind == "telehealth" and join_url is not None:
            url = join_url(appointment)
            event.add("location", vText(url))
            event.add("description", f"Join the video session: {url}")
        else:
            event.add("location", vText(practice.name))
        calendar.add_component(event)
    return calendar.to_ical()
