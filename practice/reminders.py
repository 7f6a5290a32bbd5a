"""Appointment reminders whose links still work when the client needs them.

Each appointment gets a Reminder row per practice offset, due at start - offset, moved out
of the client's quiet hours. The reminder tick claims due rows and queues their email
through the outbox; booking, moving, cancelling and changing the offsets keep the rows right.
"""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from peewee import Case

from . import runtime
from .clock import clock_time, describe_when, long_date, short_day, time_range, to_local, utcnow
from .feeds import calendar_bytes, event_lines
from .i18n import gettext as _, in_language
from .links import issue_link
from .mail import compose_email, external_url, queue_emails
from .models import Appointment, Client, Clinician, Email, Practice, Reminder, is_sqlite, write_transaction
from .online_changes import change_url, changes_allowed
from .telehealth import join_url

BEFORE_QUIET_HOURS = timedelta(minutes=10)  # "just before" the client's quiet hours begin
BATCH = 200  # reminders claimed per tick
CHUNK = 50  # reminders queued per write transaction


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def out_of_quiet_hours(moment: datetime, zone: str, practice: Practice) -> datetime:
    """`moment` (UTC) if it falls outside the quiet hours in `zone`, else just before the
    quiet period that contains it began (the evening before, for an early-morning time)."""
    start, end = _hhmm(practice.quiet_hours_start), _hhmm(practice.quiet_hours_end)
    if start == end:
        return moment
    local = to_local(moment, zone)
    clock = local.time().replace(tzinfo=None)
    quiet = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not quiet:
        return moment
    day = local.date() if clock >= start else local.date() - timedelta(days=1)
    began = datetime.combine(day, start, tzinfo=ZoneInfo(zone))
    return (began - BEFORE_QUIET_HOURS).astimezone(timezone.utc).replace(tzinfo=None)


def due_time(appointment: Appointment, offset_hours: int, practice: Practice) -> datetime:
    return out_of_quiet_hours(appointment.starts_at - timedelta(hours=offset_hours),
                              appointment.client.zone(practice), practice)


def plan_reminders(appointment: Appointment, now: datetime, practice: Practice | None = None) -> int:
    """Create the pending reminders still ahead; returns how many offsets had already passed.
    Offsets whose reminder already went out (queued) are not planned again."""
    practice = practice or Practice.current()
    done = {r.offset_hours for r in Reminder.select(Reminder.offset_hours).where(
        (Reminder.appointment == appointment) & (Reminder.status == "queued"))}
    passed = 0
    for offset in practice.reminder_offset_hours:
        if offset in done:
            continue
        due = due_time(appointment, offset, practice)
        if due <= now:
            passed += 1
            continue
        Reminder.create(appointment=appointment, offset_hours=offset, due_at=due, created_at=now)
    return passed


def _drop_pending(appointment: Appointment, status: str, now: datetime) -> None:
    Reminder.update(status=status, done_at=now).where(
        (Reminder.appointment == appointment) & (Reminder.status == "pending")).execute()


def on_appointment_change(appointment: Appointment, change: str, now: datetime) -> None:
    """Booked, moved or cancelled: the right reminders, and one notice mail where due."""
    practice = Practice.current()
    if change == "created":
        if plan_reminders(appointment, now, practice) and appointment.starts_at > now:
            queue_appointment_email(appointment, "appointment_confirmed", now=now)
    elif change == "moved":
        _drop_pending(appointment, "replaced", now)
        plan_reminders(appointment, now, practice)
        if appointment.ends_at > now:
            queue_appointment_email(appointment, "appointment_moved", now=now)
    elif change == "extended" and appointment.starts_at > now:
        # Before the day, the client's calendar should show the new end; an extension
        # during the session ("+15 min") is no news to the client sitting in it. Same start:
        # an update that names the new end, not a "move" to the time it already had.
        queue_appointment_email(appointment, "appointment_updated", now=now)
    elif change == "new_join_link":
        # Unsent reminders are composed when due, so they carry the new link by themselves.
        queue_appointment_email(appointment, "join_link_replaced", now=now)
    elif change == "cancelled":
        _drop_pending(appointment, "cancelled", now)
        if appointment.starts_at > now:
            queue_appointment_email(appointment, "appointment_cancelled", now=now)


def on_settings_change(changed: list[str], now: datetime | None = None) -> int:
    """New offsets, quiet hours or practice zone: every future appointment's unsent reminders follow."""
    return _replan(Appointment.select(), now or utcnow())


def on_client_zone_change(client: Client, now: datetime | None = None) -> int:
    """Quiet hours are the client's own: their unsent reminders follow their new time zone."""
    return _replan(Appointment.select().where(Appointment.client == client), now or utcnow())


def _replan(appointments, now: datetime) -> int:
    practice = Practice.current()
    count = 0
    future = appointments.where((Appointment.status == "scheduled") & (Appointment.starts_at > now))
    for appointment in future.iterator():
        with write_transaction():
            _drop_pending(appointment, "replaced", now)
            plan_reminders(appointment, now, practice)
        count += 1
    return count


def claim_due_reminders(now: datetime, batch: int = BATCH) -> list[int]:
    """Reserve up to `batch` due reminders for this tick until now + the lease: other ticks
    skip them, so two workers split what is due, and take them once the lease is over if
    this tick died before queueing them. Atomic: SKIP LOCKED on PostgreSQL, the write lock
    on SQLite."""
    with write_transaction():
        query = Reminder.due(now).columns(Reminder.id).limit(batch)
        if not is_sqlite():
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        ids = [row_id for (row_id,) in query.tuples()]
        if ids:
            Reminder.update(claimed_until=now + runtime.settings().lease).where(Reminder.id.in_(ids)).execute()
    return ids


def send_due_reminders(now: datetime | None = None, *, batch: int = BATCH) -> int:
    """The reminder tick: queue the mail of every due reminder, each exactly once. The
    claim spreads the work; the pending -> queued UPDATE, under the row's lock, decides.
    A reminder whose appointment has begun is missed."""
    now = now or utcnow()
    return queue_claimed_reminders(claim_due_reminders(now, batch), now)


def queue_claimed_reminders(claimed: list[int], now: datetime) -> int:
    """Queue the mail of the claimed reminders still pending; returns how many were queued."""
    practice = Practice.current() if claimed else None
    queued = 0
    # A few dozen per transaction: one commit for many rows, yet short write locks.
    for start in range(0, len(claimed), CHUNK):
        with write_transaction():
            queued += _queue_reminders(claimed[start:start + CHUNK], now, practice)
    return queued


def _queue_reminders(ids: list[int], now: datetime, practice: Practice) -> int:
    """Inside a write transaction: queue the mail of those of `ids` still pending."""
    query = (Reminder.select(Reminder, Appointment, Client, Clinician)
             .join(Appointment).join(Client).switch(Appointment).join(Clinician)
             .where(Reminder.id.in_(ids) & (Reminder.status == "pending")).order_by(Reminder.id))
    if not is_sqlite():
        query = query.for_update(of=Reminder)  # a tick whose lease ran out waits, then finds them queued
    outcomes = {"queued": [], "cancelled": [], "missed": []}
    for reminder in query:
        appointment = reminder.appointment
        # An archived client has left the portal: no reminder, link or join link reaches them.
        status = ("cancelled" if appointment.status == "cancelled" or appointment.client.archived_at
                  else "missed" if now >= appointment.starts_at else "queued")
        outcomes[status].append(reminder)
    for status in ("cancelled", "missed"):
        if outcomes[status]:
            Reminder.update(status=status, done_at=now, claimed_until=None).where(
                Reminder.id.in_([r.id for r in outcomes[status]])).execute()
    to_queue = outcomes["queued"]
    if not to_queue:
        return 0
    email_ids = queue_emails([compose_appointment_email(r.appointment, "reminder", now=now,
                                                        practice=practice) for r in to_queue])
    Reminder.update(status="queued", done_at=now, claimed_until=None,
                    email=Case(Reminder.id, [(r.id, email_id) for r, email_id in zip(to_queue, email_ids)])).where(
        Reminder.id.in_([r.id for r in to_queue])).execute()
    return len(to_queue)


# ---- composing ----------------------------------------------------------------------------

def subject(kind: str, appointment: Appointment, zone: str) -> str:
    """A reminder's or notice's subject, in the language in force."""
    when = describe_when(appointment.starts_at, zone)
    if kind == "appointment_confirmed":
        return _("Confirmed: your appointment on %(when)s", when=when)
    if kind == "appointment_moved":
        return _("Moved: your appointment is now on %(when)s", when=when)
    if kind == "appointment_updated":
        return _("Updated: your appointment on %(day)s now ends at %(end)s",
                 day=short_day(appointment.starts_at, zone), end=clock_time(appointment.ends_at, zone))
    if kind == "appointment_cancelled":
        return _("Cancelled: your appointment on %(when)s", when=when)
    if kind == "join_link_replaced":
        return _("New video link: your appointment on %(when)s", when=when)
    return _("Reminder: your appointment on %(when)s", when=when)


def kind_text(kind: str) -> str:
    """'Telehealth', 'In person' for the client, in their language."""
    return _("In person") if kind == "in_person" else _("Telehealth")


def queue_appointment_email(appointment: Appointment, kind: str, *, now: datetime,
                            practice: Practice | None = None) -> Email:
    """Queue a reminder or notice in the outbox."""
    return Email.create(**compose_appointment_email(appointment, kind, now=now,
                                                    practice=practice))


def compose_appointment_email(appointment: Appointment, kind: str, *, now: datetime,
                              practice: Practice | None = None) -> dict:
    """A reminder's or notice's outbox row, in the client's language. Minimum necessary: date,
    time, clinician, in person or telehealth; no diagnosis or service. Links are ones that still
    work at the appointment."""
    with in_language(appointment.client.language):
        return _compose_appointment_email(appointment, kind, now=now, practice=practice)


def _compose_appointment_email(appointment: Appointment, kind: str, *, now: datetime,
                               practice: Practice | None) -> dict:
    practice = practice or Practice.current()
    client = appointment.client
    zone = client.zone(practice)
    cancelled = kind == "appointment_cancelled"
    join = None if cancelled or appointment.kind != "telehealth" else join_url(appointment)
    link, portal_url = None, external_url("signin.sign_in_page")
    lifetime = timedelta(minutes=practice.sign_in_link_minutes)
    # A one-time link only where it outlives the appointment; else the sign-in page, which always works.
    if kind == "reminder" and now + lifetime >= appointment.ends_at:
        issued = issue_link(client, "reminder", now=now)
        link, portal_url = issued.link, external_url("signin.link_open", token=issued.token)
    local_start = to_local(appointment.starts_at, zone)
    return compose_email(
        practice=practice,
        to=client.email,
        subject=subject(kind, appointment, zone),
        template="appointment",
        kind=kind,
        client=client,
        link=link,
        now=now,
        ics=appointment_ics(appointment, practice, join),
        client_name=client.name,
        notice=kind,
        date_text=long_date(local_start.date()),
        day_text=short_day(appointment.starts_at, zone),
        end_text=clock_time(appointment.ends_at, zone),
        time_text=time_range(appointment.starts_at, appointment.ends_at, zone),
        clinician_name=appointment.clinician.name,
        kind_text=kind_text(appointment.kind),
        join_url=join,
        portal_url=portal_url,
        portal_link_is_one_time=link is not None,
        # The same link in every email of the appointment ("Need to change this?"), while the
        # practice takes changes online.
        change_url=None if cancelled or not changes_allowed(practice) else change_url(appointment, kind),
    )


def appointment_ics(appointment: Appointment, practice: Practice, join_url: str | None) -> str:
    """An iTIP invitation (RFC 5546) of the appointment as it is now: every booking, move,
    extension and reminder is a REQUEST with the same UID and the current SEQUENCE, so mail
    apps update the one entry in place; a cancellation is a CANCEL, which removes it."""
    event = event_lines(appointment, practice, host=runtime.settings().host, join_url=join_url, invitation=True)
    return calendar_bytes(practice, "CANCEL" if appointment.status == "cancelled" else "REQUEST", [event]).decode()
