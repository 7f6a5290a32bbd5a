"""Phones (375 px) and desktops (1280 px) in headless Chromium: the clinician's menu fits one
row (a "Menu" disclosure on a phone, working without JavaScript), the client's "Sign out" stays
on one line, and tables become stacked "label: value" rows that never break a word."""
import pytest
from playwright.sync_api import expect

from practice.clients import add_client
from practice.models import Practice
from practice.sessions import start_session
from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280", "375"])
# Each word of every table cell: more than one line box means it was broken mid-word. A line
# may end after a hyphen ("Lindqvist-" / "Okonkwo"), as in print: the parts count as words.
BROKEN_WORDS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const word of node.data.matchAll(/[^\\s-]+-?/g)) {
        const range = document.createRange();
        range.setStart(node, word.index);
        range.setEnd(node, word.index + word[0].length);
        if (range.getClientRects().length > 1) broken.push(word[0]);
      }
    }
  }
  return broken;
}"""


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def practice(live_portal, dana, kim):
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy", timezone="Europe/London").execute()
    add_client("alex@example.com", "Alex Morgan", clinician=dana, phone="+44 20 7946 0958")
    add_client("jo.lindqvist-okonkwo@example.com", "Jo Lindqvist-Okonkwo-Featherstonehaugh", clinician=kim,
               phone="07700 900123")
    return app, base_url


def session_page(chromium, app, base_url, size, *, javascript=True, **who):
    """A tab signed in as `who` (client= or clinician=) through a session cookie."""
    context = chromium.new_context(viewport=size, java_script_enabled=javascript)
    context.set_default_timeout(10_000)
    if who:
        with app.app_context():
            raw_id = start_session(**who)[0]
        context.add_cookies([{"name": app.config["PORTAL_SESSION_COOKIE"], "value": raw_id, "url": base_url}])
    return context.new_page()


def one_line(locator) -> bool:
    """The element's text sits on one line box."""
    return locator.evaluate("""e => { const r = document.createRange(); r.selectNodeContents(e);
        const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top))); return tops.size === 1; }""")


@SIZES
@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_clinician_menu_fits_one_row(chromium, practice, dana, size, javascript):
    app, base_url = practice
    tab = session_page(chromium, app, base_url, size, javascript=javascript, clinician=dana)
    tab.goto(f"{base_url}/clinic/clients")
    header = tab.locator("header.site").bounding_box()
    assert header["height"] < 64  # one row: no 130 px block of wrapped links
    assert tab.evaluate("document.documentElement.scrollWidth") <= size["width"]
    links = ["Calendar", "Clients", "Documents", "Clinicians", "Settings"]
    if size is PHONE:
        menu = tab.locator("summary", has_text="Menu")
        expect(menu).to_be_visible()
        expect(tab.get_by_role("link", name="Clients")).to_be_hidden()
        menu.click()  # a <details>: opens with JavaScript off too
        for name in links:
            expect(tab.get_by_role("link", name=name)).to_be_visible()
        signed_out = tab.get_by_role("button", name="Sign out (Dana Hale)")
        expect(signed_out).to_be_visible()
        assert one_line(signed_out)
        panel = tab.locator(".narrow-menu .clinic-nav").bounding_box()
        assert panel["x"] >= 0 and panel["x"] + panel["width"] <= size["width"]
        tab.screenshot(path=ARTIFACTS / f"menu-open-375-{'js' if javascript else 'nojs'}.png")
        tab.get_by_role("link", name="Documents").click()
        expect(tab.get_by_role("heading", level=1)).to_have_text("Document templates")
    else:
        expect(tab.locator("summary", has_text="Menu")).to_be_hidden()
        tops = {round(tab.get_by_role("link", name=name).bounding_box()["y"]) for name in links}
        assert len(tops) == 1
    tab.context.close()


@SIZES
def test_the_clients_sign_out_stays_on_one_line(chromium, practice, size):
    app, base_url = practice
    from practice.models import Client
    alex = Client.get(Client.email == "alex@example.com")
    tab = session_page(chromium, app, base_url, size, client=alex)
    for path in ("/portal", "/portal/documents"):
        tab.goto(base_url + path)
        sign_out = tab.get_by_role("button", name="Sign out")
        expect(sign_out).to_be_visible()
        assert one_line(sign_out), path
        actions = tab.locator("header.site > nav, header.site > form").first.bounding_box()
        assert actions["height"] < 40 and actions["x"] + actions["width"] <= size["width"], path
    tab.context.close()


@SIZES
def test_tables_never_break_a_word_and_stack_on_a_phone(chromium, practice, dana, size):
    app, base_url = practice
    tab = session_page(chromium, app, base_url, size, clinician=dana)
    for path in ("/clinic/clients", "/clinic/clinicians", "/clinic/documents"):
        tab.goto(base_url + path)
        expect(tab.locator("table tbody tr").first).to_be_visible()
        assert tab.evaluate(BROKEN_WORDS) == [], path
        assert tab.evaluate("document.documentElement.scrollWidth") <= size["width"], path
    tab.goto(f"{base_url}/clinic/clients")
    row = tab.locator("tbody tr", has_text="Alex Morgan")
    phone, email = row.locator('td[data-label="Phone"]'), row.locator('td[data-label="Email"]')
    if size is PHONE:  # stacked: each cell its own line, labelled
        assert phone.bounding_box()["y"] > email.bounding_box()["y"]
        label = phone.evaluate("e => getComputedStyle(e, '::before').content")
        assert label == '"Phone"'
        expect(tab.locator("thead")).to_have_count(1)  # still there for screen readers
    else:  # a table: the cells of a row side by side
        assert phone.bounding_box()["y"] == email.bounding_box()["y"]
    tab.screenshot(path=ARTIFACTS / f"clients-table-{size['width']}.png", full_page=True)
    tab.context.close()
