"""Clients: add, find, archive."""
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from peewee import IntegrityError

from . import audit
from .clock import utcnow
from .links import revoke_client_links
from .models import Client, write_transaction
from .sessions import end_client_sessions


class ClientError(ValueError):
    """Input a client record cannot be saved with; the message is for the person."""


def normalise_email(email: str) -> str:
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ClientError(f"That email address is not valid: {error}") from None


def add_client(email: str, name: str, zone: str | None = None) -> Client:
    email = normalise_email(email)
    name = (name or "").strip()
    if not name:
        raise ClientError("A client needs a name.")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ClientError(f"Unknown time zone {zone!r}.") from None
    try:
        with write_transaction():
            client = Client.create(email=email, name=name[:200], timezone=zone or None, created_at=utcnow())
            audit.record("client_added", client=client)
    except IntegrityError:
        raise ClientError(f"A client with the address {email} already exists.") from None
    return client


def archive_client(client: Client) -> None:
    """An archived client cannot sign in: their sessions end and their live links die now."""
    now = utcnow()
    with write_transaction():
        Client.update(archived_at=now).where(Client.id == client.id).execute()
        client.archived_at = now
        revoke_client_links(client, "archived", now)
        end_client_sessions(client, "archived", now=now)
        audit.record("client_archived", client=client, at=now)
