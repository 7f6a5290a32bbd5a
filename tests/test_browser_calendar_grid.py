"""The calendar's time grid as a clinician sees it, in headless Chromium at 1280 and 375 px:
each appointment as tall as it lasts, its link window beside it, now as a line where the
(time-machined) server clock says, and +15 changing the height and the window in place."""
from datetime import datetime

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError, expect

from practice.appointments import create_appointment
from practice.clients import add_client
from practice.models import Practice
from tests.conftest import ARTIFACTS, PASSWORD, clinician

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280", "375"])


@pytest.fixture
def database_url(tmp_path):
    """Browser journeys run on SQLite: the database rules are tested elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def booked(live_portal, traveller, dana):
    """Monday 2 March 2026 in London (UTC then): 10:00–11:00 and 12:00–13:30 by video, Wednesday
    14:00–14:50 in person; the server's clock at 10:30."""
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy", timezone="Europe/London").execute()
    alex, sam = add_client("alex@example.com", "Alex Morgan"), add_client("sam@example.com", "Sam Rivera")
    with app.app_context():
        hour = create_appointment(clinician=dana, client=alex, starts_at=datetime(2026, 3, 2, 10),
                                  ends_at=datetime(2026, 3, 2, 11), kind="telehealth")
        longer = create_appointment(clinician=dana, client=sam, starts_at=datetime(2026, 3, 2, 12),
                                    ends_at=datetime(2026, 3, 2, 13, 30), kind="telehealth")
        wednesday = create_appointment(clinician=dana, client=alex, starts_at=datetime(2026, 3, 4, 14),
                                       ends_at=datetime(2026, 3, 4, 14, 50), kind="in_person")
    traveller.shift(90 * 60)  # 10:30
    return base_url, hour, longer, wednesday


def signed_in(chromium, base_url, size, javascript=True):
    context = chromium.new_context(viewport=size, java_script_enabled=javascript)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.goto(f"{base_url}/clinic/sign-in")
    tab.get_by_label("Email").fill("dana@example.com")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    expect(tab).to_have_url(f"{base_url}/clinic/calendar")
    return tab


def box(tab, selector):
    found = tab.locator(selector)
    expect(found).to_be_visible()
    return found.bounding_box()


def settled_box(tab, selector, height: float):
    """The box once the element is `height` tall (±2 px): htmx puts the new content in first and
    its new classes (our placement) on after its settle delay, so a measure taken at once can
    still see the old rows."""
    try:
        tab.wait_for_function("([selector, height]) => { const e = document.querySelector(selector);"
                              " return e && Math.abs(e.getBoundingClientRect().height - height) <= 2; }",
                              arg=[selector, height], timeout=5000)
    except PlaywrightTimeoutError:
        pass  # the assertion below says what the height was
    return box(tab, selector)


def fits_the_width(tab, size):
    assert tab.evaluate("document.documentElement.scrollWidth") <= size["width"]


@SIZES
def test_day_grid_draws_each_appointment_as_tall_as_it_lasts_with_its_window_beside_it(chromium, booked, size):
    base_url, hour, longer, _ = booked
    tab = signed_in(chromium, base_url, size)
    one, one_and_half = box(tab, f"#appointment-{hour.id}"), box(tab, f"#appointment-{longer.id}")
    assert one_and_half["height"] / one["height"] == pytest.approx(1.5, abs=0.02)
    per_minute = one["height"] / 60
    assert one_and_half["y"] - one["y"] == pytest.approx(120 * per_minute, abs=1.5)  # 10:00 to 12:00
    # The link window: from 15 minutes before the start to 30 after the end, in a strip to the left.
    band = box(tab, f'.window-band[data-for="appointment-{hour.id}"]')
    assert band["x"] + band["width"] <= one["x"] + 1
    assert band["y"] == pytest.approx(one["y"] - 15 * per_minute, abs=1.5)
    assert band["y"] + band["height"] == pytest.approx(one["y"] + one["height"] + 30 * per_minute, abs=1.5)
    expect(tab.locator(f"#appointment-{hour.id} .link-band")).to_have_text("Link open 9:45 AM – 11:30 AM (open now)")
    # Now (10:30) is a line halfway down the 10:00–11:00 appointment.
    line = box(tab, ".now-line")
    assert line["y"] == pytest.approx(one["y"] + 30 * per_minute, abs=2)
    expect(tab.locator(".now-line")).to_contain_text("10:30 AM")
    # Hours down the side: 10 AM is level with the 10:00 appointment's top.
    ten = tab.locator(".hour", has_text="10 AM")
    assert ten.bounding_box()["x"] + ten.bounding_box()["width"] <= band["x"]
    fits_the_width(tab, size)
    tab.screenshot(path=ARTIFACTS / f"calendar-day-grid-{size['width']}.png", full_page=True)


@SIZES
def test_plus_15_makes_the_appointment_taller_and_its_window_longer_without_a_reload(chromium, booked, size):
    base_url, hour, _, _ = booked
    tab = signed_in(chromium, base_url, size)
    card = tab.locator(f"#appointment-{hour.id}")
    before = box(tab, f"#appointment-{hour.id}")
    band_before = box(tab, f'.window-band[data-for="appointment-{hour.id}"]')
    tab.evaluate("window.__marker = 1")
    card.get_by_role("button", name="+15 min").click()
    expect(card.locator(".when")).to_have_text("10:00 AM – 11:15 AM")
    expect(card.locator(".length")).to_have_text("75 min")
    expect(card.locator(".link-band")).to_have_text("Link open 9:45 AM – 11:45 AM (open now)")
    after = settled_box(tab, f"#appointment-{hour.id}", before["height"] * 75 / 60)
    band_after = settled_box(tab, f'.window-band[data-for="appointment-{hour.id}"]',
                             band_before["height"] + 15 * before["height"] / 60)
    assert after["height"] / before["height"] == pytest.approx(75 / 60, abs=0.02)
    assert band_after["height"] - band_before["height"] == pytest.approx(15 * before["height"] / 60, abs=1.5)
    assert tab.evaluate("window.__marker") == 1  # the same page: swapped in place
    # The end-time field (day view) follows, and setting it reshapes the grid the same way.
    card.get_by_label("End at").fill("11:30")
    card.get_by_role("button", name="Set end").click()
    expect(card.locator(".length")).to_have_text("90 min")
    assert settled_box(tab, f"#appointment-{hour.id}", before["height"] * 1.5)["height"] / before["height"] \
        == pytest.approx(1.5, abs=0.02)
    assert tab.evaluate("window.__marker") == 1
    fits_the_width(tab, size)


def test_without_javascript_the_grid_shows_and_plus_15_comes_back_to_it(chromium, booked):
    base_url, hour, longer, _ = booked
    tab = signed_in(chromium, base_url, DESKTOP, javascript=False)
    before = box(tab, f"#appointment-{hour.id}")
    assert box(tab, f"#appointment-{longer.id}")["height"] / before["height"] == pytest.approx(1.5, abs=0.02)
    tab.locator(f"#appointment-{hour.id}").get_by_role("button", name="+30 min").click()
    expect(tab).to_have_url(f"{base_url}/clinic/calendar?date=2026-03-02")
    expect(tab.locator(f"#appointment-{hour.id} .when")).to_have_text("10:00 AM – 11:30 AM")
    assert settled_box(tab, f"#appointment-{hour.id}", before["height"] * 1.5)["height"] / before["height"] \
        == pytest.approx(1.5, abs=0.02)


def test_week_is_a_grid_of_seven_days_at_1280_and_a_list_at_375(chromium, booked):
    base_url, hour, longer, wednesday = booked
    tab = signed_in(chromium, base_url, DESKTOP)
    tab.goto(f"{base_url}/clinic/calendar/week?date=2026-03-02")
    monday, later, wed = (box(tab, f"#appointment-{a.id}") for a in (hour, longer, wednesday))
    assert later["height"] / monday["height"] == pytest.approx(1.5, abs=0.02)
    assert wed["x"] > monday["x"] + monday["width"]  # its own column, two days along
    assert wed["y"] == pytest.approx(monday["y"] + 240 * monday["height"] / 60, abs=1.5)  # 14:00 vs 10:00
    expect(tab.locator(".window-band")).to_have_count(2)  # the in-person one has no link
    tab.screenshot(path=ARTIFACTS / "calendar-week-grid-1280.png", full_page=True)
    tab.context.close()

    phone = signed_in(chromium, base_url, PHONE)
    phone.goto(f"{base_url}/clinic/calendar/week?date=2026-03-02")
    cards = [box(phone, f"#appointment-{a.id}") for a in (hour, longer, wednesday)]
    assert len({round(c["x"]) for c in cards}) == 1  # one column
    assert cards[0]["y"] + cards[0]["height"] <= cards[1]["y"] <= cards[2]["y"]  # in order, none over another
    expect(phone.locator(".window-band").first).to_be_hidden()
    expect(phone.get_by_role("heading", name="Wed 4 Mar")).to_be_visible()
    phone.locator(f"#appointment-{wednesday.id}").get_by_role("button", name="+15 min").click()
    expect(phone.locator(f"#appointment-{wednesday.id} .when")).to_have_text("2:00 PM – 3:05 PM")
    fits_the_width(phone, PHONE)
    phone.screenshot(path=ARTIFACTS / "calendar-week-list-375.png", full_page=True)


@pytest.fixture
def colleague(live_portal, booked):
    """Kim Park, a second clinician, with Tuesday 3 March 11:00–11:50 by video."""
    app, _ = live_portal
    kim = clinician("kim@example.com", "Kim Park")
    jo = add_client("jo@example.com", "Jo Baker", clinician=kim)
    with app.app_context():
        kims = create_appointment(clinician=kim, client=jo, starts_at=datetime(2026, 3, 3, 11),
                                  ends_at=datetime(2026, 3, 3, 11, 50), kind="telehealth")
    return kim, kims


@SIZES
def test_an_admin_chooses_whose_calendar_with_the_keyboard_and_it_stays_chosen(chromium, booked, colleague, size):
    """Dana sees clients, so her calendar opens on her own; she shows Kim's with the list and
    Show (a plain form: at 375 px without JavaScript), and Kim's stays chosen day to day."""
    base_url, hour, _, _ = booked
    kim, kims = colleague
    tab = signed_in(chromium, base_url, size, javascript=size is DESKTOP)
    chooser = tab.get_by_label("Clinician")
    expect(chooser).to_have_value(str(booked[1].clinician_id))
    expect(tab.locator(f"#appointment-{hour.id}")).to_be_visible()
    fits_the_width(tab, size)
    tab.screenshot(path=ARTIFACTS / f"calendar-clinician-own-{size['width']}.png", full_page=True)
    chooser.select_option(str(kim.id))
    chooser.focus()
    tab.keyboard.press("Tab")  # the list, then its Show button
    expect(tab.get_by_role("button", name="Show")).to_be_focused()
    tab.keyboard.press("Enter")
    expect(tab).to_have_url(f"{base_url}/clinic/calendar?date=2026-03-02&clinician={kim.id}")
    expect(tab.locator(f"#appointment-{hour.id}")).to_have_count(0)
    expect(tab.get_by_text("Kim Park's calendar.")).to_be_visible()
    tab.get_by_role("link", name="Next day →").click()
    expect(tab).to_have_url(f"{base_url}/clinic/calendar?date=2026-03-03&clinician={kim.id}")
    card = tab.locator(f"#appointment-{kims.id}")
    expect(card).to_be_visible()
    card.get_by_role("button", name="+15 min").click()
    expect(card.locator(".when")).to_have_text("11:00 AM – 12:05 PM")
    expect(tab.get_by_label("Clinician")).to_have_value(str(kim.id))  # after the change, still Kim's
    expect(tab.locator("#calendar-grid .appointment")).to_have_count(1)
    fits_the_width(tab, size)
    tab.screenshot(path=ARTIFACTS / f"calendar-clinician-{size['width']}.png", full_page=True)
