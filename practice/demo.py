"""A demo practice for trying Portico with no setup: a clinician and a few clients."""
import secrets

from .clients import add_client
from .clinicians import create_clinician
from .models import Client, Clinician, Practice

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
    if Clinician.get_or_none(Clinician.email == email) is None:
        password = secrets.token_urlsafe(12)
        create_clinician(email, "Dr. Dana Hale", password, is_admin=True)
        lines.append(f"Clinician: {email} / password {password}")
    else:
        lines.append(f"Clinician: {email} (already created; password unchanged)")
    for address, name in DEMO_CLIENTS:
        if Client.by_email(address) is None:
            add_client(address, name)
        lines.append(f"Client: {name} <{address}>")
    lines.append("Clients sign in at /sign-in; with no MAIL_SERVER their email is at /dev/mailbox.")
    return lines
