"""Where each appointment sits on the calendar's time grid, computed here so the page needs no
script and no inline style (the CSP forbids both): rows of five minutes, named by classes that
static/calendar-rows.css defines (`python -m blueprints.clinic._calendar_grid` writes it)."""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from practice.appointments import WORKING_HOURS

ROW = timedelta(minutes=5)
MAX_ROWS = 25 * 12  # the longest day (clocks going back) shown whole
MAX_LANES = 12  # side-by-side overlapping appointments; more share the last lane
CSS_PATH = Path(__file__).resolve().parents[2] / "static" / "calendar-rows.css"


@dataclass
class Hour:
    label: str  # "9 AM"
    place: str
    near_now: bool = False  # the now line's own time label sits over this one: hidden


@dataclass
class Timeline:
    """One day's column: its rows, hour marks, appointments (cards with `place` set) and now line."""
    rows: int
    lanes: int
    cards: list
    hours: list[Hour] = field(default_factory=list)
    now_place: str | None = None
    now_label: str | None = None

    @property
    def place(self) -> str:
        return f"rows-{self.rows} lanes-{self.lanes}"

    @property
    def rows_place(self) -> str:
        return f"rows-{self.rows}"


def _local(day: date, hour: int, zone: str) -> datetime:
    """Naive UTC of `hour`:00 on `day` in `zone` (24 is the next midnight)."""
    moment = datetime.combine(day + timedelta(days=hour // 24), time(hour % 24)).replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def hour_range(days, zone: str, now: datetime) -> tuple[int, int]:
    """Working hours, widened to every appointment and link window of `days` (pairs of a date
    and its cards) and to the present moment."""
    first, last = (moment.hour for moment in WORKING_HOURS)  # always shown, widened to what the days hold
    tz = ZoneInfo(zone)
    for day, cards in days:
        start, end = _local(day, 0, zone), _local(day, 24, zone)
        moments = [min(max(m, start), end) for c in cards
                   for m in (c.starts_at, c.ends_at, c.opens_at, c.closes_at) if m is not None]
        moments += [now] if start <= now < end else []
        for moment in moments:
            local = moment.replace(tzinfo=timezone.utc).astimezone(tz)
            if local.date() != day:  # the next midnight
                last = 24
                continue
            first = min(first, local.hour)
            last = max(last, local.hour + (1 if (local.minute or local.second) else 0))
    return first, max(last, first + 1)


def _row(offset: timedelta, rows: int) -> tuple[int, int]:
    """The 1-based row line and the minutes past it, kept within the grid."""
    minutes = max(0, min(int(offset / timedelta(minutes=1)), rows * 5))
    return minutes // 5 + 1, minutes % 5


def span(start: datetime, end: datetime, grid_start: datetime, rows: int) -> str:
    """Classes placing something from `start` to `end` on a grid beginning at `grid_start`."""
    first, past = _row(start - grid_start, rows)
    last, over = _row(end - grid_start, rows)
    last = max(last, first + (0 if over else 1))
    classes = [f"rs-{first}"] + ([f"so-{past}"] if past else [])
    classes += [f"re-{last + 1}", f"eo-{5 - over}"] if over else [f"re-{last}"]
    return " ".join(classes)


def _lanes(items) -> int:
    """Give each card (sorted by start) the first lane free at its start; the number of lanes."""
    ends: list[datetime] = []
    for item in items:
        lane = next((i for i, until in enumerate(ends) if until <= item.starts_at), None)
        if lane is None and len(ends) < MAX_LANES:
            ends.append(item.ends_at)
            lane = len(ends) - 1
        elif lane is None:
            lane = MAX_LANES - 1
        ends[lane] = max(ends[lane], item.ends_at) if lane == MAX_LANES - 1 else item.ends_at
        item.lane = lane
    return max(1, len(ends))


# How far from an hour mark the now line's time label (drawn in the same gutter) covers it.
NOW_LABEL_REACH = timedelta(minutes=20)


def timeline(day: date, hours: tuple[int, int], cards, zone: str, now: datetime) -> Timeline:
    """Place one day's scheduled cards: lanes for overlaps, the link window in one of two narrow
    strips beside its card (back-to-back sessions' windows overlap), and the now line."""
    grid_start, grid_end = _local(day, hours[0], zone), _local(day, hours[1], zone)
    rows = max(1, min(MAX_ROWS, int((grid_end - grid_start) / ROW)))
    lanes = _lanes(cards)
    strips: dict[tuple[int, int], datetime] = {}
    for c in cards:
        c.place = f"{span(c.starts_at, c.ends_at, grid_start, rows)} lane-{c.lane}"
        if c.opens_at is not None:
            strip = 0 if strips.get((c.lane, 0), datetime.min) <= c.opens_at else 1
            strips[(c.lane, strip)] = c.closes_at
            c.band_place = f"{span(c.opens_at, c.closes_at, grid_start, rows)} band-{c.lane}-{strip}"
    for c in cards:  # as wide as the lanes to its right that nothing overlapping it uses
        blocking = [o.lane for o in cards if o.lane > c.lane and o.starts_at < c.ends_at and c.starts_at < o.ends_at]
        c.place += f" wide-{min(blocking, default=lanes) - c.lane}"
    result = Timeline(rows=rows, lanes=lanes, cards=cards)
    tz = ZoneInfo(zone)
    moment = grid_start
    while moment < grid_end:
        local = moment.replace(tzinfo=timezone.utc).astimezone(tz)
        result.hours.append(Hour(local.strftime("%-I %p"), span(moment, moment + timedelta(hours=1), grid_start, rows)))
        moment += timedelta(hours=1)
    if grid_start <= now < grid_end:
        result.now_place = span(now, now + ROW, grid_start, rows).split(" re-")[0]
        result.now_label = now.replace(tzinfo=timezone.utc).astimezone(tz).strftime("%-I:%M %p")
        for offset, hour in enumerate(result.hours):
            hour.near_now = abs(grid_start + timedelta(hours=offset) - now) < NOW_LABEL_REACH
    return result


def grid_css() -> str:
    """The classes `span` and `Timeline.place` name; a row is `--row` tall (calendar.css)."""
    lines = ["/* Generated by `python -m blueprints.clinic._calendar_grid`: do not edit. */"]
    lines += [f".rs-{n}{{grid-row-start:{n}}}.re-{n}{{grid-row-end:{n}}}" for n in range(1, MAX_ROWS + 2)]
    lines += [f".rows-{n}{{grid-template-rows:repeat({n},var(--row))}}" for n in range(1, MAX_ROWS + 1)]
    # After calendar.css and as specific as its rules, so that the offsets win.
    lines += [f".timeline .so-{k}{{margin-top:calc(var(--row)*{k}/5)}}.timeline .eo-{k}{{margin-bottom:calc(var(--row)*{k}/5)}}"
              for k in range(1, 5)]
    # Each lane is three columns: two narrow strips for link windows, then the appointment.
    lines += [f".lanes-{n}{{grid-template-columns:repeat({n},var(--strip) var(--strip) minmax(0,1fr))}}"
              for n in range(1, MAX_LANES + 1)]
    lines += [f".lane-{n}{{grid-column-start:{3 * n + 3}}}.band-{n}-0{{grid-column:{3 * n + 1}}}"
              f".band-{n}-1{{grid-column:{3 * n + 2}}}" for n in range(MAX_LANES)]
    # A card spanning k lanes covers its own column and the strips and cards of k - 1 more.
    lines += [f".wide-{k}{{grid-column-end:span {3 * k - 2}}}" for k in range(1, MAX_LANES + 1)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    CSS_PATH.write_text(grid_css())
    print(f"wrote {CSS_PATH}")
