"""Clinicians: accounts with a strong password hash."""
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from peewee import JOIN, IntegrityError, fn
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .clients import ClientError, normalise_email
from .clock import utcnow
from .models import Clinician, Practice, Session, db, value_from_db, write_transaction
from .text import CONTROL_MESSAGE, has_control_characters

MIN_PASSWORD_LENGTH = 12  # NIST SP 800-63B: length over composition rules


class ClinicianError(ValueError):
    """Input a clinician account cannot be saved with; the message is for the person."""


class AlreadySetUp(ClinicianError):
    """Another first-run setup won: the practice has its admin."""

    def __init__(self):
        super().__init__("This practice is already set up.")


def _account(email: str, name: str, password: str, is_admin: bool) -> dict:
    """The row's values, the slow password hash included (made before any transaction)."""
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
    return dict(email=email, name=name.strip(), is_admin=is_admin, password_hash=generate_password_hash(
        password, method="scrypt"))


def _create(account: dict) -> Clinician:
    try:
        with db.atomic():
            return Clinician.create(**account, created_at=utcnow())
    except IntegrityError:
        raise ClinicianError(f"A clinician with the address {account['email']} already exists.") from None


def create_clinician(email: str, name: str, password: str, *, is_admin: bool = False) -> Clinician:
    return _create(_account(email, name, password, is_admin))


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
    """First run: name the practice and create its first (admin) clinician, all or nothing.

    Of any number of setups at once exactly one wins, in the database: a conditional UPDATE
    of the practice row while it is not set up (PostgreSQL makes the others wait on the row,
    then finds it set up; SQLite lets one writer in at a time). The others get AlreadySetUp."""
    ZoneInfo(zone)  # raises for an unknown zone; the form only offers known ones
    if has_control_characters(practice_name) or has_control_characters(contact_email):
        raise ClinicianError(f"The practice name and contact address: {CONTROL_MESSAGE}")
    account = _account(email, name, password, is_admin=True)
    practice_name = practice_name.strip()
    with write_transaction():
        claimed = Practice.update(name=practice_name, timezone=zone, contact_email=contact_email.strip().lower(),
                                  set_up_at=utcnow()).where(
            (Practice.id == 1) & Practice.set_up_at.is_null()).execute()
        if not claimed or Clinician.select().exists():  # or a clinician made from the command line
            raise AlreadySetUp()
        clinician = _create(account)
        audit.record("practice_set_up", clinician=clinician, detail=practice_name)
    return clinician


@dataclass
class ClinicianRow:
    name: str
    email: str
    role: str
    last_sign_in: datetime | None


def clinician_rows() -> list[ClinicianRow]:
    """Every clinician of the practice, by name, with when each last signed in: an admin sees
    at a glance an account that should not be there."""
    last = fn.MAX(Session.created_at)
    query = (Clinician.select(Clinician, last.alias("last_sign_in"))
             .join(Session, JOIN.LEFT_OUTER, on=(Session.clinician == Clinician.id))
             .group_by(Clinician.id).order_by(fn.LOWER(Clinician.name), Clinician.id))
    return [ClinicianRow(c.name, c.email, "Admin" if c.is_admin else "Clinician",
                         value_from_db(Session.created_at, c.last_sign_in)) for c in query]
