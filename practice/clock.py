"""Time helpers: every stored timestamp is naive UTC; these say it on a wall clock in a zone,
in the language in force (practice/i18n.py). English keeps the formats it has always had;
other languages are written by Babel from the patterns below."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from .i18n import current_language

# Babel patterns per language (CLDR's own words for days and months): what each English
# strftime format below says, as a reader of that language writes it.
PATTERNS = {
    "es": {
        "moment": "EEE, d MMM y, H:mm",  # mar, 1 dic 2026, 15:00
        "time": "H:mm",
        "time_seconds": "H:mm:ss",
        "weekday": "EEE",
        "day_and_time": "EEE d MMM, H:mm",
        "when": "EEEE, d 'de' MMMM, H:mm",  # martes, 1 de diciembre, 15:00
        "long_date": "full",
        "plain_date": "long",
        "short_day": "EEE d MMM",  # mar 1 dic
        "day_month": "d 'de' MMMM",  # 1 de diciembre
    },
}


def _babel(moment, key: str) -> str | None:
    """`moment` in the language in force by Babel, or None for English (strftime's formats)."""
    language = current_language()
    patterns = PATTERNS.get(language)
    if patterns is None:
        return None
    if isinstance(moment, datetime):
        return format_datetime(moment, patterns[key], locale=language)
    return format_date(moment, patterns[key], locale=language)


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
    return (_babel(local, "moment") or local.strftime("%a %-d %b %Y, %-I:%M %p")) + " " + local.tzname()


def clock_time(moment: datetime, zone: str, *, seconds: bool = False) -> str:
    """'9:00 AM' (or '9:00:05 AM') on the wall clock in `zone`."""
    local = to_local(moment, zone)
    if seconds:
        return _babel(local, "time_seconds") or local.strftime("%-I:%M:%S %p")
    return _babel(local, "time") or local.strftime("%-I:%M %p")


def time_span(start: datetime, end: datetime, zone: str) -> str:
    """'9:00 AM – 9:50 AM', naming the day of the end when it falls on another one."""
    local_start, local_end = to_local(start, zone), to_local(end, zone)
    day = "" if local_end.date() == local_start.date() else (_babel(local_end, "weekday") or local_end.strftime("%a")) + " "
    return f"{clock_time(start, zone)} – {day}{clock_time(end, zone)}"


def time_range(start: datetime, end: datetime, zone: str) -> str:
    """'3:00 PM – 3:50 PM GMT': both times on the wall clock, and the zone."""
    return f"{clock_time(start, zone)} – {clock_time(end, zone)} {to_local(start, zone).tzname()}"


def span(start: datetime, end: datetime, zone: str) -> str:
    """'Mon 2 Mar 2026, 10:00 AM – 10:50 AM GMT': the date, both times and the zone."""
    local_start, local_end = to_local(start, zone), to_local(end, zone)
    same_day = local_end.date() == local_start.date()
    begun = _babel(local_start, "moment")
    if begun is not None:
        ended = _babel(local_end, "time" if same_day else "day_and_time")
        return f"{begun} – {ended} {local_end.tzname()}"
    end_format = "%-I:%M %p" if same_day else "%a %-d %b, %-I:%M %p"
    return f"{local_start:%a %-d %b %Y, %-I:%M %p} – {local_end.strftime(end_format)} {local_end.tzname()}"


def long_date(day: date) -> str:
    """'Tuesday 1 December 2026'; 'martes, 1 de diciembre de 2026'."""
    return _babel(day, "long_date") or day.strftime("%A %-d %B %Y")


def plain_date(day: date) -> str:
    """'1 December 2026'; '1 de diciembre de 2026'."""
    return _babel(day, "plain_date") or day.strftime("%-d %B %Y")


def describe_when(moment: datetime, zone: str) -> str:
    """'Tue 1 Dec at 3:00 PM', 'martes, 1 de diciembre, 15:00': the date and time, nothing else
    (subjects show on lock screens)."""
    local = to_local(moment, zone)
    return _babel(local, "when") or local.strftime("%a %-d %b at %-I:%M %p")


def short_day(moment: datetime, zone: str) -> str:
    """'Tue 1 Dec', 'mar 1 dic': the day of `moment` in `zone`."""
    local = to_local(moment, zone)
    return _babel(local, "short_day") or local.strftime("%a %-d %b")


def day_month(day: date) -> str:
    """'1 December', '1 de diciembre'."""
    return _babel(day, "day_month") or day.strftime("%-d %B")
