"""What a clinician needs first on a client's page: the next appointments, the devices they are
signed in on, and the state of their latest sign-in link in one sentence."""
from dataclasses import dataclass
from datetime import datetime

from .clock import to_local, utcnow
from .models import Appointment, Client, Email, Link, Practice, Session
from .history import browser_words, spoken
from .sessions import idle_deadline
from .telehealth import upcoming_for

KINDS = {"telehealth": "Video session", "in_person": "In person", "phone": "Phone call"}
UPCOMING_SHOWN = 3


@dataclass
class UpcomingRow:
    id: int
    when: str  # "Tomorrow, 10:00 AM – 10:50 AM"
    kind: str
    clinician: str


@dataclass
class Overview:
    upcoming: list[UpcomingRow]
    more_upcoming: bool
    devices: list[str]  # "Chrome on Android", one per live session
    link_state: str  # one sentence
    link_outcome: str  # none, live, used, expired, switched_off, unsent: a CSS class and a test hook


def _span(appointment: Appointment, zone: str, now: datetime) -> str:
    start = spoken(appointment.starts_at, zone, now)
    end = to_local(appointment.ends_at, zone).strftime("%-I:%M %p")
    return f"{start[0].upper()}{start[1:]} – {end}"


def latest_link_state(client: Client, zone: str, now: datetime) -> tuple[str, str]:
    """(outcome, sentence) for the client's newest link."""
    link = Link.history_for(client).first()
    if link is None:
        return "none", f"No sign-in link has been sent to {client.name} yet."

    def when(moment):
        return spoken(moment, zone, now)

    mail = Email.select(Email.status, Email.sent_at).where(Email.link == link).order_by(Email.id.desc()).first()
    if mail is not None and mail.status == "failed":
        return "unsent", (f"The latest sign-in link, made {when(link.issued_at)}, never reached {client.name}: "
                          "its email could not be sent (see the link history below).")
    if mail is None:  # not emailed (its delivery record pruned, or made by hand)
        made = f"The latest sign-in link, made {when(link.issued_at)},"
    elif mail.status == "sent":
        made = f"The latest sign-in link, sent {when(mail.sent_at)},"
    else:
        made = f"The latest sign-in link, made {when(link.issued_at)} and still waiting to be emailed,"
    if link.used_at is not None:
        return "used", f"{made} was used to sign in {when(link.used_at)}."
    if link.expires_at <= (link.revoked_at or now):
        return "expired", f"{made} expired unused {when(link.expires_at)}."
    if link.revoked_at is not None:
        why = {"too_many_codes": "after too many wrong codes", "archived": "when the client was archived",
               "email_changed": "when their email address changed"}.get(link.revoked_reason, "")
        return "switched_off", f"{made} was switched off {when(link.revoked_at)}{' ' + why if why else ''}."
    opened = (f"it was opened {when(link.first_opened_at)} but not used yet" if link.first_opened_at
              else "it has not been opened yet")
    return "live", f"{made} works until {when(link.expires_at)}; {opened}."


def client_overview(client: Client, *, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    zone = Practice.current().timezone
    upcoming = upcoming_for(client, now, limit=UPCOMING_SHOWN + 1)
    rows = [UpcomingRow(id=a.id, when=_span(a, zone, now), kind=KINDS.get(a.kind, a.kind.replace("_", " ")),
                        clinician=a.clinician.name) for a in upcoming[:UPCOMING_SHOWN]]
    devices = [browser_words(session.user_agent) for session in Session.open_for_client(client)
               if now < idle_deadline(session)] if client.archived_at is None else []
    outcome, sentence = latest_link_state(client, zone, now)
    return Overview(rows, len(upcoming) > UPCOMING_SHOWN, devices, sentence, outcome)

