"""Time helpers: every stored timestamp is naive UTC; these say it on a wall clock in a zone."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def to_local(moment: datetime, zone: str) -> datetime:
    return moment.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone))


def local_date(moment: datetime, zone: str) -> date:
    return to_local(moment, zone).date()


def format_local(moment: datetime | None, zone: str) -> str:
    """'Thu 26 Nov 2026, 3:04 PM GMT' in the given zone; '' for None."""
    if moment is None:
        return ""
    local = to_local(moment, zone)
    return local.strftime("%a %-d %b %Y, %-I:%M %p ") + local.tzname()


def clock_time(moment: datetime, zone: str) -> str:
    """'9:00 AM' on the wall clock in `zone`."""
    return to_local(moment, zone).strftime("%-I:%M %p")


def time_span(start: datetime, end: datetime, zone: str) -> str:
    """'9:00 AM – 9:50 AM', naming the day of the end when it falls on another one."""
    local_start, local_end = to_local(start, zone), to_local(end, zone)
    day = "" if local_end.date() == local_start.date() else local_end.strftime("%a ")
    return f"{clock_time(start, zone)} – {day}{clock_time(end, zone)}"


def span(start: datetime, end: datetime, zone: str) -> str:
    """'Mon 2 Mar 2026, 10:00 AM – 10:50 AM GMT': the date, both times and the zone."""
    local_start, local_end = to_local(start, zone), to_local(end, zone)
    end_format = "%-I:%M %p" if local_end.date() == local_start.date() else "%a %-d %b, %-I:%M %p"
    return f"{local_start:%a %-d %b %Y, %-I:%M %p} – {local_end.strftime(end_format)} {local_end.tzname()}"


def long_date(day: date) -> str:
    """'Tuesday 1 December 2026'."""
    return day.strftime("%A %-d %B %Y")


def plain_date(day: date) -> str:
    """'1 December 2026'."""
    return day.strftime("%-d %B %Y")


def describe_when(moment: datetime, zone: str) -> str:
    """'Tue 1 Dec at 3:00 PM': the date and time, nothing else (subjects show on lock screens)."""
    return to_local(moment, zone).strftime("%a %-d %b at %-I:%M %p")
