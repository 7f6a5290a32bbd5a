"""Clinicians: accounts with a strong password hash, sign-in and its failures, first-run setup."""
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from peewee import JOIN, IntegrityError, fn
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .clients import ClientError, normalise_email
from .i18n import clinic_gettext
from .clock import utcnow
from .second_factor import factor_summary
from .models import (Appointment, Client, Clinician, ClinicianSignInFailure, Practice, Session, db, value_from_db,
                     write_transaction)
from .text import CONTROL_MESSAGE, has_control_characters

MIN_PASSWORD_LENGTH = 12  # NIST SP 800-63B: length over composition rules
FREE_FAILURES = 5  # failed sign-ins with one address before anyone who failed with it must wait
FAILURE_WINDOW = timedelta(hours=1)
MAX_DELAY = timedelta(minutes=15)


class ClinicianError(ValueError):
    """Input a clinician account cannot be saved with; the message is for the person."""


class AlreadySetUp(ClinicianError):
    """Another first-run setup won: the practice has its admin."""

    def __init__(self):
        super().__init__(clinic_gettext("This practice is already set up."))


def _account(email: str, name: str, password: str, is_admin: bool) -> dict:
    """The row's values, the slow password hash included (made before any transaction)."""
    try:
        email = normalise_email(email)
    except ClientError as error:
        raise ClinicianError(str(error)) from None
    if not (name or "").strip():
        raise ClinicianError(clinic_gettext("A clinician needs a name."))
    if has_control_characters(name):  # the name signs emails
        raise ClinicianError(clinic_gettext("The name: %(problem)s", problem=CONTROL_MESSAGE))
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise ClinicianError(clinic_gettext("The password must be at least %(num)d characters long.",
                                            num=MIN_PASSWORD_LENGTH))
    return dict(email=email, name=name.strip(), is_admin=is_admin, password_hash=generate_password_hash(
        password, method="scrypt"))


def _create(account: dict) -> Clinician:
    try:
        with db.atomic():
            return Clinician.create(**account, created_at=utcnow())
    except IntegrityError:
        raise ClinicianError(clinic_gettext("A clinician with the address %(email)s already exists.",
                                            email=account["email"])) from None


def create_clinician(email: str, name: str, password: str, *, is_admin: bool = False) -> Clinician:
    return _create(_account(email, name, password, is_admin))


class SlowDown(Exception):
    """Too many failed sign-ins with this address, and this network address has some of them:
    its next try must wait `seconds` (nothing was checked)."""

    def __init__(self, seconds: int):
        super().__init__(f"wait {seconds} s")
        self.seconds = seconds


def authenticate(email: str, password: str, *, ip: str | None = None,
                 now: datetime | None = None) -> Clinician | None:
    """The clinician with this address and password, or None; a failure is recorded and
    audited, and takes as long for an unknown address as for a wrong password. SlowDown when
    this network address must wait before its next try."""
    now = now or utcnow()
    address = (email or "").strip().lower()
    must_wait(address, ip, now)
    clinician = Clinician.get_or_none(Clinician.email == address)
    if check_password(clinician, password):
        return clinician
    with write_transaction():
        ClinicianSignInFailure.create(email=address[:254], clinician=clinician, ip=ip, at=now)
        audit.record("clinician_sign_in_failed", clinician=clinician, ip=ip, at=now,
                     detail="wrong password" if clinician else "unknown address")
    return None


def must_wait(address: str, ip: str | None, now: datetime) -> None:
    """Only failures count. Past FREE_FAILURES within FAILURE_WINDOW, a network address that
    has failed with this sign-in address waits after the latest failure, twice as long at
    each new one (1 s, 2 s, 4 s ... up to MAX_DELAY). A network address that has not failed
    with it is always heard: the real clinician's first right password from a new place is
    never refused, however many wrong ones others sent."""
    recent = ClinicianSignInFailure.recent_for(address, now - FAILURE_WINDOW)
    failures = recent.count()
    if failures < FREE_FAILURES or not recent.where(ClinicianSignInFailure.ip == ip).exists():
        return
    latest = recent.select(fn.MAX(ClinicianSignInFailure.at)).scalar()
    latest = value_from_db(ClinicianSignInFailure.at, latest)
    delay = min(timedelta(seconds=2 ** min(failures - FREE_FAILURES, 20)), MAX_DELAY)
    left = (latest + delay - now).total_seconds()
    if left > 0:
        raise SlowDown(math.ceil(left))


def failures_since_last_sign_in(clinician: Clinician) -> list[ClinicianSignInFailure]:
    """The failed sign-ins with this clinician's account since their last sign-in (ask
    before the new session starts), newest first: shown to them as they sign in."""
    previous = Session.select(fn.MAX(Session.created_at)).where(Session.clinician == clinician).scalar()
    query = ClinicianSignInFailure.select().where(ClinicianSignInFailure.clinician == clinician)
    if previous is not None:
        query = query.where(ClinicianSignInFailure.at > value_from_db(Session.created_at, previous))
    return list(query.order_by(ClinicianSignInFailure.at.desc(), ClinicianSignInFailure.id.desc()))


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
        raise ClinicianError(clinic_gettext("The practice name and contact address: %(problem)s",
                                            problem=CONTROL_MESSAGE))
    account = _account(email, name, password, is_admin=True)
    practice_name = practice_name.strip()
    with write_transaction():
        claimed = Practice.update(name=practice_name, timezone=zone, contact_email=contact_email.strip().lower(),
                                  set_up_at=utcnow(), require_second_factor=True).where(
            (Practice.id == 1) & Practice.set_up_at.is_null()).execute()
        if not claimed or Clinician.select().exists():  # or a clinician made from the command line
            raise AlreadySetUp()
        clinician = _create(account)
        audit.record("practice_set_up", clinician=clinician, detail=practice_name)
    return clinician


@dataclass
class ClinicianRow:
    id: int
    name: str
    email: str
    role: str
    last_sign_in: datetime | None
    second_factor: str = ""


def clinician_rows() -> list[ClinicianRow]:
    """Every clinician of the practice, by name, with when each last signed in: an admin sees
    at a glance an account that should not be there."""
    last = fn.MAX(Session.created_at)
    query = (Clinician.select(Clinician, last.alias("last_sign_in"))
             .join(Session, JOIN.LEFT_OUTER, on=(Session.clinician == Clinician.id))
             .group_by(Clinician.id).order_by(fn.LOWER(Clinician.name), Clinician.id))
    return [ClinicianRow(c.id, c.name, c.email, clinic_gettext("Admin") if c.is_admin else clinic_gettext("Clinician"),
                         value_from_db(Session.created_at, c.last_sign_in), factor_summary(c)) for c in query]


def by_name():
    """Every clinician, by name (as the clinicians list orders them): whose calendar to show."""
    return Clinician.select(Clinician.id, Clinician.name).order_by(fn.LOWER(Clinician.name), Clinician.id)


def sees_clients(clinician: Clinician) -> bool:
    """Clients are assigned to them or appointments booked with them: an admin who also
    practises, not only runs the practice."""
    return (Appointment.select().where(Appointment.clinician == clinician).exists()
            or Client.select().where(Client.clinician == clinician).exists())
