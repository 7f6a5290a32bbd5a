"""Pages that must look finished, in headless Chromium at 1280 and 375 px: settings, a client's
page, the dev mailbox."""
import pytest
from playwright.sync_api import expect

from practice.models import Clinician, Practice
from practice.sessions import start_session
from tests.conftest import ARTIFACTS, clinician

pytestmark = pytest.mark.browser

WIDTHS = [1280, 375]


@pytest.fixture
def database_url(tmp_path):
    """Once, on SQLite: what a page looks like does not depend on the database."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def as_admin(live_portal, chromium):
    """A tab of a signed-in admin at a given width: as_admin(width) -> (page, base_url)."""
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy", timezone="Europe/London", contact_email="hello@willow.example").execute()
    dana = Clinician.get_or_none(Clinician.email == "dana@example.com") or clinician(
        "dana@example.com", "Dana Hale", is_admin=True)
    contexts = []

    def open_tab(width):
        context = chromium.new_context(viewport={"width": width, "height": 800})
        context.set_default_timeout(10_000)
        context.add_cookies([{"name": app.config["PORTAL_SESSION_COOKIE"], "value": start_session(clinician=dana)[0],
                              "url": base_url}])
        contexts.append(context)
        return context.new_page(), base_url

    yield open_tab
    for context in contexts:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_settings_inputs_share_one_height_and_the_zone_list_reads_as_words(as_admin, width):
    page, base = as_admin(width)
    page.goto(f"{base}/clinic/settings")
    heights = {name: page.locator(f"[name={name}]").bounding_box()["height"]
               for name in ("name", "timezone", "sign_in_link_hours", "client_idle_minutes", "quiet_hours_start")}
    assert max(heights.values()) - min(heights.values()) <= 2, heights
    zone = page.get_by_label("Time zone")
    expect(zone.locator("optgroup").first).to_have_attribute("label", "Common time zones")
    expect(zone.locator("option[value='America/New_York']")).to_have_text("Eastern Time — New York")
    assert zone.locator("option[value='Factory'], option[value='localtime'], option[value^='Etc/']").count() == 0
    expect(page.get_by_label("Sign-in link lifetime")).to_have_value("24")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=ARTIFACTS / f"settings-{width}.png", full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_a_settings_error_is_summarised_at_the_top_focused_and_linked_to_its_field(as_admin, width):
    page, base = as_admin(width)
    page.goto(f"{base}/clinic/settings")
    page.get_by_label("Quiet hours end").fill("8am")
    page.get_by_role("button", name="Save settings").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_be_focused()
    assert summary.bounding_box()["y"] < 800  # on the first screen, whatever the field's place
    summary.get_by_role("link", name="Use a 24-hour time like 21:00.").click()
    expect(page.get_by_label("Quiet hours end")).to_be_focused()
    page.screenshot(path=ARTIFACTS / f"settings-error-{width}.png", full_page=False)
