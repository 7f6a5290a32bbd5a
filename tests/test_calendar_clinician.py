"""Whose calendar an admin sees: one clinician's at a time, chosen with `?clinician=` (kept
across day, week, previous, next and the card's own changes), or everyone's at a practice of
up to six clinicians; only the chosen clinician's appointments are read."""
import html as markup
import re
from datetime import datetime

import pytest

from practice.appointments import create_appointment
from practice.clients import add_client
from tests.conftest import clinic_csrf, clinic_sign_in, clinician
from tests.test_calendar_grid import statements

pytestmark = pytest.mark.usefixtures("traveller")  # Monday 2 March 2026, 09:00 UTC (the practice in UTC)

WEEK = "/clinic/calendar/week?date=2026-03-02"


def book(app, who, client, day, hour):
    with app.app_context():
        return create_appointment(clinician=who, client=client, starts_at=datetime(2026, 3, day, hour),
                                  ends_at=datetime(2026, 3, day, hour, 50), kind="in_person")


def shown(html) -> set[int]:
    return {int(n) for n in re.findall(r'<article id="appointment-(\d+)"', html)}


def selected(html) -> str:
    match = re.search(r'<select id="calendar-clinician" name="clinician">(.*?)</select>', html, re.S)
    assert match, "no clinician chooser"
    return re.search(r'<option value="([^"]*)" selected>', match.group(1)).group(1)


def get(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return markup.unescape(response.get_data(as_text=True))


@pytest.fixture
def practice_of_two(app, dana, kim, alex):
    """Dana (the admin) sees clients too: an appointment each for her and Kim this week."""
    return book(app, dana, alex, 3, 10), book(app, kim, alex, 4, 11)


def test_an_admins_week_shows_only_the_chosen_clinicians_appointments_and_says_whose(
        client, kim, practice_of_two):
    danas, kims = practice_of_two
    clinic_sign_in(client, "dana@example.com")
    html = get(client, f"{WEEK}&clinician={kim.id}")
    assert shown(html) == {kims.id}
    assert selected(html) == str(kim.id)
    assert "Kim Park's calendar." in html and "<title>Week of 2 Mar – 8 Mar 2026 · Kim Park · Calendar" in html
    assert "with Kim Park" not in html  # one clinician's calendar: the cards need not say so


def test_an_admin_who_sees_clients_opens_their_own_calendar(client, dana, practice_of_two):
    danas, kims = practice_of_two
    clinic_sign_in(client, "dana@example.com")
    for path in ("/clinic/calendar?date=2026-03-03", WEEK):
        html = get(client, path)
        assert shown(html) == {danas.id} and selected(html) == str(dana.id)
        assert "Dana Hale's calendar." in html


def test_an_admin_who_sees_no_clients_opens_everyones_at_a_small_practice(app, client, dana, kim, alex):
    sams = book(app, clinician("sam@example.com", "Sam Lee"), alex, 2, 14)
    kims = book(app, kim, alex, 4, 11)
    clinic_sign_in(client, "dana@example.com")
    html = get(client, WEEK)
    assert shown(html) == {kims.id, sams.id} and selected(html) == "all"
    assert "with Kim Park" in html and "with Sam Lee" in html and "All clinicians' calendar." in html


def test_at_a_larger_practice_an_admin_who_sees_no_clients_opens_the_first_clinician_by_name(
        app, client, dana, alex):
    team = [clinician(f"c{n}@example.com", name) for n, name in enumerate(
        ["Zoe Quinn", "ben ames", "Carla Diaz", "Ivo Novak", "Mia Roth", "Theo Sand", "Lena Voss"])]
    bens = book(app, team[1], alex, 2, 10)
    book(app, team[0], alex, 2, 12)
    clinic_sign_in(client, "dana@example.com")
    html = get(client, WEEK)
    assert shown(html) == {bens.id} and selected(html) == str(team[1].id)  # by name, whatever its case
    assert 'value="all"' not in html  # eight clinicians: everyone's week is not offered
    response = client.get(f"{WEEK}&clinician=all")
    assert response.status_code == 404
    assert "up to 6 clinicians" in response.get_data(as_text=True)


def test_the_choice_survives_day_week_previous_next_and_today(client, kim, practice_of_two):
    clinic_sign_in(client, "dana@example.com")
    html = get(client, f"/clinic/calendar?date=2026-03-04&clinician={kim.id}")
    nav = re.search(r'<nav class="calendar-nav".*?</nav>', html, re.S).group(0)
    links = re.findall(r'href="([^"]+)"', nav)
    calendar_links = [link for link in links if link.startswith("/clinic/calendar")]
    assert len(calendar_links) == 4  # previous, today, next, week
    assert all(f"clinician={kim.id}" in link for link in calendar_links)
    assert f'/clinic/appointments/new?date=2026-03-04&clinician={kim.id}' in nav  # books for Kim
    week = get(client, f"{WEEK}&clinician={kim.id}")
    assert f'/clinic/calendar?date=2026-03-04&clinician={kim.id}' in week  # each day's heading
    # The chooser keeps the day or week shown.
    form = re.search(r'<form class="calendar-clinician" method="get" action="([^"]+)">(.*?)</form>', week, re.S)
    assert form.group(1) == "/clinic/calendar/week" and 'name="date" value="2026-03-02"' in form.group(2)


def test_a_change_from_a_card_answers_on_the_calendar_it_was_made_on(client, kim, practice_of_two):
    danas, kims = practice_of_two
    clinic_sign_in(client, "dana@example.com")
    html = get(client, f"{WEEK}&clinician={kim.id}")
    assert f'<input type="hidden" name="clinician" value="{kim.id}">' in html
    data = {"csrf_token": clinic_csrf(client), "minutes": "15", "view": "week", "clinician": str(kim.id)}
    response = client.post(f"/clinic/appointments/{kims.id}/extend", data=data)  # without script
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/clinic/calendar/week?date=2026-03-04&clinician={kim.id}")
    grid = client.post(f"/clinic/appointments/{kims.id}/extend", data=data,  # htmx: the grid it sits on
                       headers={"HX-Request": "true", "HX-Trigger": f"extend-{kims.id}"})
    assert grid.status_code == 200 and shown(grid.get_data(as_text=True)) == {kims.id}


@pytest.mark.parametrize("value", ["9999", "abc", "-1", "1e3", "99999999999999999999999", "1%20OR%201=1", "all "])
def test_a_clinician_value_naming_no_calendar_is_refused_plainly(client, dana, kim, value):
    clinic_sign_in(client, "dana@example.com")
    for path in ("/clinic/calendar", "/clinic/calendar/week"):
        response = client.get(f"{path}?clinician={value}")
        body = response.get_data(as_text=True)
        if value == "all ":  # stripped: a practice of two may see everyone's
            assert response.status_code == 200
            continue
        assert response.status_code == 404
        assert "No clinician has that calendar. Choose one from the calendar" in body
        assert f'href="{path}"' in body  # the way back to a calendar that exists


def test_a_clinician_who_is_not_an_admin_cannot_open_anothers_calendar(client, dana, kim, practice_of_two):
    danas, kims = practice_of_two
    clinic_sign_in(client, "kim@example.com")
    assert client.get(f"{WEEK}&clinician={dana.id}").status_code == 404
    html = get(client, f"{WEEK}&clinician={kim.id}")
    assert shown(html) == {kims.id} and 'id="calendar-clinician"' not in html


def test_an_admins_calendar_costs_the_same_statements_for_two_clinicians_or_twelve(app, client, dana, kim, alex):
    book(app, dana, alex, 3, 10)
    clinic_sign_in(client, "dana@example.com")
    paths = ["/clinic/calendar?date=2026-03-03", WEEK, f"{WEEK}&clinician={kim.id}", f"{WEEK}&clinician=all"]
    for path in paths:
        statements(client, path)  # warm
    few = [statements(client, path) for path in paths[:3]]
    for n in range(10):
        other = clinician(f"c{n}@example.com", f"Clinician {n}")
        client_of = add_client(f"client{n}@example.com", f"Client {n}", clinician=other)
        for day in (2, 3, 4):
            book(app, other, client_of, day, 9 + n)
    assert [statements(client, path) for path in paths[:3]] == few


def test_only_the_chosen_clinicians_appointments_are_read(client, kim, practice_of_two, caplog):
    clinic_sign_in(client, "dana@example.com")
    with caplog.at_level("DEBUG", logger="peewee"):
        get(client, f"{WEEK}&clinician={kim.id}")
    reads = [record.getMessage() for record in caplog.records
             if 'FROM "appointment"' in record.getMessage() and '"starts_at" >=' in record.getMessage()]
    # A condition on the clinician, with its value as a parameter (not the join's "clinician_id" = "id").
    assert reads and all(re.search(r'"clinician_id" = (\?|%s)', sql) for sql in reads), reads


def test_the_changes_by_clients_on_an_admins_calendar_are_the_chosen_clinicians(client, app, kim, practice_of_two):
    """A request to answer is listed where its appointment is: Kim's calendar lists Kim's."""
    from practice.models import OnlineChange
    danas, kims = practice_of_two
    with app.app_context():
        for appointment in (danas, kims):
            OnlineChange.create(appointment=appointment, client=appointment.client, kind="request", status="pending",
                                old_starts_at=appointment.starts_at, old_ends_at=appointment.ends_at,
                                new_starts_at=datetime(2026, 3, 6, 15), new_ends_at=datetime(2026, 3, 6, 15, 50),
                                made_at=datetime(2026, 3, 2, 8))
    clinic_sign_in(client, "dana@example.com")

    def answers(path) -> int:
        return len(re.findall(r'action="/clinic/online-changes/\d+/approve"', get(client, path)))

    assert answers(f"{WEEK}&clinician={kim.id}") == 1
    assert answers(f"{WEEK}&clinician=all") == 2  # everyone's calendar, everyone's requests
    approve = re.search(r'action="/clinic/online-changes/(\d+)/approve"', get(client, f"{WEEK}&clinician={kim.id}"))
    assert int(approve.group(1)) == OnlineChange.get(OnlineChange.appointment == kims).id
