"""The open times a client may move an appointment to: the clinician's hours, less their
other appointments and the buffer, dates off, the past, the cutoff and the horizon, with
daylight-saving changes on the wall clock."""
from datetime import date, datetime, timedelta

import pytest
import time_machine

from practice.appointments import create_appointment
from practice.availability import HoursError, open_slots, parse_days_off, parse_ranges, save_hours
from practice.clients import add_client
from practice.models import OnlineChange, Practice

# The traveller fixture's START is Monday 2 March 2026, 9:00 UTC. New York is on EST (UTC-5) until Sunday 8 March.
MORNINGS = {day: [("09:00", "12:00")] for day in range(5)}  # Monday to Friday, 9 to 12


@pytest.fixture
def setup(app, dana, traveller):
    Practice.update(timezone="America/New_York").execute()
    save_hours(dana, MORNINGS, [])
    alex = add_client("alex@example.com", "Alex Morgan")
    # Alex's appointment: Friday 13 March, 10:00-10:50 New York time (EDT by then).
    appointment = book(dana, alex, datetime(2026, 3, 13, 14, 0))
    return dana, alex, appointment


def book(clinician, client, start, minutes=50):
    return create_appointment(clinician=clinician, client=client, starts_at=start,
                              ends_at=start + timedelta(minutes=minutes))


def starts(appointment, day_start, day_end, now=None):
    """The open starts (naive UTC) between two UTC instants."""
    return [slot.starts_at for slot in open_slots(appointment, day_start, day_end, now or datetime.now())]


def new_york_day(day: date) -> tuple[datetime, datetime]:
    from practice.appointments import local_day_bounds
    return local_day_bounds(day, "America/New_York")


def test_slots_are_of_the_same_length_packed_within_the_working_hours(setup):
    _, _, appointment = setup
    slots = open_slots(appointment, *new_york_day(date(2026, 3, 10)), datetime.now())  # Tuesday, EDT
    # 9:00, 9:50, 10:40 fit in 9-12 with 50 minutes each; 11:30 would end at 12:20.
    assert [(s.starts_at, s.ends_at - s.starts_at) for s in slots] == [
        (datetime(2026, 3, 10, 13, 0), timedelta(minutes=50)), (datetime(2026, 3, 10, 13, 50), timedelta(minutes=50)),
        (datetime(2026, 3, 10, 14, 40), timedelta(minutes=50))]


def test_slots_exclude_other_appointments(setup):
    dana, _, appointment = setup
    sam = add_client("sam@example.com", "Sam Rivera")
    book(dana, sam, datetime(2026, 3, 10, 13, 30), minutes=30)  # 9:30-10:00 New York
    assert starts(appointment, *new_york_day(date(2026, 3, 10))) == [
        datetime(2026, 3, 10, 14, 0), datetime(2026, 3, 10, 14, 50)]  # 10:00 and 10:50, after it


def test_slots_exclude_the_appointments_own_time_but_not_its_neighbourhood(setup):
    _, _, appointment = setup  # Friday 13 March 10:00 (14:00 UTC)
    friday = starts(appointment, *new_york_day(date(2026, 3, 13)))
    assert datetime(2026, 3, 13, 14, 0) not in friday
    assert datetime(2026, 3, 13, 13, 50) in friday  # overlapping its own old time is no clash


def test_slots_keep_the_buffer_around_other_appointments(setup):
    dana, _, appointment = setup
    Practice.update(buffer_minutes=15).execute()
    book(dana, add_client("sam@example.com", "Sam Rivera"), datetime(2026, 3, 10, 13, 0))  # 9:00-9:50
    # Free from 10:05 (9:50 + 15), then 10:05 + 50 + 15 = 11:10 would end at 12:00: fits.
    assert starts(appointment, *new_york_day(date(2026, 3, 10))) == [
        datetime(2026, 3, 10, 14, 5), datetime(2026, 3, 10, 15, 10)]


def test_slots_exclude_hours_off_and_dates_off(setup):
    dana, _, appointment = setup
    save_hours(dana, {1: [("09:00", "10:00"), ("14:00", "15:00")], 2: [("09:00", "12:00")]}, [date(2026, 3, 11)])
    assert starts(appointment, *new_york_day(date(2026, 3, 9))) == []  # Monday: no hours
    assert starts(appointment, *new_york_day(date(2026, 3, 10))) == [
        datetime(2026, 3, 10, 13, 0), datetime(2026, 3, 10, 18, 0)]  # 9:00 and 14:00, not the lunch hours
    assert starts(appointment, *new_york_day(date(2026, 3, 11))) == []  # Wednesday: a date off


def test_slots_exclude_the_past_and_the_cutoff(setup, traveller):
    _, _, appointment = setup
    # Monday 2 March 9:00 UTC, cutoff 24 hours: nothing before Tuesday 3 March 9:00 UTC (4:00 EST).
    tuesday = new_york_day(date(2026, 3, 3))
    assert starts(appointment, *tuesday)[0] == datetime(2026, 3, 3, 14, 0)  # 9:00 EST: open
    traveller.shift(timedelta(hours=5, minutes=10).total_seconds())  # 14:10 UTC: 9:00 Tuesday is now 23h50 away
    assert starts(appointment, *tuesday)[0] == datetime(2026, 3, 3, 14, 50)
    traveller.shift(timedelta(days=2).total_seconds())  # Wednesday: Tuesday is past
    assert starts(appointment, *tuesday) == []


def test_the_cutoff_moves_across_the_day_with_time(setup):
    _, _, appointment = setup
    Practice.update(online_change_hours=48).execute()
    wednesday = new_york_day(date(2026, 3, 4))
    with time_machine.travel(datetime(2026, 3, 2, 14, 0), tick=False):  # exactly 48h before 9:00 Wed EST
        assert starts(appointment, *wednesday)[0] == datetime(2026, 3, 4, 14, 0)
    with time_machine.travel(datetime(2026, 3, 2, 14, 1), tick=False):  # one minute later
        assert starts(appointment, *wednesday)[0] == datetime(2026, 3, 4, 14, 50)


def test_slots_in_a_daylight_saving_week_keep_the_wall_clock(app, dana):
    """New York's clocks go back on Sunday 1 November 2026: 9:00 is 13:00 UTC on Friday
    30 October (EDT) and 14:00 UTC on Monday 2 November (EST)."""
    Practice.update(timezone="America/New_York").execute()
    save_hours(dana, {0: [("09:00", "10:00")], 4: [("09:00", "10:00")], 6: [("01:00", "03:00")]}, [])
    with time_machine.travel(datetime(2026, 10, 20, 12, 0), tick=False):
        alex = add_client("alex@example.com", "Alex Morgan")
        appointment = book(dana, alex, datetime(2026, 11, 20, 15, 0), minutes=60)
        slots = starts(appointment, new_york_day(date(2026, 10, 30))[0], new_york_day(date(2026, 11, 2))[1])
    assert slots == [
        datetime(2026, 10, 30, 13, 0),  # Friday 9:00 EDT
        # Sunday 1:00-3:00 on a 25-hour day: 1:00 EDT (5:00 UTC) and an hour later, 1:00 EST again (6:00 UTC)
        datetime(2026, 11, 1, 5, 0), datetime(2026, 11, 1, 6, 0), datetime(2026, 11, 1, 7, 0),
        datetime(2026, 11, 2, 14, 0),  # Monday 9:00 EST
    ]


def test_slots_stop_at_the_horizon(setup):
    _, _, appointment = setup
    Practice.update(online_change_weeks=1).execute()
    assert starts(appointment, *new_york_day(date(2026, 3, 6)))  # Friday: within a week
    assert starts(appointment, *new_york_day(date(2026, 3, 10))) == []  # beyond it


def test_no_slots_when_online_changes_are_off(setup):
    _, _, appointment = setup
    Practice.update(online_change_hours=0).execute()
    assert starts(appointment, *new_york_day(date(2026, 3, 10))) == []


def test_a_pending_request_holds_the_time_it_asks_for(setup):
    dana, _, appointment = setup
    other = book(dana, add_client("sam@example.com", "Sam Rivera"), datetime(2026, 3, 20, 14, 0))
    OnlineChange.create(appointment=other, client=other.client, kind="request", status="pending",
                        old_starts_at=other.starts_at, old_ends_at=other.ends_at,
                        new_starts_at=datetime(2026, 3, 10, 13, 0), new_ends_at=datetime(2026, 3, 10, 13, 50),
                        made_at=datetime.now())
    assert datetime(2026, 3, 10, 13, 0) not in starts(appointment, *new_york_day(date(2026, 3, 10)))


@pytest.mark.parametrize("text, message", [
    ("9-12", "two 24-hour times"), ("12:00-09:00", "end must be after"), ("09:00-12:00, 11:00-13:00", "overlap"),
    ("25:00-26:00", "two 24-hour times"),
])
def test_working_hours_that_make_no_sense_are_refused_with_a_reason(text, message):
    with pytest.raises(HoursError, match=message):
        parse_ranges(text, "monday")


def test_working_hours_and_dates_off_parse_from_what_a_person_types():
    assert parse_ranges(" 13:00-17:00, 09:00–12:00 ", "monday") == [("09:00", "12:00"), ("13:00", "17:00")]
    assert parse_days_off("2026-12-24\n2026-12-25, 2026-12-24") == [date(2026, 12, 24), date(2026, 12, 25)]
    with pytest.raises(HoursError, match="YYYY-MM-DD"):
        parse_days_off("24/12/2026")
