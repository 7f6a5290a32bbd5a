"""Clinicians: accounts with a strong password hash."""
from zoneinfo import ZoneInfo

from peewee import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .clients import ClientError, normalise_email
from .clock import utcnow
from .models import Clinician, Practice, write_transaction
from .text import CONTROL_MESSAGE, has_control_characters

MIN_PASSWORD_LENGTH = 12  # NIST SP 800-63B: length over composition rules


class ClinicianError(ValueError):
    """Input a clinician account cannot be saved with; the message is for the person."""


def create_clinician(email: str, name: str, password: str, *, is_admin: bool = False) -> Clinician:
    try:
        email = normalise_email(email)
    except ClientError as error:
        raise ClinicianError(str(error)) from None
    if not (name or "").strip():
        raise ClinicianError("A clinician needs a name.")
    if has_control_characters(name):  # the name signs emails
        raise ClinicianError(f"The name: {CONTROL_MESSAGE}")
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ClinicianError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    try:
        return Clinician.create(email=email, name=name.strip(), is_admin=is_admin, created_at=utcnow(),
                                password_hash=generate_password_hash(password, method="scrypt"))
    except IntegrityError:
        raise ClinicianError(f"A clinician with the address {email} already exists.") from None


def authenticate(email: str, password: str, *, ip: str | None = None) -> Clinician | None:
    """The clinician with this address and password, or None; a failure is audited, and takes
    as long for an unknown address as for a wrong password."""
    clinician = Clinician.get_or_none(Clinician.email == (email or "").strip().lower())
    if check_password(clinician, password):
        return clinician
    audit.record("clinician_sign_in_failed", clinician=clinician, ip=ip,
                 detail="wrong password" if clinician else "unknown address")
    return None


def check_password(clinician: Clinician | None, password: str) -> bool:
    if clinician is None:
        # Spend the same time on a stranger so the answer does not reveal who has an account.
        check_password_hash(_DUMMY_HASH, password or "")
        return False
    return check_password_hash(clinician.password_hash, password or "")


_DUMMY_HASH = generate_password_hash("not-a-real-password", method="scrypt")


def set_up_practice(*, practice_name: str, zone: str, contact_email: str, name: str, email: str,
                    password: str) -> Clinician:
    """First run: name the practice and create its first (admin) clinician, all or nothing."""
    ZoneInfo(zone)  # raises for an unknown zone; the form only offers known ones
    if has_control_characters(practice_name) or has_control_characters(contact_email):
        raise ClinicianError(f"The practice name and contact address: {CONTROL_MESSAGE}")
    with write_transaction():
        if Clinician.select().exists():
            raise ClinicianError("This practice is already set up.")
        practice = Practice.current()
        practice.name = practice_name.strip()
        practice.timezone = zone
        practice.contact_email = contact_email.strip().lower()
        practice.set_up_at = utcnow()
        practice.save()
        clinician = create_clinician(email, name, password, is_admin=True)
        audit.record("practice_set_up", clinician=clinician, detail=practice.name)
    return clinician
