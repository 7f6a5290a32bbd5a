"""A demo practice for trying Portico with no setup: a clinician and a few clients."""
import secrets
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from . import runtime
from .appointments import create_appointment
from .availability import save_hours
from .clients import add_client
from .clinicians import create_clinician
from .clock import describe_when, to_local, utcnow
from .models import Appointment, Client, Clinician, Practice

DEMO_ZONE = "America/New_York"  # a real practice's zone, so the calendar is not on UTC's clock
WORKING_HOURS = (time(9, 0), time(17, 0))  # the demo books inside these, Monday to Friday

DEMO_CLIENTS = [
    ("alex@example.com", "Alex Morgan"),
    ("sam@example.com", "Sam Rivera"),
    ("jo@example.com", "Jo Chen"),
]


def seed_demo() -> list[str]:
    """Create what is missing (safe to run twice); returns lines to show the person."""
    practice = Practice.current()
    if practice.name == "Portico":
        practice.name = "Riverside Counselling (demo)"
        practice.contact_email = practice.contact_email or "office@riverside.example"
        practice.timezone = DEMO_ZONE
        # Trying the portal should not start with an authenticator app; a real practice set up
        # at /clinic/ requires one (Settings, "Clinician sign-in").
        practice.require_second_factor = False
        practice.save()
    base = runtime.settings().base_url
    lines = [f"Practice: {practice.name} ({practice.timezone})"]
    email = "clinician@example.com"
    clinician = Clinician.get_or_none(Clinician.email == email)
    if clinician is None:
        password = secrets.token_urlsafe(12)
        clinician = create_clinician(email, "Dr. Dana Hale", password, is_admin=True)
        # Hours to offer when a client reschedules from an email's "Reschedule or cancel" link.
        opens, closes = (wall.strftime("%H:%M") for wall in WORKING_HOURS)
        save_hours(clinician, {day: [(opens, closes)] for day in range(5)}, [])
        lines.append(f"Clinician: {email} / password {password}  (sign in at {base}/clinic/)")
    else:
        lines.append(f"Clinician: {email} (already created; password unchanged)")
    clients = []
    for address, name in DEMO_CLIENTS:
        client = Client.by_email(address) or add_client(address, name)
        Client.update(clinician=clinician).where(Client.id == client.id).execute()
        clients.append(client)
        lines.append(f"Client: {name} <{address}>")
    if not Appointment.select().where(Appointment.clinician == clinician).exists():
        first = _book_demo_week(clinician, clients, practice.timezone)
        lines.append(f"Appointments: three on the clinician's calendar, the first {describe_when(first, practice.timezone)}"
                     f" ({practice.timezone}).")
    lines.append(f"Clients sign in at {base}/sign-in; with no MAIL_SERVER their email is at {base}/dev/mailbox")
    if not practice.require_second_factor:
        lines.append("Second factor for clinicians: off in the demo (turn it on in Settings, Clinician sign-in).")
    return lines


def demo_starts(now: datetime, zone: str) -> list[datetime]:
    """Three starts (naive UTC) inside working hours in `zone`: in ten minutes when that is
    still inside them (its telehealth link is live at once), else at the next working morning;
    then 10:00 and 2:00 PM on the working day after it."""
    local = to_local(now, zone).replace(second=0, microsecond=0)
    soon = local + timedelta(minutes=10 - local.minute % 5)
    opens, closes = WORKING_HOURS
    latest_start = datetime.combine(soon.date(), closes, soon.tzinfo) - timedelta(minutes=50)
    if soon.weekday() < 5 and soon.time() >= opens and soon <= latest_start:
        first = soon
    else:
        first = _at(_next_working_day(local.date(), include=local.time() < opens), opens, zone)
    second_day = _next_working_day(first.date() + timedelta(days=1), include=True)
    starts = [first, _at(second_day, time(10, 0), zone), _at(second_day, time(14, 0), zone)]
    return [start.astimezone(timezone.utc).replace(tzinfo=None) for start in starts]


def _next_working_day(day, *, include: bool):
    day = day if include else day + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _at(day, wall: time, zone: str) -> datetime:
    return datetime.combine(day, wall, ZoneInfo(zone))


def _book_demo_week(clinician, clients, zone: str) -> datetime:
    """A telehealth session soon (its link is live) or next morning, one the day after, one in person."""
    starts = demo_starts(utcnow(), zone)
    for client, start, kind in zip(clients, starts, ("telehealth", "telehealth", "in_person")):
        create_appointment(clinician=clinician, client=client, starts_at=start,
                           ends_at=start + timedelta(minutes=50), kind=kind, by=clinician)
    return starts[0]
