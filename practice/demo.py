"""A demo practice for trying Portico with no setup: a clinician and a few clients."""
import secrets

from datetime import timedelta

from .appointments import create_appointment
from .clients import add_client
from .clinicians import create_clinician
from .clock import utcnow
from .models import Appointment, Client, Clinician, Practice

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
        practice.save()
    lines = [f"Practice: {practice.name}"]
    email = "clinician@example.com"
    clinician = Clinician.get_or_none(Clinician.email == email)
    if clinician is None:
        password = secrets.token_urlsafe(12)
        clinician = create_clinician(email, "Dr. Dana Hale", password, is_admin=True)
        lines.append(f"Clinician: {email} / password {password}  (sign in at /clinic/)")
    else:
        lines.append(f"Clinician: {email} (already created; password unchanged)")
    clients = []
    for address, name in DEMO_CLIENTS:
        client = Client.by_email(address) or add_client(address, name)
        Client.update(clinician=clinician).where(Client.id == client.id).execute()
        clients.append(client)
        lines.append(f"Client: {name} <{address}>")
    if not Appointment.select().where(Appointment.clinician == clinician).exists():
        _book_demo_week(clinician, clients)
        lines.append("Appointments: three this week, on the clinician's calendar.")
    lines.append("Clients sign in at /sign-in; with no MAIL_SERVER their email is at /dev/mailbox.")
    return lines


def _book_demo_week(clinician, clients) -> None:
    """A telehealth session starting soon (its link is live), one tomorrow, one in person."""
    soon = utcnow().replace(second=0) + timedelta(minutes=10)
    tomorrow = (utcnow() + timedelta(days=1)).replace(minute=0, second=0)
    for client, start, kind in ((clients[0], soon, "telehealth"),
                                (clients[1], tomorrow, "telehealth"),
                                (clients[2], tomorrow + timedelta(hours=2), "in_person")):
        create_appointment(clinician=clinician, client=client, starts_at=start,
                           ends_at=start + timedelta(minutes=50), kind=kind, by=clinician)
