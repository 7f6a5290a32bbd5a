"""Time zones a person can choose from: common ones first, then every real IANA zone by region,
each named in words ("Eastern Time — New York"), without the database's aliases and oddities
(Factory, localtime, Etc/GMT+5, US/Eastern, EST5EDT)."""
import functools
from zoneinfo import available_timezones

from babel.core import get_global
from babel.dates import get_timezone_location, get_timezone_name

from .i18n import clinic_gettext, clinic_N_

# The regions of the IANA database's real zones (its "backward" aliases live outside them).
REGIONS = ("America", "Europe", "Africa", "Asia", "Australia", "Pacific", "Atlantic", "Indian", "Antarctica", "Arctic")

COMMON_GROUP = clinic_N_("Common time zones")
# What a small practice most likely uses: shown first, in this order.
COMMON = (
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    "America/Anchorage", "Pacific/Honolulu", "America/Halifax", "America/Toronto", "America/Vancouver",
    "America/Mexico_City", "America/Sao_Paulo", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Madrid",
    "Europe/Paris", "Europe/Berlin", "Europe/Amsterdam", "Europe/Stockholm", "Europe/Athens", "Africa/Johannesburg",
    "Asia/Kolkata", "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney", "Australia/Perth", "Pacific/Auckland", "UTC",
)


def is_real_zone(name: str) -> bool:
    """A zone of one of the regions (or UTC), not an alias (Asia/Calcutta, America/Atka: CLDR's
    list of them), a POSIX-style rule or Factory."""
    return name == "UTC" or (name.split("/", 1)[0] in REGIONS and name not in get_global("zone_aliases"))


@functools.cache
def _names(name: str) -> tuple[str, str]:
    """(generic name, city) in words: ("Eastern Time", "New York"); ("", city) where babel has none."""
    city = name.rsplit("/", 1)[-1].replace("_", " ")
    try:
        generic = get_timezone_name(name, "long", zone_variant="generic", locale="en")
        city = get_timezone_location(name, locale="en", return_city=True) or city
    except (LookupError, ValueError):
        return "", city
    return ("" if not generic or generic.startswith(("GMT", "Unknown")) else generic), city


def zone_label(name: str) -> str:
    """"Eastern Time — New York"."""
    if name == "UTC":
        return clinic_gettext("UTC — Coordinated Universal Time")
    generic, city = _names(name)
    return f"{generic} — {city}" if generic else city


def _city_first(name: str) -> str:
    """"New York — Eastern Time": within a region, the list is found by its cities."""
    generic, city = _names(name)
    return f"{city} — {generic}" if generic else city


@functools.cache
def _grouped() -> tuple:
    real = sorted(zone for zone in available_timezones() if is_real_zone(zone))
    groups = [(COMMON_GROUP, tuple((zone, zone_label(zone)) for zone in COMMON if zone in real))]
    for region in REGIONS:
        members = sorted(((zone, _city_first(zone)) for zone in real
                          if zone.startswith(region + "/") and zone not in COMMON), key=lambda choice: choice[1])
        groups.append((region, tuple(members)))
    return tuple(groups)


def zone_choices(current: str | None = None, first: tuple | None = None) -> dict[str, list[tuple[str, str]]]:
    """WTForms grouped choices (<optgroup>s), each zone once (a common one only among the
    common ones). A zone in use that is not on the list (an alias
    chosen before there was one) stays choosable, so saving the form does not change it; `first`
    is an option put in a group before the others, such as ("", "The practice's")."""
    choices = {}
    if first:
        choices[clinic_gettext("Default")] = [first]
    for region, members in _grouped():  # cached: its one word is said here, in the language of the moment
        choices[clinic_gettext(region) if region == COMMON_GROUP else region] = list(members)
    if current and not any(current == value for members in choices.values() for value, _ in members):
        choices.setdefault(clinic_gettext("Current setting"), []).append((current, current))
    return choices
