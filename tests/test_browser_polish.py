"""Finish, in headless Chromium at 1280 and 375 px: a favicon on every page, one font for text
and controls, links in the palette's colours, the Edit and Archive buttons level, a focus ring
wherever the keyboard goes, and after asking for a sign-in link, focus on the message with the
code field next."""
import pytest
from playwright.sync_api import expect

from practice.models import DocumentTemplate, Practice
from tests.conftest import ARTIFACTS
from tests.test_browser_mobile import session_page

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
SIZES = pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["1280", "375"])
ACCENT = "rgb(31, 95, 139)"  # --accent in static/portico.css


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def portal(live_portal, dana):
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy", timezone="Europe/London").execute()
    return app, base_url


def style(locator, prop: str) -> str:
    return locator.evaluate(f"e => getComputedStyle(e).getPropertyValue('{prop}')")


@SIZES
def test_every_page_has_a_favicon_and_one_font(chromium, portal, dana, size):
    app, base_url = portal
    for who, path in ((None, "/sign-in"), (dana, "/clinic/calendar")):
        tab = session_page(chromium, app, base_url, size, **({"clinician": who} if who else {}))
        tab.goto(base_url + path)
        href = tab.locator('link[rel="icon"]').get_attribute("href")
        icon = tab.request.get(base_url + href)
        assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml"), path
        body_font = style(tab.locator("body"), "font-family")
        for control in tab.locator("main button, main input:not([type=hidden])").all():
            assert style(control, "font-family") == body_font, path
        tab.context.close()


@SIZES
def test_links_take_the_palettes_colour(chromium, portal, dana, size):
    app, base_url = portal
    tab = session_page(chromium, app, base_url, size, clinician=dana)
    tab.goto(f"{base_url}/clinic/documents")
    title = tab.get_by_role("link", name="Intake questionnaire")
    assert style(title, "color") == ACCENT
    tab.goto(f"{base_url}/sign-in")
    for link in tab.locator("main a:not(.button)").all():
        assert style(link, "color") == ACCENT, link.inner_text()
    tab.context.close()


@SIZES
def test_edit_and_archive_on_a_document_template_are_level(chromium, portal, dana, size):
    app, base_url = portal
    intake = DocumentTemplate.get(DocumentTemplate.title == "Intake questionnaire")
    tab = session_page(chromium, app, base_url, size, clinician=dana)
    tab.goto(f"{base_url}/clinic/documents/{intake.id}")
    edit = tab.get_by_role("link", name="Edit", exact=True).bounding_box()
    archive = tab.get_by_role("button", name="Archive").bounding_box()
    assert edit["y"] == pytest.approx(archive["y"], abs=0.5)
    assert edit["height"] == pytest.approx(archive["height"], abs=0.5)
    assert style(tab.get_by_role("link", name="Edit", exact=True), "font-size") == \
        style(tab.get_by_role("button", name="Archive"), "font-size")
    tab.screenshot(path=ARTIFACTS / f"document-template-{size['width']}.png")
    tab.context.close()


@SIZES
def test_the_keyboard_focus_is_always_visible(chromium, portal, dana, size):
    app, base_url = portal
    tab = session_page(chromium, app, base_url, size, clinician=dana)
    tab.goto(f"{base_url}/clinic/clients")
    seen = set()
    for _ in range(20):  # the header's links or menu, the filter links, the search, the clients
        tab.keyboard.press("Tab")
        kind, outline, width = tab.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
            return [e.tagName.toLowerCase(), s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        if kind == "body":
            break
        seen.add(kind)
        assert outline != "none" and width >= 2, kind
    assert {"a", "input", "button"} <= seen
    tab.context.close()


@SIZES
@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_after_a_link_is_sent_focus_is_on_the_message_and_the_code_is_next(chromium, portal, size, javascript):
    app, base_url = portal
    from practice.clients import add_client
    add_client("alex@example.com", "Alex Morgan")
    tab = session_page(chromium, app, base_url, size, javascript=javascript)
    tab.goto(f"{base_url}/sign-in")
    tab.get_by_label("Email address").fill("alex@example.com")
    tab.get_by_role("button", name="Continue", exact=True).click()
    message = tab.get_by_role("status").filter(has_text="a sign-in link is on its way")
    expect(message).to_be_focused()
    if javascript:
        assert tab.url == f"{base_url}/sign-in"  # swapped in place by htmx
        # htmx focuses the autofocus element again when its swap settles (20 ms on): a Tab
        # pressed sooner, as no person could, would be undone by it.
        expect(tab.locator(".htmx-settling, .htmx-swapping, .htmx-added")).to_have_count(0)
    tab.keyboard.press("Tab")
    expect(tab.get_by_label("Code from the email")).to_be_focused()
    tab.context.close()
