"""A clinician's open times: their weekly hours (on the practice's wall clock), less dates
off, other appointments and the buffer around them, the past and the practice's cutoff.

Hours are wall-clock ranges, so each day's range is turned into UTC on its own day: a
9:00 start is 9:00 on both sides of a daylight-saving change (14:00 UTC one week, 13:00 the
next in New York), and a day of 23 or 25 hours has its ranges where the clock says.
"""
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from . import audit
from .appointments import AppointmentError, local_to_utc
from .clock import local_date
from .i18n import clinic_gettext
from .models import Appointment, DayOff, OnlineChange, Practice, WorkingHours, write_transaction

HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])\Z")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Slot:
    starts_at: datetime  # naive UTC
    ends_at: datetime


class HoursError(ValueError):
    """Working hours that cannot be saved; `field` names the form field to blame."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def parse_ranges(text: str, field: str) -> list[tuple[str, str]]:
    """'09:00-12:00, 13:00-17:00' as [("09:00", "12:00"), ("13:00", "17:00")]; '' is none."""
    ranges = []
    for part in (p.strip() for p in (text or "").replace(";", ",").split(",")):
        if not part:
            continue
        start, sep, end = (x.strip() for x in part.replace("–", "-").partition("-"))
        if not sep or not HHMM.match(start) or not HHMM.match(end):
            raise HoursError(clinic_gettext("Write each range as two 24-hour times, like 09:00-12:00 (not "
                                            "“%(part)s”).", part=part[:20]), field)
        if end <= start:
            raise HoursError(clinic_gettext("In %(start)s-%(end)s, the end must be after the start.", start=start,
                                            end=end), field)
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        if start < end:
            raise HoursError(clinic_gettext("Two of these ranges overlap."), field)
    if len(ranges) > 6:
        raise HoursError(clinic_gettext("At most six ranges a day."), field)
    return ranges


def parse_days_off(text: str, field: str = "days_off") -> list[date]:
    """One date (YYYY-MM-DD) a line or comma-separated."""
    days = set()
    for part in (p.strip() for p in re.split(r"[\s,]+", text or "")):
        if not part:
            continue
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", part):
                raise ValueError
            days.add(date.fromisoformat(part))
        except ValueError:
            raise HoursError(clinic_gettext("Write dates as YYYY-MM-DD, like 2026-12-24 (not “%(part)s”).",
                                            part=part[:20]), field) from None
    if len(days) > 366:
        raise HoursError(clinic_gettext("At most a year of dates off."), field)
    return sorted(days)


def save_hours(clinician, hours: dict[int, list[tuple[str, str]]], days_off: list[date], *, by=None) -> None:
    """Replace the clinician's weekly hours and dates off (audited as one change)."""
    with write_transaction():
        WorkingHours.delete().where(WorkingHours.clinician == clinician).execute()
        DayOff.delete().where(DayOff.clinician == clinician).execute()
        rows = [dict(clinician=clinician, weekday=day, starts=s, ends=e) for day, ranges in hours.items()
                for s, e in ranges]
        if rows:
            WorkingHours.insert_many(rows).execute()
        if days_off:
            DayOff.insert_many([dict(clinician=clinician, day=day) for day in days_off]).execute()
        audit.record("working_hours_changed", clinician=by,
                     detail=f"{clinician.name}: {len(rows)} ranges a week, {len(days_off)} dates off")


def weekly_hours(clinician) -> dict[int, list[tuple[str, str]]]:
    hours: dict[int, list[tuple[str, str]]] = {day: [] for day in range(7)}
    for row in WorkingHours.of(clinician):
        hours[row.weekday].append((row.starts, row.ends))
    return hours


def clock_hours(clinician) -> dict[int, list[tuple[time, time]]]:
    """weekly_hours as times of day, as next_free_start takes them."""
    return {day: [(_clock(starts), _clock(ends)) for starts, ends in ranges]
            for day, ranges in weekly_hours(clinician).items()}


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _to_utc(day: date, at: str, zone: str) -> datetime:
    """A range's edge on `day`: a time the clocks skip is taken as the first one after the gap."""
    moment = _clock(at)
    try:
        return local_to_utc(day, moment, zone)
    except AppointmentError:
        later = (datetime.combine(day, moment) + timedelta(hours=1)).time()
        return local_to_utc(day, later, zone)


def working_ranges(clinician, start: datetime, end: datetime, practice: Practice) -> list[tuple[datetime, datetime]]:
    """The clinician's working time between `start` and `end` (naive UTC), as UTC ranges."""
    zone = practice.timezone
    hours = weekly_hours(clinician)
    first, last = local_date(start, zone), local_date(end, zone)
    off = {row.day for row in DayOff.select().where(
        (DayOff.clinician == clinician) & (DayOff.day >= first) & (DayOff.day <= last))}
    ranges = []
    day = first
    while day <= last:
        if day not in off:
            for starts, ends in hours[day.weekday()]:
                ranges.append((_to_utc(day, starts, zone), _to_utc(day, ends, zone)))
        day += timedelta(days=1)
    return ranges


def busy_times(clinician, start: datetime, end: datetime, buffer: timedelta, exclude: Appointment | None = None):
    """The clinician's scheduled appointments and the times others have asked for (pending
    requests hold their time), each widened by the buffer on both sides."""
    reach = (Appointment.starts_at < end + buffer) & (Appointment.ends_at > start - buffer)
    booked = Appointment.select(Appointment.starts_at, Appointment.ends_at).where(
        (Appointment.clinician == clinician) & (Appointment.status == "scheduled") & reach)
    if exclude is not None:
        booked = booked.where(Appointment.id != exclude.id)
    asked = (OnlineChange.pending().join(Appointment).where(
        (Appointment.clinician == clinician) & (OnlineChange.new_starts_at < end + buffer)
        & (OnlineChange.new_ends_at > start - buffer)))
    if exclude is not None:
        asked = asked.where(OnlineChange.appointment != exclude.id)
    times = [(a.starts_at, a.ends_at) for a in booked] + [(r.new_starts_at, r.new_ends_at) for r in asked]
    return sorted((s - buffer, e + buffer) for s, e in times)


def earliest_start(now: datetime, practice: Practice) -> datetime:
    """Nothing online closer than the cutoff (and never in the past)."""
    return now + timedelta(hours=practice.online_change_hours)


def latest_start(now: datetime, practice: Practice) -> datetime:
    return now + timedelta(weeks=practice.online_change_weeks)


def _on_five(moment: datetime) -> datetime:
    late = (moment.minute % 5) * 60 + moment.second
    return moment + timedelta(seconds=(300 - late) % 300) - timedelta(microseconds=moment.microsecond)


def open_slots(appointment: Appointment, start: datetime, end: datetime, now: datetime,
               practice: Practice | None = None) -> list[Slot]:
    """The times `appointment` could move to that start between `start` and `end` (naive
    UTC): as long as it is now, within the clinician's hours, clear of their other
    appointments by the buffer, after the cutoff, within the horizon, not where it is now.
    In each range, times are packed from its start: one after another (and the buffer), and
    after an appointment in the way, from its end (and the buffer)."""
    practice = practice or Practice.current()
    length = appointment.ends_at - appointment.starts_at
    buffer = timedelta(minutes=practice.buffer_minutes)
    start, end = max(start, earliest_start(now, practice), now), min(end, latest_start(now, practice))
    if start >= end or practice.online_change_hours <= 0:
        return []
    clinician = appointment.clinician
    busy = busy_times(clinician, start - length, end + length, buffer, exclude=appointment)
    slots = []
    for range_start, range_end in working_ranges(clinician, start - length, end, practice):
        moment = range_start
        while moment + length <= range_end:
            clash = next(((s, e) for s, e in busy if s < moment + length and e > moment), None)
            if clash is not None:
                # After an appointment in the way: from its end (and the buffer), on a 5-minute mark.
                moment = _on_five(max(moment + timedelta(minutes=1), clash[1]))
                continue
            if start <= moment < end and moment != appointment.starts_at:
                slots.append(Slot(moment, moment + length))
            moment += length + buffer
    return sorted(set(slots), key=lambda slot: slot.starts_at)


def is_open_slot(appointment: Appointment, starts_at: datetime, now: datetime, practice: Practice | None = None) -> bool:
    """Is `starts_at` one of the open times open_slots() offers now?"""
    near = [s for s in open_slots(appointment, starts_at - timedelta(hours=13), starts_at + timedelta(minutes=1), now,
                                  practice) if s.starts_at == starts_at]
    return bool(near)
