"""What a person is told, in a real browser at desktop and phone width: a booking in the past
is warned about, "Booked" and "Extended" look like successes, the join page follows an
extension, and a throttled sign-in request says nothing was sent."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from practice.appointments import create_appointment, extend_appointment
from practice.clients import add_client
from practice.clinicians import create_clinician
from practice.clock import utcnow
from practice.models import Appointment, Client, Practice
from practice.telehealth import join_url
from tests.conftest import ARTIFACTS, PASSWORD, deliver

pytestmark = pytest.mark.browser

ZONE = "Europe/London"
WIDTHS = [1280, 375]


@pytest.fixture
def database_url(tmp_path):
    """Once, on SQLite: the rules behind these pages are tested on both backends elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture(params=WIDTHS, ids=lambda width: f"{width}px")
def screen(request, chromium):
    context = chromium.new_context(viewport={"width": request.param, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.width = request.param
    yield page
    context.close()


def background(locator) -> str:
    return locator.evaluate("element => getComputedStyle(element).backgroundColor")


def no_sideways_scroll(page):
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_past_start_is_warned_booked_and_extended_are_successes(live_portal, screen):
    app, base_url = live_portal
    page = screen
    Practice.update(timezone=ZONE).execute()
    kim = create_clinician("kim@example.com", "Kim Park", PASSWORD)
    alex = add_client("alex@example.com", "Alex Morgan")
    Client.update(clinician=kim).where(Client.id == alex.id).execute()
    yesterday = (datetime.now(timezone.utc).astimezone(ZoneInfo(ZONE)) - timedelta(days=1)).date()

    page.goto(f"{base_url}/clinic/sign-in")
    page.get_by_label("Email").fill("kim@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base_url}/clinic/appointments/new")
    page.get_by_label("Client").select_option(label="Alex Morgan")
    page.get_by_label("Date").fill(yesterday.isoformat())
    page.get_by_label("Start").fill("10:00")
    page.get_by_label("End", exact=True).fill("10:50")
    page.get_by_role("button", name="Save", exact=True).click()
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("This starts in the past")
    assert Appointment.select().count() == 0
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / f"booking-in-the-past-{page.width}.png", full_page=True)
    warning_look = background(warning)

    page.get_by_role("button", name="Save anyway").click()
    booked = page.get_by_role("status").filter(has_text="Booked: Alex Morgan")
    expect(booked).to_be_visible()
    assert background(booked) != warning_look  # a success does not look like a warning

    appointment = Appointment.get()
    card = page.locator(f"#appointment-{appointment.id}")
    card.get_by_role("button", name="+15 min").click()
    expect(card.get_by_role("status")).to_have_text("Extended: Alex Morgan's appointment now ends at 11:05 AM.")
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / f"extended-confirmation-{page.width}.png", full_page=True)


def test_the_join_page_shows_the_new_end_after_an_extension(live_portal, screen):
    app, base_url = live_portal
    page = screen
    dana = create_clinician("dana@example.com", "Dana Hale", PASSWORD, is_admin=True)
    alex = add_client("alex@example.com", "Alex Morgan")
    start = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=10)
    with app.app_context():
        appointment = create_appointment(clinician=dana, client=alex, starts_at=start,
                                         ends_at=start + timedelta(minutes=50))
        link = join_url(appointment)
    page.goto(link)
    with app.app_context():
        extend_appointment(Appointment.get_by_id(appointment.id), 30)
    page.reload()
    local = lambda moment: moment.replace(tzinfo=timezone.utc).strftime("%-I:%M %p")  # noqa: E731 (UTC practice)
    new_end, closes = start + timedelta(minutes=80), start + timedelta(minutes=110)
    expect(page.locator("#join-when")).to_contain_text(f"{local(start)} – {local(new_end)}")
    expect(page.locator("#join-status")).to_contain_text("brings you back until")
    expect(page.locator("#join-status")).to_contain_text(local(closes))
    assert local(start + timedelta(minutes=50)) not in page.locator("main").inner_text()
    page.screenshot(path=ARTIFACTS / f"join-after-extension-{page.width}.png", full_page=True)


def test_a_throttled_sign_in_request_says_nothing_was_sent(live_portal, screen):
    app, base_url = live_portal
    page = screen
    add_client("alex@example.com", "Alex Morgan")
    for attempt in range(6):
        page.goto(f"{base_url}/sign-in")
        page.get_by_label("Email address").fill("alex@example.com")
        page.get_by_role("button", name="Continue").click()
        expect(page.locator("#sign-in-sent p.sent")).to_be_visible()
        deliver(app)
    answer = page.get_by_role("alert")
    expect(answer).to_contain_text("so we have not sent another")
    expect(answer).to_contain_text("The newest of those emails is the one that works")
    expect(page.get_by_label("Code from the email")).to_be_visible()
    no_sideways_scroll(page)
    page.screenshot(path=ARTIFACTS / f"sign-in-throttled-{page.width}.png", full_page=True)
