"""Clients' own changes from the appointment's link, `/a/<token>`: another time or a
cancellation, within the practice's rules, done exactly as a clinician's move or cancel is.

The token is `<appointment id>.<HMAC-SHA256 of the app secret and the appointment's nonce>`
(another purpose than the join link's, so one cannot be made from the other): nothing is
stored, every email of the appointment carries the same link, and a cancellation (a new
nonce) retires it; a retired link is still recognised from the nonces kept for the join
link, so that its page can say "cancelled" rather than "not recognised".
"""
import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import audit, runtime
from .appointments import cancel_appointment, move_appointment, overlapping
from .availability import is_open_slot
from .clock import describe_when, span, to_local, utcnow
from .i18n import DEFAULT, clinic_gettext, clinic_N_, gettext as _, in_language
from .mail import external_url, queue_email
from .models import Appointment, Client, Clinician, JoinLinkNonce, OnlineChange, Practice, write_transaction
from .telehealth import appointment_named

# Where the client opened the link from (?via= on it): said in the history and to the clinician.
# Which email a client's change came from, in the clinician's words (the clinic's catalog); the
# audit trail keeps them as written here.
VIA = {
    "reminder": clinic_N_("the reminder email"),
    "appointment_confirmed": clinic_N_("the booking confirmation email"),
    "appointment_moved": clinic_N_("the email about a new time"),
    # An extension's, once it has a kind of its own.
    "appointment_updated": clinic_N_("the email about a changed appointment"),
    "change_declined": clinic_N_("the email about a declined request"),
    "portal": clinic_N_("the portal"),
}
VIA_UNKNOWN = clinic_N_("the appointment's link")
MAX_REASON = 500
RECENT = timedelta(days=14)  # how long the calendar lists a change clients made


# ---- the link -----------------------------------------------------------------------------

def _mac(appointment_id: int, nonce: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"change:{appointment_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def change_token(appointment: Appointment) -> str:
    return f"{appointment.id}.{_mac(appointment.id, appointment.nonce, runtime.settings().secret_key)}"


def change_url(appointment: Appointment, via: str) -> str:
    """The link to email (on PORTAL_BASE_URL), saying which email it came in."""
    return external_url("changes.appointment_page", token=change_token(appointment), via=via)


def changes_allowed(practice: Practice) -> bool:
    return practice.online_change_hours > 0


@dataclass
class ChangeLink:
    appointment: Appointment
    retired: bool  # derived from a nonce the appointment had before it was cancelled


def find_change_link(token: str) -> ChangeLink | None:
    """The appointment a token opens, or None (tampered, foreign, or never ours)."""
    secret = runtime.settings().secret_key
    named = appointment_named(token)
    if named is None:
        return None
    appointment, mac = named
    if hmac.compare_digest(_mac(appointment.id, appointment.nonce, secret), mac):
        return ChangeLink(appointment, retired=False)
    earlier = JoinLinkNonce.select(JoinLinkNonce.nonce).where(JoinLinkNonce.appointment == appointment)
    # Every earlier nonce compared: the time taken does not say which matched.
    matches = [hmac.compare_digest(_mac(appointment.id, row.nonce, secret), mac) for row in earlier]
    return ChangeLink(appointment, retired=True) if any(matches) else None


# ---- what the link may do now ---------------------------------------------------------------

@dataclass
class Standing:
    """What the page says. `state`: open, pending (a new time awaits the clinician), closed
    (past the cutoff), off (the practice takes no changes online), started, cancelled (by
    the practice), cancelled_by_client, archived."""

    state: str
    closes_at: datetime  # naive UTC: when online changes close for this appointment
    change: OnlineChange | None = None  # the client's cancellation or pending request
    moved_by_practice: bool = False  # the time shown is one the practice set since

    @property
    def can_change(self) -> bool:
        return self.state in ("open", "pending")


def standing(appointment: Appointment, now: datetime | None = None, practice: Practice | None = None) -> Standing:
    now = now or utcnow()
    practice = practice or Practice.current()
    closes_at = appointment.starts_at - timedelta(hours=practice.online_change_hours)
    changes = (OnlineChange.select().where(OnlineChange.appointment == appointment)
               .order_by(OnlineChange.made_at.desc(), OnlineChange.id.desc()))
    latest = changes.first()
    if appointment.status == "cancelled":
        mine = latest is not None and latest.kind == "cancelled"
        return Standing("cancelled_by_client" if mine else "cancelled", closes_at, latest if mine else None)
    if appointment.client.archived_at is not None:
        return Standing("archived", closes_at)
    done = changes.where(OnlineChange.status.in_(("done", "approved"))).first()
    moved_by_practice = appointment.sequence > (done.sequence if done else 0)
    if now >= appointment.starts_at:
        state = "started"
    elif not changes_allowed(practice):
        state = "off"
    elif now >= closes_at:
        state = "closed"
    elif latest is not None and latest.kind == "request" and latest.status == "pending":
        return Standing("pending", closes_at, latest, moved_by_practice)
    else:
        state = "open"
    return Standing(state, closes_at, None, moved_by_practice)


class ChangeRefused(Exception):
    """The change cannot be made: `reason` is a Standing state, "moved" (the practice moved
    the appointment since the page was shown), or "taken" (the time is no longer open)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _fresh(appointment: Appointment, sequence: int | None, now: datetime, practice: Practice) -> Appointment:
    """Inside the write transaction, under the clinician's lock: the appointment as stored,
    still one the client may change, and still the one the page showed."""
    appointment.clinician.lock()
    appointment = Appointment.get_by_id(appointment.id)
    current = standing(appointment, now, practice)
    if not current.can_change:
        raise ChangeRefused(current.state)
    if sequence is not None and sequence != appointment.sequence:
        raise ChangeRefused("moved")
    return appointment


def reschedule(appointment: Appointment, starts_at: datetime, *, sequence: int | None, via: str = "",
               now: datetime | None = None) -> OnlineChange:
    """Move to `starts_at` (one of open_slots()), or, where the practice approves new times
    first, ask for it. Of two clients taking the same time at once, the second finds it taken
    (ChangeRefused("taken")): both take the clinician's lock, and the second looks after the
    first has committed."""
    now = now or utcnow()
    practice = Practice.current()
    via = via if via in VIA else ""
    with write_transaction():
        appointment = _fresh(appointment, sequence, now, practice)
        if not is_open_slot(appointment, starts_at, now, practice):
            raise ChangeRefused("taken")
        ends_at = starts_at + (appointment.ends_at - appointment.starts_at)
        old_starts_at, old_ends_at = appointment.starts_at, appointment.ends_at
        if practice.online_change_approval:
            OnlineChange.update(status="withdrawn", decided_at=now).where(
                (OnlineChange.appointment == appointment) & (OnlineChange.kind == "request")
                & (OnlineChange.status == "pending")).execute()
            change = OnlineChange.create(
                appointment=appointment, client=appointment.client, kind="request", status="pending",
                old_starts_at=old_starts_at, old_ends_at=old_ends_at, new_starts_at=starts_at, new_ends_at=ends_at,
                via=via, sequence=appointment.sequence, made_at=now)
        else:
            move_appointment(appointment, starts_at=starts_at, ends_at=ends_at, now=now)
            change = OnlineChange.create(
                appointment=appointment, client=appointment.client, kind="moved", status="done",
                old_starts_at=old_starts_at, old_ends_at=old_ends_at, new_starts_at=starts_at, new_ends_at=ends_at,
                via=via, sequence=appointment.sequence, made_at=now)
        _record(change, practice)
        _tell_clinician(change, practice)
    return change


def cancel(appointment: Appointment, *, reason: str = "", sequence: int | None, via: str = "",
           now: datetime | None = None) -> OnlineChange:
    """Cancel as a clinician's cancel does (the join link dies, reminders stop)."""
    now = now or utcnow()
    practice = Practice.current()
    via = via if via in VIA else ""
    reason = " ".join((reason or "").split())[:MAX_REASON]
    with write_transaction():
        appointment = _fresh(appointment, sequence, now, practice)
        OnlineChange.update(status="withdrawn", decided_at=now).where(
            (OnlineChange.appointment == appointment) & (OnlineChange.kind == "request")
            & (OnlineChange.status == "pending")).execute()
        old_starts_at, old_ends_at = appointment.starts_at, appointment.ends_at
        cancel_appointment(appointment, now=now)
        change = OnlineChange.create(
            appointment=appointment, client=appointment.client, kind="cancelled", status="done",
            old_starts_at=old_starts_at, old_ends_at=old_ends_at, reason=reason or None, via=via,
            sequence=appointment.sequence, made_at=now)
        _record(change, practice)
        _tell_clinician(change, practice)
    return change


# ---- the clinician's answer to a request --------------------------------------------------------

def pending_request(change_id: int, viewer) -> OnlineChange | None:
    """A request awaiting an answer that `viewer` may answer (their own client's; an admin, any)."""
    query = OnlineChange.pending().join(Appointment).where(OnlineChange.id == change_id)
    if not viewer.is_admin:
        query = query.where(Appointment.clinician == viewer)
    return query.first()


def approve(change: OnlineChange, *, by, now: datetime | None = None) -> OnlineChange:
    """Move the appointment to the time asked for, as the clinician's own move (the client
    hears of it in the usual "moved" email). Refused (ChangeRefused("taken")) when the time
    has been booked meanwhile."""
    now = now or utcnow()
    with write_transaction():
        change.appointment.clinician.lock()
        change = OnlineChange.get_by_id(change.id)
        appointment = Appointment.get_by_id(change.appointment_id)
        if change.status != "pending":
            raise ChangeRefused("answered")
        if appointment.status == "cancelled" or appointment.sequence != change.sequence:
            raise ChangeRefused("moved")
        if overlapping(appointment.clinician, change.new_starts_at, change.new_ends_at, exclude=appointment):
            raise ChangeRefused("taken")
        move_appointment(appointment, starts_at=change.new_starts_at, ends_at=change.new_ends_at, by=by, now=now)
        change.status, change.decided_at, change.decided_by = "approved", now, by
        change.sequence = appointment.sequence
        change.save()
        audit.record("online_change_approved", client=appointment.client, clinician=by, at=now,
                     detail=f"to {change.new_starts_at:%Y-%m-%d %H:%M}Z")
    return change


def decline(change: OnlineChange, *, by, now: datetime | None = None) -> OnlineChange:
    """The appointment stays where it is; the client is emailed so."""
    now = now or utcnow()
    practice = Practice.current()
    with write_transaction():
        change = OnlineChange.get_by_id(change.id)
        if change.status != "pending":
            raise ChangeRefused("answered")
        change.status, change.decided_at, change.decided_by = "declined", now, by
        change.save()
        appointment = change.appointment
        audit.record("online_change_declined", client=appointment.client, clinician=by, at=now,
                     detail=f"{change.new_starts_at:%Y-%m-%d %H:%M}Z")
        _tell_client_declined(change, practice, now)
    return change


def on_appointment_change(appointment: Appointment, change: str, now: datetime) -> None:
    """A request for a new time no longer applies once the appointment is moved or cancelled
    (by anyone): it lapses, and stops holding the time it asked for. An approval moves the
    appointment too, and marks its own request approved after this."""
    if change in ("moved", "extended", "cancelled"):
        OnlineChange.update(status="lapsed", decided_at=now).where(
            (OnlineChange.appointment == appointment) & (OnlineChange.kind == "request")
            & (OnlineChange.status == "pending")).execute()


# ---- words and mail ---------------------------------------------------------------------------

def _record(change: OnlineChange, practice: Practice) -> None:
    """The client's history: what, and from which email."""
    zone = practice.timezone
    what = {"moved": f"to {span(change.new_starts_at, change.new_ends_at, zone)}" if change.new_starts_at else "",
            "request": f"asked for {span(change.new_starts_at, change.new_ends_at, zone)}" if change.new_starts_at
            else "",
            "cancelled": f"{span(change.old_starts_at, change.old_ends_at, zone)}"}[change.kind]
    where = VIA.get(change.via, VIA_UNKNOWN)
    audit.record(f"online_{change.kind}", client=change.client, at=change.made_at,
                 detail=f"{what}, by the client from {where}")


def describe(change: OnlineChange, zone: str) -> str:
    """"Moved by the client on Tue 1 Dec, 3:02 PM" and the like, for the calendar."""
    at = to_local(change.made_at, zone).strftime("%a %-d %b, %-I:%M %p")
    if change.kind == "moved":
        return clinic_gettext("Moved by the client on %(at)s", at=at)
    if change.kind == "cancelled":
        return (clinic_gettext("Cancelled by the client: %(reason)s", reason=change.reason) if change.reason
                else clinic_gettext("Cancelled by the client on %(at)s", at=at))
    words = {"pending": clinic_N_("New time asked for by the client on %(at)s"),
             "approved": clinic_N_("New time approved on %(at)s"), "declined": clinic_N_("New time declined on %(at)s"),
             "withdrawn": clinic_N_("Request withdrawn by the client on %(at)s"),
             "lapsed": clinic_N_("Request lapsed (the appointment changed) on %(at)s")}
    other = clinic_N_("Request on %(at)s")
    return clinic_gettext(words.get(change.status, other), at=at)


SUBJECTS = {
    "moved": clinic_N_("%(client)s moved their appointment to %(when)s"),
    "request": clinic_N_("%(client)s asks to move their appointment to %(when)s"),
    "cancelled": clinic_N_("%(client)s cancelled their appointment on %(when)s"),
}


def _tell_clinician(change: OnlineChange, practice: Practice) -> None:
    # The clinician side is English, whatever the language of the client's page that made the change.
    with in_language(DEFAULT):
        _queue_clinician_notice(change, practice)


def _queue_clinician_notice(change: OnlineChange, practice: Practice) -> None:
    appointment, zone = change.appointment, practice.timezone
    clinician = Clinician.get_by_id(appointment.clinician_id)
    client = Client.get_by_id(change.client_id)
    when = describe_when(change.new_starts_at if change.kind != "cancelled" else change.old_starts_at, zone)
    queue_email(
        to=clinician.email, subject=clinic_gettext(SUBJECTS[change.kind], client=client.name, when=when),
        template="online_change", kind=f"online_{change.kind}", now=change.made_at, practice=practice,
        clinician_name=clinician.name, client_name=client.name, change_kind=change.kind,
        was=span(change.old_starts_at, change.old_ends_at, zone),
        now_at=span(change.new_starts_at, change.new_ends_at, zone) if change.new_starts_at else "",
        reason=change.reason or "", via=clinic_gettext(VIA.get(change.via, VIA_UNKNOWN)),
        calendar_url=external_url("clinic.calendar_day"))


def _tell_client_declined(change: OnlineChange, practice: Practice, now: datetime) -> None:
    """In the client's language, though a clinician's page declined it."""
    with in_language(change.appointment.client.language):
        _queue_declined(change, practice, now)


def _queue_declined(change: OnlineChange, practice: Practice, now: datetime) -> None:
    appointment = change.appointment
    client = appointment.client
    zone = client.zone(practice)
    queue_email(
        to=client.email, client=client, now=now, practice=practice, template="change_declined", kind="change_declined",
        subject=_("Not moved: your appointment stays on %(when)s", when=describe_when(appointment.starts_at, zone)),
        client_name=client.name, asked=span(change.new_starts_at, change.new_ends_at, zone),
        stays=span(appointment.starts_at, appointment.ends_at, zone), clinician_name=appointment.clinician.name,
        change_url=change_url(appointment, "change_declined") if changes_allowed(practice) else None)


@dataclass
class PanelRow:
    id: int
    client_name: str
    what: str  # "Moved by the client on Tue 1 Dec, 3:02 PM"
    was: str
    now_at: str
    pending: bool


def calendar_panel(viewer, now: datetime | None = None, *, of=None) -> dict:
    """What the calendar lists of clients' online changes: requests to answer, and the
    changes of the last two weeks (the viewer's own clients' appointments; an admin, all, or
    with `of` those of the clinician whose calendar they are looking at)."""
    now = now or utcnow()
    zone = Practice.current().timezone
    query = (OnlineChange.select(OnlineChange, Appointment, Client).join(Appointment)
             .switch(OnlineChange).join(Client))
    if not viewer.is_admin or of is not None:
        query = query.where(Appointment.clinician == (viewer if not viewer.is_admin else of))

    def row(change):
        return PanelRow(change.id, change.client.name, describe(change, zone),
                        span(change.old_starts_at, change.old_ends_at, zone),
                        span(change.new_starts_at, change.new_ends_at, zone) if change.new_starts_at else "",
                        change.kind == "request" and change.status == "pending")

    pending = [row(c) for c in query.where((OnlineChange.kind == "request") & (OnlineChange.status == "pending"))
               .order_by(OnlineChange.made_at)]
    recent = [row(c) for c in query.where(((OnlineChange.kind != "request") | (OnlineChange.status != "pending"))
                                          & (OnlineChange.made_at > now - RECENT))
              .order_by(OnlineChange.made_at.desc()).limit(20)]
    return {"pending": pending, "recent": recent}
