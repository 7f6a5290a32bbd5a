"""What the calendar templates show: plain values in the practice's time zone."""
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from flask_babel import gettext

from practice.clock import long_date, time_span, to_local
from practice.appointments import KINDS, calendar_for, overlaps_among, join_window, local_day_bounds, week_start
from practice.models import Appointment, Practice

from ._calendar_choice import Choice
from ._calendar_grid import hour_range, timeline


def day_title(day: date) -> str:
    return long_date(day)


def clock_change(day: date, zone: str) -> str | None:
    """'Clocks go forward an hour today (GMT → BST).' on a daylight-saving change, else None."""
    tz = ZoneInfo(zone)
    start, end = (moment.replace(tzinfo=timezone.utc).astimezone(tz) for moment in local_day_bounds(day, zone))
    before, after = start.utcoffset(), end.utcoffset()
    if before == after:
        return None
    minutes = abs(after - before) // timedelta(minutes=1)
    names = {"before": start.tzname(), "after": end.tzname(), "minutes": minutes}
    if after > before:
        if minutes == 60:
            return gettext("Clocks go forward an hour today (%(before)s → %(after)s).", **names)
        return gettext("Clocks go forward %(minutes)d minutes today (%(before)s → %(after)s).", **names)
    if minutes == 60:
        return gettext("Clocks go back an hour today (%(before)s → %(after)s).", **names)
    return gettext("Clocks go back %(minutes)d minutes today (%(before)s → %(after)s).", **names)


@dataclass
class Card:
    """One appointment as the calendar shows it. `problem` and `confirm` are set only on the
    card a change was just refused for."""

    id: int
    client_name: str
    clinician_name: str | None  # shown when the calendar holds more than one clinician's appointments
    kind: str
    kind_label: str
    cancelled: bool
    starts_at: datetime  # naive UTC
    ends_at: datetime
    starts_iso: str
    time_label: str
    end_value: str  # the end as "HH:MM", for the exact-end field
    band: str | None = None  # "Link open 8:45 AM – 10:20 AM"
    band_state: str | None = None  # "open", "closed", or None (opens later): a key, the templates say it
    opens_at: datetime | None = None  # the link window, naive UTC (telehealth only)
    closes_at: datetime | None = None
    place: str = ""  # grid classes (see _calendar_grid), set when it is placed on a time grid
    band_place: str = ""
    lane: int = 0
    minutes: int = 0
    overlaps: list[str] = field(default_factory=list)
    problem: str | None = None
    problem_field: str | None = None  # "end_time" puts the problem beside the exact-end field
    done: str | None = None  # what a change from the card did, in words ("Extended: ... now ends at 4:15 PM.")
    confirm: dict | None = None  # {"label", "overlaps", "action", "values"}: an "anyway" button


def card(appointment: Appointment, practice: Practice, now: datetime, others=(), named: bool = False) -> Card:
    """`named`: the card says whose appointment it is."""
    zone = practice.timezone
    local_end = to_local(appointment.ends_at, zone)
    result = Card(
        id=appointment.id,
        client_name=appointment.client.name,
        clinician_name=appointment.clinician.name if named else None,
        kind=appointment.kind,
        kind_label=KINDS.get(appointment.kind, appointment.kind),
        cancelled=appointment.status == "cancelled",
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        starts_iso=appointment.starts_at.replace(tzinfo=timezone.utc).isoformat(),
        time_label=time_span(appointment.starts_at, appointment.ends_at, zone),
        end_value=local_end.strftime("%H:%M"),
        minutes=int((appointment.ends_at - appointment.starts_at) / timedelta(minutes=1)),
        overlaps=[describe(other, practice) for other in others],
    )
    if appointment.kind == "telehealth" and not result.cancelled:
        window = join_window(appointment, practice)
        result.band = gettext("Link open %(times)s", times=time_span(window.opens_at, window.closes_at, zone))
        result.band_state = "open" if window.is_open(now) else "closed" if now >= window.closes_at else None
        result.opens_at, result.closes_at = window.opens_at, window.closes_at
    return result


def describe(appointment: Appointment, practice: Practice) -> str:
    """'Sam Rivera, Mon 2 Mar, 9:30 AM – 10:20 AM' for an overlap warning."""
    zone = practice.timezone
    local_start = to_local(appointment.starts_at, zone)
    when = time_span(appointment.starts_at, appointment.ends_at, zone)
    return f"{appointment.client.name}, {local_start:%a %-d %b}, {when}"


def cards_between(viewer, choice: Choice, start: datetime, end: datetime, practice: Practice, now: datetime,
                  replace: Card | None = None) -> list[Card]:
    # Overlaps are looked for a little beyond the range, for appointments that cross its edges.
    # Only the chosen clinician's are read: an admin's page stays the size of one calendar.
    nearby = list(calendar_for(viewer, start - timedelta(hours=12), end + timedelta(hours=12), of=choice.owner))
    clashes = overlaps_among(nearby)
    shown = [a for a in nearby if start <= a.starts_at < end]
    cards = [card(a, practice, now, clashes.get(a.id, ()), named=choice.names_clinicians) for a in shown]
    return [replace if replace is not None and c.id == replace.id else c for c in cards]


def day_page(viewer, choice: Choice, day: date, practice: Practice, now: datetime, today: date,
             replace: Card | None = None) -> dict:
    start, end = local_day_bounds(day, practice.timezone)
    cards = cards_between(viewer, choice, start, end, practice, now, replace)
    scheduled = [c for c in cards if not c.cancelled]
    hours = hour_range([(day, scheduled)], practice.timezone, now)
    return {
        "view": "day", "day": day, "title": day_title(day), "today": today, "choice": choice,
        "previous": day - timedelta(days=1), "next": day + timedelta(days=1),
        "days": [{"date": day, "title": day.strftime("%a %-d %b"), "is_today": day == today, "cards": scheduled,
                  "timeline": timeline(day, hours, scheduled, practice.timezone, now)}],
        "scheduled": scheduled,
        "cancelled": [c for c in cards if c.cancelled],
        "clock_change": clock_change(day, practice.timezone),
    }


def week_page(viewer, choice: Choice, day: date, practice: Practice, now: datetime, today: date,
              replace: Card | None = None) -> dict:
    monday = week_start(day)
    start, _ = local_day_bounds(monday, practice.timezone)
    _, end = local_day_bounds(monday + timedelta(days=6), practice.timezone)
    cards = cards_between(viewer, choice, start, end, practice, now, replace)
    days = []
    for offset in range(7):
        current = monday + timedelta(days=offset)
        day_start, day_end = local_day_bounds(current, practice.timezone)
        days.append({
            "date": current, "title": current.strftime("%a %-d %b"), "is_today": current == today,
            "cards": [c for c in cards if day_start <= c.starts_at < day_end and not c.cancelled],
            "clock_change": clock_change(current, practice.timezone),
        })
    hours = hour_range([(d["date"], d["cards"]) for d in days], practice.timezone, now)
    for d in days:
        d["timeline"] = timeline(d["date"], hours, d["cards"], practice.timezone, now)
    sunday = monday + timedelta(days=6)
    return {
        "view": "week", "day": monday, "today": today, "days": days, "choice": choice,
        "cancelled": [c for c in cards if c.cancelled],
        "title": f"{monday:%-d %b} – {sunday:%-d %b %Y}",
        "previous": monday - timedelta(days=7), "next": monday + timedelta(days=7),
    }
