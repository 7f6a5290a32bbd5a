"""What a clinician needs first on a client's page: the next appointments, the devices they are
signed in on, and the state of their latest sign-in link in one sentence."""
from dataclasses import dataclass
from datetime import datetime

from .clock import to_local, utcnow
from .models import Appointment, Client, Email, Link, Practice, Session
from .history import browser_words, spoken
from .i18n import clinic_gettext, clinic_N_
from .sessions import idle_deadline
from .telehealth import upcoming_for

KINDS = {"telehealth": clinic_N_("Video session"), "in_person": clinic_N_("In person"),
         "phone": clinic_N_("Phone call")}
# How a link came to be switched off, said after the moment.
SWITCHED_OFF = {"too_many_codes": clinic_N_("%(made)s was switched off %(when)s after too many wrong codes."),
                "archived": clinic_N_("%(made)s was switched off %(when)s when the client was archived."),
                "email_changed": clinic_N_("%(made)s was switched off %(when)s when their email address changed.")}
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
        return "none", clinic_gettext("No sign-in link has been sent to %(name)s yet.", name=client.name)

    def when(moment):
        return spoken(moment, zone, now)

    mail = Email.select(Email.status, Email.sent_at).where(Email.link == link).order_by(Email.id.desc()).first()
    if mail is not None and mail.status == "failed":
        return "unsent", clinic_gettext("The latest sign-in link, made %(when)s, never reached %(name)s: its email "
                                        "could not be sent (see the link history below).",
                                        when=when(link.issued_at), name=client.name)
    if mail is None:  # not emailed (its delivery record pruned, or made by hand)
        made = clinic_gettext("The latest sign-in link, made %(when)s,", when=when(link.issued_at))
    elif mail.status == "sent":
        made = clinic_gettext("The latest sign-in link, sent %(when)s,", when=when(mail.sent_at))
    else:
        made = clinic_gettext("The latest sign-in link, made %(when)s and still waiting to be emailed,",
                              when=when(link.issued_at))
    if link.used_at is not None:
        return "used", clinic_gettext("%(made)s was used to sign in %(when)s.", made=made, when=when(link.used_at))
    if link.expires_at <= (link.revoked_at or now):
        return "expired", clinic_gettext("%(made)s expired unused %(when)s.", made=made, when=when(link.expires_at))
    if link.revoked_at is not None:
        said = SWITCHED_OFF.get(link.revoked_reason, clinic_N_("%(made)s was switched off %(when)s."))
        return "switched_off", clinic_gettext(said, made=made, when=when(link.revoked_at))
    if link.first_opened_at:
        return "live", clinic_gettext("%(made)s works until %(when)s; it was opened %(opened)s but not used yet.",
                                      made=made, when=when(link.expires_at), opened=when(link.first_opened_at))
    return "live", clinic_gettext("%(made)s works until %(when)s; it has not been opened yet.", made=made,
                                  when=when(link.expires_at))


def client_overview(client: Client, *, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    zone = Practice.current().timezone
    upcoming = upcoming_for(client, now, limit=UPCOMING_SHOWN + 1)
    rows = [UpcomingRow(id=a.id, when=_span(a, zone, now),
                        kind=clinic_gettext(KINDS[a.kind]) if a.kind in KINDS else a.kind.replace("_", " "),
                        clinician=a.clinician.name) for a in upcoming[:UPCOMING_SHOWN]]
    devices = [browser_words(session.user_agent) for session in Session.open_for_client(client)
               if now < idle_deadline(session)] if client.archived_at is None else []
    outcome, sentence = latest_link_state(client, zone, now)
    return Overview(rows, len(upcoming) > UPCOMING_SHOWN, devices, sentence, outcome)

