"""Pages that stay the same size, and issue the same SQL, however long a client's history grows:
the link history in pages of 20 ("Show older"), the portal home's next 10 appointments
("Show all"), and neither reading more statements for a client with more behind them."""
import logging
import re
from contextlib import contextmanager
from datetime import timedelta

import pytest

from practice.appointments import create_appointment
from practice.clients import add_client
from practice.history import HISTORY_PAGE
from practice.sign_in import send_link
from tests.conftest import START, clinic_sign_in, clinician, continue_with, deliver, mailed_link
from tests.test_clinic_clients import link_row, visible_text

pytestmark = pytest.mark.usefixtures("traveller")


@contextmanager
def counted_statements():
    """Every SQL statement peewee runs inside, counted from its query log (public: the 'peewee' logger)."""
    counted = []

    class Counter(logging.Handler):
        def emit(self, record):
            counted.append(record)

    log = logging.getLogger("peewee")
    handler, level = Counter(logging.DEBUG), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        yield counted
    finally:
        log.setLevel(level)
        log.removeHandler(handler)


def statements(browser, path: str) -> int:
    assert browser.get(path).status_code == 200  # once first: what a first visit writes is not the page's
    with counted_statements() as counted:
        assert browser.get(path).status_code == 200
    return len(counted)


def links_for(someone, count: int, traveller) -> None:
    """`count` sign-in links, an hour apart, each replacing the one before, each with its email."""
    for _ in range(count):
        send_link(someone, "client_request")
        traveller.shift(3600)


def shown_links(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="link-row" id="link-(\d+)"', page)]


@pytest.fixture
def dana_signed_in(app, dana):
    """Dana's browser, signed in when first used (after the links are made: hours pass)."""

    class Browser:
        browser = None

        def get(self, *args, **kwargs):
            if self.browser is None:
                self.browser = app.test_client()
                clinic_sign_in(self.browser, dana.email)
            return self.browser.get(*args, **kwargs)

    return Browser()


@pytest.fixture
def sam(app):
    return add_client("sam@example.com", "Sam Rivera")


def test_a_client_page_with_a_long_history_issues_no_more_statements_than_a_short_one(
        app, dana_signed_in, alex, sam, traveller):
    links_for(alex, 2, traveller)
    links_for(sam, 45, traveller)
    deliver(app)

    light = statements(dana_signed_in, f"/clinic/clients/{alex.id}")
    heavy = statements(dana_signed_in, f"/clinic/clients/{sam.id}")

    assert heavy <= light
    page = dana_signed_in.get(f"/clinic/clients/{sam.id}").get_data(as_text=True)
    assert shown_links(page) == list(range(45, 45 - HISTORY_PAGE, -1))
    assert "Sign-in links (45 in all)" in visible_text(page)


def test_link_history_shows_the_newest_20_and_show_older_brings_the_next_page_in_place(
        app, dana_signed_in, sam, traveller):
    links_for(sam, 45, traveller)
    deliver(app)
    page = dana_signed_in.get(f"/clinic/clients/{sam.id}").get_data(as_text=True)
    older = f"/clinic/clients/{sam.id}/history?before=26"
    assert f'id="history-older" href="{older}"' in page and f'hx-get="{older}"' in page

    fragment = dana_signed_in.get(older, headers={"HX-Request": "true", "HX-Trigger": "history-older"})

    rows = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "HX-Trigger" in fragment.headers["Vary"]
    assert "<html" not in rows and "Other emails" not in rows  # only the rows, for the list they join
    assert shown_links(rows) == list(range(25, 5, -1))
    # The newest on this page was replaced by one on the page before: still named.
    assert link_row(rows, 25)[1].startswith("Link 25 Replaced")
    assert "by link 26; only the newest link works" in link_row(rows, 25)[1]
    last = dana_signed_in.get(f"/clinic/clients/{sam.id}/history?before=6",
                              headers={"HX-Request": "true", "HX-Trigger": "history-older"}).get_data(as_text=True)
    assert shown_links(last) == [5, 4, 3, 2, 1]
    assert "history-older" not in last  # link 1 is the end


def test_show_older_works_without_javascript_as_a_page_of_its_own(app, dana_signed_in, sam, traveller):
    links_for(sam, 25, traveller)

    response = dana_signed_in.get(f"/clinic/clients/{sam.id}/history?before=6")

    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert shown_links(page) == [5, 4, 3, 2, 1]
    assert "Back to the newest links" in visible_text(page) and "Recent activity" in visible_text(page)


@pytest.mark.parametrize("before", ["abc", "-3", "0", ""])
def test_a_page_number_that_makes_no_sense_shows_the_newest_links(app, dana_signed_in, sam, traveller, before):
    links_for(sam, 22, traveller)

    response = dana_signed_in.get(f"/clinic/clients/{sam.id}/history?before={before}")

    assert response.status_code == 200
    assert shown_links(response.get_data(as_text=True)) == list(range(22, 2, -1))


def test_a_page_beyond_the_first_link_says_so(app, dana_signed_in, sam, traveller):
    links_for(sam, 3, traveller)

    page = visible_text(dana_signed_in.get(f"/clinic/clients/{sam.id}/history?before=1").get_data(as_text=True))

    assert "No link older than these. Show the newest" in page


# ---- the portal home -------------------------------------------------------------------------

def booked(someone, days: int, *clinicians) -> None:
    """One appointment a day from tomorrow, with each clinician in turn."""
    for day in range(1, days + 1):
        starts = START.replace(hour=10) + timedelta(days=day)
        create_appointment(clinician=clinicians[day % len(clinicians)], client=someone, starts_at=starts,
                           ends_at=starts + timedelta(minutes=50), kind="telehealth" if day % 2 else "in_person")


def signed_in_client(app, smtp_server, address: str):
    browser = app.test_client()
    continue_with(browser, mailed_link(app, browser, smtp_server, address))
    return browser


def test_the_portal_home_with_many_appointments_issues_no_more_statements_than_with_one(
        app, smtp_server, dana, alex, sam):
    kim, lee = clinician("kim@example.com", "Kim Park"), clinician("lee@example.com", "Lee Shah")
    booked(alex, 1, dana)
    booked(sam, 40, dana, kim, lee)
    deliver(app)

    light = statements(signed_in_client(app, smtp_server, alex.email), "/portal")
    heavy = statements(signed_in_client(app, smtp_server, sam.email), "/portal")

    assert heavy <= light


def test_the_portal_home_shows_the_next_10_appointments_and_show_all_lists_every_one(app, smtp_server, dana, sam):
    booked(sam, 14, dana)
    deliver(app)
    browser = signed_in_client(app, smtp_server, sam.email)

    home = browser.get("/portal").get_data(as_text=True)
    everything = browser.get("/portal?appointments=all").get_data(as_text=True)

    days = re.compile(r"<strong>\w{3} (\d+) Mar 2026")
    assert days.findall(home) == [str(d) for d in range(3, 13)]  # tomorrow, 3 March, and the nine after
    assert 'href="/portal?appointments=all#appointments-heading">Show all upcoming appointments</a>' in home
    assert days.findall(everything) == [str(d) for d in range(3, 17)]
    assert "Show all upcoming appointments" not in everything
    assert '<a href="/portal">Show only the next 10</a>' in everything


def test_a_short_list_offers_no_show_all(app, smtp_server, dana, alex):
    booked(alex, 10, dana)
    deliver(app)

    home = signed_in_client(app, smtp_server, alex.email).get("/portal").get_data(as_text=True)

    assert home.count("with Dana Hale") == 10 and "Show all" not in home
