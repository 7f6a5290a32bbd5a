"""Clients: add, find, edit, archive, and what a clinician does for them (sign out, links)."""
import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from peewee import SQL, IntegrityError, fn

from . import audit, runtime
from .clock import utcnow
from .i18n import LANGUAGES, clinic_gettext, known
from .links import revoke_client_links
from .models import Client, Clinician, Link, Session, is_sqlite, write_transaction
from .sessions import end_client_sessions, idle_deadline
from .sign_in import send_link
from .telehealth import end_client_seats
from .text import CONTROL_MESSAGE, has_control_characters

PHONE = re.compile(r"^\+?[\d\s().\-/]{3,40}$")
SEARCH_LIMIT = 200


class ClientError(ValueError):
    """Input a client record cannot be saved with; the message is for the person, and
    `field` names the form field it belongs beside."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def normalise_email(email: str) -> str:
    if has_control_characters(email):
        raise ClientError(clinic_gettext("That email address is not valid. %(problem)s", problem=CONTROL_MESSAGE),
                          "email")
    try:
        return validate_email((email or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as error:
        raise ClientError(clinic_gettext("That email address is not valid: %(error)s", error=error), "email") from None


def _clean(email: str, name: str, phone: str, zone: str | None, language: str = "en") -> dict:
    """The values to store, or ClientError for the first field that is wrong."""
    if has_control_characters(name):  # refused, not collapsed: the name goes into email headers
        raise ClientError(CONTROL_MESSAGE, "name")
    name = " ".join((name or "").split())
    if not name:
        raise ClientError(clinic_gettext("A client needs a name."), "name")
    if len(name) > 200:
        raise ClientError(clinic_gettext("Keep the name under 200 characters."), "name")
    email = normalise_email(email)
    phone = (phone or "").strip()
    if phone and not PHONE.match(phone):
        raise ClientError(clinic_gettext("Use digits, spaces and + ( ) - only, like +44 20 7946 0958."), "phone")
    if zone:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ClientError(clinic_gettext("Unknown time zone %(zone)s.", zone=repr(zone)), "timezone") from None
    if language not in LANGUAGES:
        raise ClientError(clinic_gettext("Choose English or Spanish."), "language")
    return {"email": email, "name": name, "phone": phone, "timezone": zone or None, "language": language}


def _duplicate(email: str) -> ClientError:
    return ClientError(clinic_gettext("A client with the address %(email)s already exists (addresses are compared "
                                      "ignoring capitals).", email=email), "email")


def add_client(email: str, name: str, zone: str | None = None, *, phone: str = "", language: str = "en",
               clinician: Clinician | None = None, by: Clinician | None = None) -> Client:
    values = _clean(email, name, phone, zone, language)
    try:
        with write_transaction():
            client = Client.create(**values, clinician=clinician, created_at=utcnow())
            audit.record("client_added", client=client, clinician=by,
                         detail=f"assigned to {clinician.name}" if clinician else "")
    except IntegrityError:
        raise _duplicate(values["email"]) from None
    return client


def update_client(client: Client, *, email: str, name: str, phone: str = "", zone: str | None = None,
                  language: str | None = None, clinician: Clinician | None = None,
                  by: Clinician | None = None) -> list[str]:
    """Save the edit; returns the names of the fields that changed (audited). A new address
    switches off live links: they were mailed to the old one."""
    values = _clean(email, name, phone, zone, language or client.language)
    if clinician is not None:
        values["clinician"] = clinician.id
    changed = [key for key, value in values.items()
               if value != (client.clinician_id if key == "clinician" else getattr(client, key))]
    if not changed:
        return []
    try:
        with write_transaction():
            Client.update(**values).where(Client.id == client.id).execute()
            if "email" in changed:
                revoke_client_links(client, "email_changed")
            audit.record("client_updated", client=client, clinician=by, detail="changed " + ", ".join(changed))
    except IntegrityError:
        raise _duplicate(values["email"]) from None
    client.language = values["language"]
    if "timezone" in changed:
        client.timezone = values["timezone"]
        for listener in runtime.current().listeners.client_zone_changed:
            listener(client)
    return changed


def archive_client(client: Client, *, by: Clinician | None = None) -> None:
    """An archived client cannot sign in or join a video session: their sessions end, their
    live links die, and any seat they hold in a room is given up now."""
    now = utcnow()
    with write_transaction():
        Client.update(archived_at=now).where(Client.id == client.id).execute()
        client.archived_at = now
        revoke_client_links(client, "archived", now)
        end_client_sessions(client, "archived", now=now)
        end_client_seats(client, now)
        audit.record("client_archived", client=client, clinician=by, at=now)


def restore_client(client: Client, *, by: Clinician | None = None) -> None:
    """Undo an archive. The links that died stay dead: the client asks for a new one."""
    with write_transaction():
        Client.update(archived_at=None).where(Client.id == client.id).execute()
        client.archived_at = None
        audit.record("client_restored", client=client, clinician=by)


def find_clients(clinician: Clinician, text: str = "", *, archived: bool = False):
    """The clients this clinician may see, active or archived, whose name, email or phone
    contains `text` (any case), by name."""
    query = Client.visible_to(clinician).where(
        Client.archived_at.is_null(False) if archived else Client.archived_at.is_null())
    text = (text or "").strip()[:100]
    if len(text) >= 3 and is_sqlite():
        # The trigram index (practice/migrations.py) finds the same clients as the LIKE below:
        # the text anywhere in one of the three, any case.
        phrase = '"' + text.replace('"', '""') + '"'
        query = query.where(Client.id.in_(SQL("(SELECT rowid FROM client_search WHERE client_search MATCH ?)", [phrase])))
    elif len(text) >= 3 and not has_control_characters(text):
        # PostgreSQL: LIKE on the lowered fields, one expression pg_trgm's index is built on
        # (practice/migrations.py); the newline between them is in none of the three.
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
        query = query.where(search_words() % fn.LOWER(pattern))  # lowered as the index is, by the server
    elif text:  # two letters or fewer: a scan, which for so broad a search costs no more
        query = query.where(Client.name.contains(text) | Client.email.contains(text) | Client.phone.contains(text))
    return query.order_by(fn.LOWER(Client.name), Client.id)


def search_words():
    """What PostgreSQL's client search index holds for each client (migrations.SEARCH_WORDS)."""
    return fn.LOWER(Client.name.concat("\n").concat(Client.email).concat("\n").concat(Client.phone))


def live_sessions(client: Client, now: datetime | None = None) -> int:
    """How many of the client's sessions would still let them in now (a timed-out session
    only gets its end written when its cookie is next seen)."""
    now = now or utcnow()
    return sum(1 for session in Session.open_for_client(client) if now < idle_deadline(session))


def _must_be_active(client: Client) -> None:
    if client.archived_at is not None:
        raise ClientError(clinic_gettext("%(name)s is archived and cannot sign in. Restore them first.",
                                         name=client.name))


def sign_out_everywhere(client: Client, *, by: Clinician) -> int:
    """End every session the client has open, on every device; returns how many."""
    now = utcnow()
    with write_transaction():
        ended = end_client_sessions(client, "ended_by_clinician", now=now)
        audit.record("signed_out_everywhere", client=client, clinician=by, at=now,
                     detail=f"{ended} session{'s' if ended != 1 else ''} ended")
    return ended


def send_sign_in_link(client: Client, *, by: Clinician) -> Link:
    """The same link a client's own request gets: earlier links stop working."""
    _must_be_active(client)
    with write_transaction():
        link = send_link(client, "clinician")
        audit.record("link_sent_by_clinician", client=client, clinician=by, link=link)
    return link


def invite_client(client: Client, *, by: Clinician, now: datetime | None = None) -> Link:
    """The welcome email: a one-time link with the invitation lifetime, landing on the portal home."""
    _must_be_active(client)
    now = now or utcnow()
    with write_transaction():
        link = send_link(client, "invitation", target="/portal", now=now, template="invitation")
        audit.record("invitation_sent", client=client, clinician=by, link=link, at=now)
    return link



def set_language(client: Client, language: str) -> None:
    """The client's language, for their pages, emails, reminders and calendar entries."""
    language = known(language)
    if language != client.language:
        Client.update(language=language).where(Client.id == client.id).execute()
        client.language = language
