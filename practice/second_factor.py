"""A clinician's second factor: an authenticator app (TOTP) or a passkey, ten one-time
recovery codes, the step between the password and the session, and its rate limits.

The password step (practice/clinicians.py) does not start a session when a second factor is
due: it starts a PendingSignIn, which opens nothing of the clinic. Only the right code, a
recovery code or the clinician's passkey turns it into a session; a clinician without a
factor at a practice that requires one sets one up first.
"""
import hashlib
import hmac
import io
import math
import secrets
from datetime import datetime, timedelta, timezone

import pyotp
import segno

from . import audit
from .clock import utcnow
from .i18n import clinic_gettext, clinic_N_, clinic_ngettext
from .models import (AuditEvent, Clinician, ClinicianPasskey, PendingSignIn, Practice, RecoveryCode,
                     SecondFactorFailure, Session, write_transaction)
from .runtime import settings
from .sealed import UNREADABLE
from .sessions import end_session

PENDING_LIFETIME = timedelta(minutes=10)  # from the right password to the second factor
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper
FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_CLINICIAN = 5  # wrong codes for one clinician within the window, from anywhere
FAILURES_PER_ADDRESS = 20  # wrong codes from one network address within the window, for anyone
ISSUER = "Portico"


class SecondFactorError(ValueError):
    """A code or setup we do not accept; the message is for the person (it never holds the code)."""


class TooManyAttempts(SecondFactorError):
    """Too many wrong codes lately: nothing is checked until `seconds` have passed."""

    def __init__(self, seconds: int):
        minutes = max(1, math.ceil(seconds / 60))
        super().__init__(clinic_ngettext("Too many wrong codes. Try again in %(num)d minute.",
                                         "Too many wrong codes. Try again in %(num)d minutes.", minutes))
        self.seconds = seconds


# ---- state ---------------------------------------------------------------------------------

def has_totp(clinician: Clinician) -> bool:
    return clinician.totp_confirmed_at is not None and bool(clinician.totp_secret)


def has_second_factor(clinician: Clinician) -> bool:
    return has_totp(clinician) or ClinicianPasskey.of(clinician).exists()


def must_set_up(clinician: Clinician) -> bool:
    """The practice requires a second factor and this clinician has none yet."""
    return Practice.current().require_second_factor and not has_second_factor(clinician)


def factor_summary(clinician: Clinician) -> str:
    """"Authenticator app and 1 passkey", in words for the clinicians list."""
    count = ClinicianPasskey.of(clinician).count()
    passkeys = clinic_ngettext("%(num)d passkey", "%(num)d passkeys", count)
    if has_totp(clinician):
        return clinic_gettext("Authenticator app and %(passkeys)s", passkeys=passkeys) if count \
            else clinic_gettext("Authenticator app")
    return passkeys if count else clinic_gettext("None")


def recovery_codes_left(clinician: Clinician) -> int:
    return RecoveryCode.unused_of(clinician).count()


# ---- the step between the password and the session ---------------------------------------

def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def start_pending(clinician: Clinician, *, ip: str | None = None, now: datetime | None = None) -> str:
    """After the right password: the raw id for the pending cookie."""
    now = now or utcnow()
    raw_id = secrets.token_urlsafe(32)
    with write_transaction():
        PendingSignIn.delete().where(PendingSignIn.expires_at < now).execute()
        PendingSignIn.create(id_hash=_hash(raw_id), clinician=clinician, created_at=now,
                             expires_at=now + PENDING_LIFETIME, ip=ip)
    return raw_id


def find_pending(raw_id: str | None, *, now: datetime | None = None) -> PendingSignIn | None:
    if not raw_id or len(raw_id) > 100:
        return None
    now = now or utcnow()
    return PendingSignIn.get_or_none((PendingSignIn.id_hash == _hash(raw_id)) & (PendingSignIn.expires_at > now))


def finish_pending(pending: PendingSignIn) -> None:
    PendingSignIn.delete().where(PendingSignIn.id == pending.id).execute()


# ---- rate limits -----------------------------------------------------------------------------

def _must_wait(clinician: Clinician, ip: str | None, now: datetime) -> None:
    """Per clinician and per network address: past the limit within FAILURE_WINDOW, nothing is
    checked until the oldest of the counted failures has left the window."""
    since = now - FAILURE_WINDOW
    recent = SecondFactorFailure.select().where(SecondFactorFailure.at > since)
    for query, limit in ((recent.where(SecondFactorFailure.clinician == clinician), FAILURES_PER_CLINICIAN),
                         (recent.where(SecondFactorFailure.ip == ip), FAILURES_PER_ADDRESS if ip else None)):
        if limit is None:
            continue
        failures = list(query.order_by(SecondFactorFailure.at.desc()).limit(limit))
        if len(failures) >= limit:
            raise TooManyAttempts(max(1, int((failures[-1].at + FAILURE_WINDOW - now).total_seconds())))


def _failed(clinician: Clinician, ip: str | None, now: datetime, what: str) -> None:
    with write_transaction():
        # Only the window counts: older rows go as new ones come (the audit trail keeps each).
        SecondFactorFailure.delete().where(SecondFactorFailure.at < now - FAILURE_WINDOW).execute()
        SecondFactorFailure.create(clinician=clinician, ip=ip, at=now)
        audit.record("second_factor_failed", clinician=clinician, ip=ip, at=now, detail=what)


# ---- authenticator app (TOTP) ---------------------------------------------------------------

def _epoch(now: datetime) -> int:
    return int(now.replace(tzinfo=timezone.utc).timestamp())  # stored times are naive UTC


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret)


def begin_totp(clinician: Clinician) -> str:
    """A new secret for the app, kept (sealed) until the clinician confirms a code from it."""
    if has_totp(clinician):
        raise SecondFactorError(clinic_gettext("You already use an authenticator app. Remove it first to set up "
                                               "another."))
    secret = pyotp.random_base32()
    Clinician.update(totp_secret=secret, totp_confirmed_at=None, totp_last_step=None).where(
        Clinician.id == clinician.id).execute()
    clinician.totp_secret, clinician.totp_confirmed_at, clinician.totp_last_step = secret, None, None
    return secret


def provisioning_uri(clinician: Clinician, secret: str) -> str:
    issuer = Practice.current().name or ISSUER
    return _totp(secret).provisioning_uri(name=clinician.email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The QR code of the otpauth:// address as inline SVG (no image request, nothing to cache)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", xmldecl=False, svgns=True, scale=5, border=2,
                                    svgclass="qr-code", lineclass=None, omitsize=False,
                                    title=clinic_gettext("QR code for your authenticator app"))
    return buffer.getvalue().decode()


def _normalise_code(code: str | None) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def _accept_totp(clinician: Clinician, code: str, now: datetime) -> bool:
    """A code of the current 30 s step or the one either side (clocks drift), never one of a
    step at or before the last accepted: a code seen over a shoulder cannot be used again."""
    if not (len(code) == 6 and code.isdigit()) or clinician.totp_secret in (None, "", UNREADABLE):
        return False  # UNREADABLE: sealed under another SECRET_KEY (recovery codes or an admin reset then)
    totp = _totp(clinician.totp_secret)
    current = _epoch(now) // totp.interval
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if clinician.totp_last_step is not None and step <= clinician.totp_last_step:
                return False
            # Conditional, so two requests racing with one code cannot both win.
            moved = Clinician.update(totp_last_step=step).where(
                (Clinician.id == clinician.id)
                & (Clinician.totp_last_step.is_null() | (Clinician.totp_last_step < step))).execute()
            if moved:
                clinician.totp_last_step = step
            return bool(moved)
    return False


def confirm_totp(clinician: Clinician, code: str, *, ip: str | None = None,
                 now: datetime | None = None) -> list[str]:
    """The first right code from the app turns it on; returns new recovery codes (shown once)."""
    now = now or utcnow()
    _must_wait(clinician, ip, now)
    if has_totp(clinician) or not clinician.totp_secret:
        raise SecondFactorError(clinic_gettext("Start again: scan the new QR code."))
    if not _accept_totp(clinician, _normalise_code(code), now):
        _failed(clinician, ip, now, "setup code did not match")
        raise SecondFactorError(clinic_gettext("That code does not match. Check the app shows Portico and try the "
                                               "newest code."))
    with write_transaction():
        Clinician.update(totp_confirmed_at=now).where(Clinician.id == clinician.id).execute()
        clinician.totp_confirmed_at = now
        audit.record("second_factor_set_up", clinician=clinician, ip=ip, at=now, detail="authenticator app")
        codes = new_recovery_codes(clinician, now=now, audited=False)
    return codes


def remove_totp(clinician: Clinician, *, ip: str | None = None) -> None:
    _would_leave_none(clinician, totp=True)
    with write_transaction():
        Clinician.update(totp_secret=None, totp_confirmed_at=None, totp_last_step=None).where(
            Clinician.id == clinician.id).execute()
        clinician.totp_secret = clinician.totp_confirmed_at = clinician.totp_last_step = None
        audit.record("second_factor_removed", clinician=clinician, ip=ip, detail="authenticator app")


def remove_passkey(clinician: Clinician, passkey_id: int, *, ip: str | None = None) -> bool:
    passkey = ClinicianPasskey.get_or_none((ClinicianPasskey.id == passkey_id)
                                           & (ClinicianPasskey.clinician == clinician))
    if passkey is None:
        return False
    _would_leave_none(clinician, passkey=passkey)
    with write_transaction():
        ClinicianPasskey.delete().where(ClinicianPasskey.id == passkey.id).execute()
        audit.record("second_factor_removed", clinician=clinician, ip=ip, detail=f"passkey ({passkey.device})")
    return True


def _would_leave_none(clinician: Clinician, *, totp: bool = False, passkey=None) -> None:
    if not Practice.current().require_second_factor:
        return
    left_totp = has_totp(clinician) and not totp
    left_passkeys = ClinicianPasskey.of(clinician).where(ClinicianPasskey.id != getattr(passkey, "id", 0)).exists()
    if not (left_totp or left_passkeys):
        raise SecondFactorError(clinic_gettext("The practice requires a second factor: set up another one before "
                                               "removing this."))


# ---- recovery codes ----------------------------------------------------------------------------

def _code_hash(clinician: Clinician, code: str) -> str:
    # Keyed, and bound to the clinician: a copy of the database alone cannot be searched for
    # codes (ten 50-bit codes are within reach of a plain hash's offline search).
    return hmac.new(settings().secret_key.encode(), f"recovery:{clinician.id}:{code}".encode(),
                    hashlib.sha256).hexdigest()


def new_recovery_codes(clinician: Clinician, *, ip: str | None = None, now: datetime | None = None,
                       audited: bool = True) -> list[str]:
    """Ten new codes, replacing any earlier ones; only their hashes are kept."""
    now = now or utcnow()
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    with write_transaction():
        RecoveryCode.delete().where(RecoveryCode.clinician == clinician).execute()
        RecoveryCode.insert_many([dict(clinician=clinician.id, code_hash=_code_hash(clinician, code), created_at=now)
                                  for code in codes]).execute()
        if audited:
            audit.record("recovery_codes_made", clinician=clinician, ip=ip, at=now, detail=f"{RECOVERY_CODES} codes")
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def _use_recovery_code(clinician: Clinician, code: str, ip: str | None, now: datetime) -> bool:
    if len(code) != 10:
        return False
    given = _code_hash(clinician, code)
    match = None
    for row in RecoveryCode.unused_of(clinician):  # every one compared, in constant time
        if hmac.compare_digest(row.code_hash, given):
            match = row
    if match is None:
        return False
    with write_transaction():
        if not RecoveryCode.update(used_at=now).where((RecoveryCode.id == match.id)
                                                      & RecoveryCode.used_at.is_null()).execute():
            return False  # used by a request racing this one
        left = recovery_codes_left(clinician)
        audit.record("recovery_code_used", clinician=clinician, ip=ip, at=now, detail=f"{left} left")
    return True


# ---- the second step -----------------------------------------------------------------------------

def verify(clinician: Clinician, code: str, *, ip: str | None = None, now: datetime | None = None) -> str:
    """Check a code from the app or a recovery code; returns which ("totp", "recovery_code"),
    or raises SecondFactorError (a failure is counted and audited, without the code)."""
    now = now or utcnow()
    _must_wait(clinician, ip, now)
    given = _normalise_code(code)
    if has_totp(clinician) and _accept_totp(clinician, given, now):
        audit.record("second_factor_used", clinician=clinician, ip=ip, at=now, detail="authenticator app")
        return "totp"
    if _use_recovery_code(clinician, given, ip, now):
        return "recovery_code"
    _failed(clinician, ip, now, "wrong or used code")
    raise SecondFactorError(clinic_gettext("That code did not work. Use the newest code from your app, or a "
                                           "recovery code."))


def reset(clinician: Clinician, *, by: Clinician | None, ip: str | None = None) -> None:
    """An admin clears another clinician's second factor (a lost phone): app, passkeys and
    recovery codes go, their sessions end, and their next sign-in sets a factor up again.
    `by` None: from the command line (the server's operator, for a practice's only admin)."""
    if by is not None and by.id == clinician.id:
        raise SecondFactorError(clinic_gettext("You cannot reset your own second factor: another admin can."))
    with write_transaction():
        Clinician.update(totp_secret=None, totp_confirmed_at=None, totp_last_step=None).where(
            Clinician.id == clinician.id).execute()
        ClinicianPasskey.delete().where(ClinicianPasskey.clinician == clinician).execute()
        RecoveryCode.delete().where(RecoveryCode.clinician == clinician).execute()
        PendingSignIn.delete().where(PendingSignIn.clinician == clinician).execute()
        audit.record("second_factor_reset", clinician=clinician, ip=ip,
                     detail=f"by {by.name}" if by else "from the command line")
        for session in Session.select().where((Session.clinician == clinician) & Session.ended_at.is_null()):
            end_session(session, "second_factor_reset")


SECOND_FACTOR_EVENTS = ("second_factor_set_up", "second_factor_removed", "second_factor_reset",
                        "recovery_code_used", "recovery_codes_made", "second_factor_failed")
EVENT_WORDS = {
    "second_factor_set_up": clinic_N_("Second factor set up"),
    "second_factor_removed": clinic_N_("Second factor removed"),
    "second_factor_reset": clinic_N_("Second factor reset"),
    "recovery_code_used": clinic_N_("Recovery code used"),
    "recovery_codes_made": clinic_N_("New recovery codes made"),
    "second_factor_failed": clinic_N_("Wrong second-factor code"),
}


def recent_events(limit: int = 30):
    """The practice's latest second-factor changes, for the clinicians page."""
    return (AuditEvent.select(AuditEvent, Clinician).join(Clinician, on=(AuditEvent.clinician == Clinician.id))
            .where(AuditEvent.kind.in_(SECOND_FACTOR_EVENTS))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))

