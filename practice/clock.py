"""Time helpers: every stored timestamp is naive UTC, computed here in Python."""
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def to_local(moment: datetime, zone: str) -> datetime:
    return moment.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(zone))


def format_local(moment: datetime | None, zone: str) -> str:
    """'Thu 26 Nov 2026, 3:04 PM' in the given zone; '' for None."""
    if moment is None:
        return ""
    local = to_local(moment, zone)
    return local.strftime("%a %-d %b %Y, %-I:%M %p ") + local.tzname()
