"""The calendar's time grid, computed on the server: rows of five minutes named by classes that
a generated stylesheet defines, lanes for overlaps, the link window beside its appointment, the
hour range and the now line, at no extra query."""
import logging
import re
from datetime import datetime
from types import SimpleNamespace

import pytest

from blueprints.clinic._calendar_grid import CSS_PATH, grid_css, hour_range, span, timeline
from practice.appointments import create_appointment
from practice.models import Practice
from tests.conftest import clinic_sign_in

pytestmark = pytest.mark.usefixtures("traveller")  # Monday 2 March 2026, 09:00 UTC

LONDON = "Europe/London"  # UTC until 29 March


def card(start, end, opens=None, closes=None):
    return SimpleNamespace(starts_at=start, ends_at=end, opens_at=opens, closes_at=closes)


def at(hour, minute=0, day=2):
    return datetime(2026, 3, day, hour, minute)


def test_the_stylesheet_is_what_the_generator_writes():
    assert CSS_PATH.read_text() == grid_css(), "run: python -m blueprints.clinic._calendar_grid"


def test_span_names_five_minute_rows_and_the_minutes_past_them():
    grid = at(8)
    assert span(at(10), at(11), grid, 120) == "rs-25 re-37"  # 10:00 is 24 rows after 8:00
    assert span(at(10, 7), at(10, 52), grid, 120) == "rs-26 so-2 re-36 eo-3"  # 10:05 + 2 min to 10:55 - 3 min
    assert span(at(7), at(8, 30), grid, 120) == "rs-1 re-7"  # kept within the grid
    assert span(at(17, 30), at(19), grid, 120) == "rs-115 re-121"


def test_hours_are_working_hours_widened_to_the_days_appointments_and_windows():
    assert hour_range([(datetime(2026, 3, 2).date(), [])], LONDON, at(9)) == (8, 18)
    late = card(at(19, 15), at(20, 5), at(19), at(20, 35))
    early = card(at(7, 30), at(8, 20))
    assert hour_range([(datetime(2026, 3, 2).date(), [late, early])], LONDON, at(9)) == (7, 21)
    overnight = card(at(23), at(0, 30, day=3))
    assert hour_range([(datetime(2026, 3, 2).date(), [overnight])], LONDON, at(9)) == (8, 24)


def test_overlapping_appointments_sit_side_by_side_and_back_to_back_windows_alternate_strips():
    first = card(at(10), at(10, 50), at(9, 45), at(11, 20))
    overlapping = card(at(10, 30), at(11, 20), at(10, 15), at(11, 50))
    next_one = card(at(11), at(11, 50), at(10, 45), at(12, 20))  # its window opens before first's closes
    alone = card(at(14), at(14, 50))
    shown = timeline(datetime(2026, 3, 2).date(), (8, 18), [first, overlapping, next_one, alone], LONDON, at(10, 30))
    assert (first.lane, overlapping.lane, next_one.lane, alone.lane) == (0, 1, 0, 0)
    # One lane wide beside an overlapping one; the whole width when nothing overlaps it.
    assert [c.place.split()[-1] for c in (first, overlapping, next_one, alone)] == ["wide-1"] * 3 + ["wide-2"]
    assert shown.lanes == 2 and shown.place == "rows-120 lanes-2"
    assert first.band_place.endswith("band-0-0") and next_one.band_place.endswith("band-0-1")
    assert [h.label for h in shown.hours][:3] == ["8 AM", "9 AM", "10 AM"] and len(shown.hours) == 10
    assert shown.now_place == "rs-31" and shown.now_label == "10:30 AM"


def test_the_hour_label_under_the_now_lines_own_label_is_hidden_and_only_that_one():
    day = datetime(2026, 12, 2).date()
    just_after = timeline(day, (8, 18), [], "UTC", datetime(2026, 12, 2, 16, 5))
    assert [h.label for h in just_after.hours if h.near_now] == ["4 PM"]
    just_before = timeline(day, (8, 18), [], "UTC", datetime(2026, 12, 2, 16, 50))
    assert [h.label for h in just_before.hours if h.near_now] == ["5 PM"]
    half_past = timeline(day, (8, 18), [], "UTC", datetime(2026, 12, 2, 16, 30))
    assert not any(h.near_now for h in half_past.hours)
    another_day = timeline(day, (8, 18), [], "UTC", datetime(2026, 12, 3, 16, 5))
    assert not any(h.near_now for h in another_day.hours)


def test_the_day_after_the_clocks_go_back_has_twenty_five_hours_of_rows():
    day = datetime(2026, 10, 25).date()
    shown = timeline(day, (0, 24), [], LONDON, at(9))
    assert shown.rows == 300 and [h.label for h in shown.hours][:3] == ["12 AM", "1 AM", "1 AM"]


def test_the_day_page_places_each_appointment_and_its_window(app, client, dana, alex):
    Practice.update(timezone=LONDON).execute()
    with app.app_context():
        video = create_appointment(clinician=dana, client=alex, starts_at=at(10), ends_at=at(11), kind="telehealth")
    clinic_sign_in(client, "dana@example.com")
    html = client.get("/clinic/calendar").get_data(as_text=True)
    assert re.search(rf'<article id="appointment-{video.id}" class="[^"]*placed rs-25 re-37 lane-0 wide-1', html)
    # The window: 15 minutes early (9:45) to 30 minutes past the end (11:30), beside it.
    assert f'class="window-band rs-22 re-43 band-0-0" data-for="appointment-{video.id}"' in html
    assert '<p class="now-line rs-13">' in html  # 09:00


def statements(client, path) -> int:
    counted = []

    class Count(logging.Handler):
        def emit(self, record):
            counted.append(record)

    log, handler = logging.getLogger("peewee"), Count()
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        assert client.get(path).status_code == 200
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    return len(counted)


@pytest.mark.parametrize("path", ["/clinic/calendar", "/clinic/calendar/week"])
def test_the_grid_costs_the_same_queries_for_one_appointment_or_many(app, client, dana, alex, path):
    Practice.update(timezone=LONDON).execute()
    clinic_sign_in(client, "dana@example.com")
    with app.app_context():
        create_appointment(clinician=dana, client=alex, starts_at=at(10), ends_at=at(11), kind="telehealth")
    statements(client, path)  # warm
    one = statements(client, path)
    with app.app_context():
        for hour in (11, 12, 13, 14, 15, 16, 17, 18):
            create_appointment(clinician=dana, client=alex, starts_at=at(hour, 30), ends_at=at(hour + 1, 20),
                               kind="telehealth")
    assert statements(client, path) == one
