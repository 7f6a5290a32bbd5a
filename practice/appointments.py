"""Appointments: create, move, extend, cancel, and the telehealth join window."""
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from . import audit, runtime
from .clock import local_date, utcnow
from .models import MAX_APPOINTMENT_LENGTH, Appointment, Client, Clinician, Practice, write_transaction
from .i18n import N_, clinic_gettext, clinic_ngettext

KINDS = {"telehealth": N_("Telehealth"), "in_person": N_("In person")}
MAX_LENGTH = MAX_APPOINTMENT_LENGTH


class AppointmentError(ValueError):
    """Input an appointment cannot be saved with. `field` names the form field to blame."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class OverlapWarning(AppointmentError):
    """The clinician already has these scheduled appointments at that time; saving needs a
    second, deliberate "save anyway" (allow_overlap=True)."""

    def __init__(self, appointments: list):
        count = len(appointments)
        super().__init__(clinic_ngettext("This overlaps %(num)d other appointment of the same clinician.",
                                         "This overlaps %(num)d other appointments of the same clinician.", count))
        self.appointments = appointments


class PastStartWarning(AppointmentError):
    """The start is already past; saving needs the same deliberate "save anyway" as an
    overlap (allow_past=True). `appointments`: any overlaps found too, to warn about at once."""

    def __init__(self, starts_at: datetime, appointments: list):
        super().__init__(clinic_gettext("This starts in the past."), field="start_time")
        self.starts_at = starts_at
        self.appointments = appointments


@dataclass
class JoinWindow:
    opens_at: datetime  # entry allowed from here...
    closes_at: datetime  # ...until here (end + grace); UTC

    def is_open(self, now: datetime) -> bool:
        return self.opens_at <= now < self.closes_at


def join_window(appointment: Appointment, practice: Practice | None = None) -> JoinWindow:
    """From a little before the start until the grace period after the (current) end."""
    practice = practice or Practice.current()
    return JoinWindow(
        opens_at=appointment.starts_at - timedelta(minutes=practice.telehealth_early_minutes),
        closes_at=appointment.ends_at + timedelta(minutes=practice.telehealth_grace_minutes),
    )


def local_to_utc(day: date, at: time, zone: str, field: str = "start_time") -> datetime:
    """A wall-clock time in `zone` as naive UTC; refuses a time the clocks skip (DST gap).
    A time that happens twice (clocks go back) means its first occurrence."""
    tz = ZoneInfo(zone)
    local = datetime.combine(day, at).replace(tzinfo=tz)
    utc = local.astimezone(timezone.utc)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise AppointmentError(
            clinic_gettext("%(time)s does not exist on %(day)s in %(zone)s: the clocks go forward then.",
                           time=at.strftime("%H:%M"), day=day.strftime("%-d %b %Y"), zone=zone),
            field=field)
    return utc.replace(tzinfo=None)


def local_day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The naive-UTC instants at which `day` starts and ends in `zone` (23 or 25 hours apart
    on a daylight-saving change)."""
    tz = ZoneInfo(zone)

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time()).replace(tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)

    return midnight(day), midnight(day + timedelta(days=1))


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


def end_at_local_time(appointment: Appointment, at: time, zone: str) -> datetime:
    """A new end for `appointment` at wall-clock `at` on the (local) day it starts."""
    return local_to_utc(local_date(appointment.starts_at, zone), at, zone, field="end_time")


def visible_appointments(clinician):
    """The appointments a clinician may see and change: their own; an admin, everyone's."""
    query = (Appointment.select(Appointment, Client, Clinician)
             .join(Client).switch(Appointment).join(Clinician))
    return query if clinician.is_admin else query.where(Appointment.clinician == clinician)


def visible_appointment(clinician, appointment_id: int) -> Appointment | None:
    """One appointment the clinician may see, or None (another clinician's looks like none)."""
    return visible_appointments(clinician).where(Appointment.id == appointment_id).first()


def calendar_for(clinician, start: datetime, end: datetime, of=None):
    """What `clinician` sees in a calendar from `start` to `end` (naive UTC), by start time;
    with `of` (a clinician), only that clinician's appointments (an admin choosing whose)."""
    query = (visible_appointments(clinician)
             .where((Appointment.starts_at >= start) & (Appointment.starts_at < end))
             .order_by(Appointment.starts_at, Appointment.id))
    return query if of is None else query.where(Appointment.clinician == of)


def new_nonce() -> str:
    return secrets.token_hex(16)


def _check(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise AppointmentError(clinic_gettext("The end must be after the start."), field="end_time")
    if ends_at - starts_at > MAX_LENGTH:
        raise AppointmentError(clinic_gettext("An appointment can last at most 12 hours."), field="end_time")


# Two appointments overlap when each starts before the other ends (back to back is no clash):
# Appointment.between() says so in SQL, overlaps_among() in Python.

def overlapping(clinician, starts_at: datetime, ends_at: datetime, exclude: Appointment | None = None):
    """The clinician's other scheduled appointments that overlap this time."""
    query = Appointment.between(starts_at, ends_at).where(
        (Appointment.clinician == clinician) & (Appointment.status == "scheduled"))
    if exclude is not None:
        query = query.where(Appointment.id != exclude.id)
    return list(query)


def overlaps_among(appointments) -> dict[int, list[Appointment]]:
    """For each scheduled appointment, the same clinician's other scheduled ones it overlaps:
    one sweep by start time per clinician, not every pair."""
    clashes: dict[int, list[Appointment]] = {}
    by_clinician: dict[int, list[Appointment]] = {}
    for appointment in appointments:
        if appointment.status == "scheduled":
            clashes[appointment.id] = []
            by_clinician.setdefault(appointment.clinician_id, []).append(appointment)
    for theirs in by_clinician.values():
        theirs.sort(key=lambda a: (a.starts_at, a.id))
        running: list[Appointment] = []  # started earlier and not yet over
        for appointment in theirs:
            running = [other for other in running if other.ends_at > appointment.starts_at]
            for other in running:
                clashes[appointment.id].append(other)
                clashes[other.id].append(appointment)
            running.append(appointment)
    return clashes


def _refuse_unconfirmed(clinician, starts_at: datetime, ends_at: datetime, *, allow_overlap: bool, past: bool,
                        exclude: Appointment | None = None) -> None:
    """A start in the past and an overlap each need confirming; both are named at once."""
    others = [] if allow_overlap else overlapping(clinician, starts_at, ends_at, exclude=exclude)
    if past:
        raise PastStartWarning(starts_at, others)
    if others:
        raise OverlapWarning(others)


# Working hours where a clinician has set none of their own (practice/availability.py), for the
# new-appointment form's first free time and the hours a calendar always shows: weekdays, on
# the practice's wall clock.
WORKING_HOURS = (time(8), time(18))
SLOT = timedelta(minutes=30)


def next_free_start(clinician, zone: str, *, after: datetime, length: timedelta, weekdays_only: bool = True,
                    days: int = 14, hours: dict[int, list[tuple[time, time]]] | None = None) -> datetime | None:
    """The first half hour at or after `after` (naive UTC) in working hours when `length`
    fits before the range's end without overlapping the clinician's scheduled appointments.
    `hours` are the clinician's own (weekday: ranges); without them, weekdays 8 to 18. A day
    asked for (weekdays_only=False) that has no hours of its own takes 8 to 18."""
    busy = list(Appointment.between(after, after + timedelta(days=days + 1)).where(
        (Appointment.clinician == clinician) & (Appointment.status == "scheduled")))
    first_day = local_date(after, zone)
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for opens, closes in _ranges_on(day, hours or {}, weekdays_only):
            slot = datetime.combine(day, opens)
            while slot + length <= datetime.combine(day, closes):
                try:
                    start = local_to_utc(day, slot.time(), zone)
                except AppointmentError:  # a time the clocks skip
                    start = None
                if start is not None and start >= after and not any(
                        other.starts_at < start + length and other.ends_at > start for other in busy):
                    return start
                slot += SLOT
    return None


def _ranges_on(day: date, hours: dict, weekdays_only: bool) -> list[tuple[time, time]]:
    if hours.get(day.weekday()):
        return hours[day.weekday()]
    if weekdays_only and (day.weekday() >= 5 or any(hours.values())):  # a weekend, or their day off
        return []
    return [WORKING_HOURS]


def create_appointment(*, clinician, client, starts_at: datetime, ends_at: datetime, kind: str = "telehealth",
                       by=None, now: datetime | None = None, allow_overlap: bool = True,
                       allow_past: bool = True) -> Appointment:
    """People booking through a form pass allow_overlap=False and allow_past=False first, so
    that a clash or a start already past is warned about (OverlapWarning, PastStartWarning)
    rather than silently accepted."""
    now = now or utcnow()
    if kind not in KINDS:
        raise AppointmentError(clinic_gettext("Choose telehealth or in person."), field="kind")
    if client is None or client.archived_at is not None:
        raise AppointmentError(clinic_gettext("Choose one of your clients."), field="client")
    _check(starts_at, ends_at)
    _refuse_unconfirmed(clinician, starts_at, ends_at, allow_overlap=allow_overlap,
                        past=not allow_past and starts_at < now)
    with write_transaction():
        appointment = Appointment.create(
            clinician=clinician, client=client, starts_at=starts_at, ends_at=ends_at, kind=kind,
            nonce=new_nonce(), created_at=now, updated_at=now)
        audit.record("appointment_created", client=client, clinician=by, at=now,
                     detail=f"{kind} {starts_at:%Y-%m-%d %H:%M}Z–{ends_at:%H:%M}Z")
        after_change(appointment, "created", now)
    return appointment


def move_appointment(appointment: Appointment, *, starts_at: datetime, ends_at: datetime, kind: str | None = None,
                     clinician=None, by=None, now: datetime | None = None,
                     allow_overlap: bool = True, allow_past: bool = True) -> Appointment:
    """Change the time (and kind, clinician). Moving the end later reopens a closed join
    window at once. The client never changes: that is a cancellation and a new booking, so
    that each client hears about their own appointment and no link passes between them."""
    now = now or utcnow()
    if appointment.status == "cancelled":
        raise AppointmentError(clinic_gettext("This appointment is cancelled."))
    if kind is not None and kind not in KINDS:
        raise AppointmentError(clinic_gettext("Choose telehealth or in person."), field="kind")
    _check(starts_at, ends_at)
    clinician = clinician or appointment.clinician
    start_moved = starts_at != appointment.starts_at
    # Only a start moved into the past is news: editing one already under way is not.
    _refuse_unconfirmed(clinician, starts_at, ends_at, allow_overlap=allow_overlap,
                        past=not allow_past and start_moved and starts_at < now, exclude=appointment)
    moved = start_moved or ends_at != appointment.ends_at
    with write_transaction():
        appointment.starts_at, appointment.ends_at = starts_at, ends_at
        appointment.kind = kind or appointment.kind
        appointment.clinician = clinician
        appointment.updated_at = now
        if moved:
            appointment.sequence += 1
        appointment.save()
        audit.record("appointment_moved", client=appointment.client, clinician=by, at=now,
                     detail=f"now {starts_at:%Y-%m-%d %H:%M}Z–{ends_at:%H:%M}Z")
        if moved:
            # A new end alone (an extension) changes no reminder's due time.
            after_change(appointment, "moved" if start_moved else "extended", now)
    return appointment


def extend_appointment(appointment: Appointment, minutes: int, *, by=None, now: datetime | None = None,
                       allow_overlap: bool = True) -> Appointment:
    if minutes not in (15, 30):
        raise AppointmentError(clinic_gettext("Extend by 15 or 30 minutes."))
    return move_appointment(appointment, starts_at=appointment.starts_at,
                            ends_at=appointment.ends_at + timedelta(minutes=minutes), by=by, now=now,
                            allow_overlap=allow_overlap)


def cancel_appointment(appointment: Appointment, *, by=None, now: datetime | None = None) -> Appointment:
    """Cancelled: the telehealth link dies (new nonce) and it leaves the calendar's live view."""
    now = now or utcnow()
    if appointment.status == "cancelled":
        return appointment
    with write_transaction():
        appointment.status = "cancelled"
        appointment.cancelled_at = now
        appointment.updated_at = now
        appointment.nonce = new_nonce()
        appointment.sequence += 1
        appointment.save()
        audit.record("appointment_cancelled", client=appointment.client, clinician=by, at=now,
                     detail=f"{appointment.starts_at:%Y-%m-%d %H:%M}Z")
        after_change(appointment, "cancelled", now)
    return appointment


def after_change(appointment: Appointment, change: str, now: datetime) -> None:
    """What follows a change (reminders, the join link's nonces) is wired in practice/wiring.py."""
    for listener in runtime.current().listeners.appointment_changed:
        listener(appointment, change, now)
