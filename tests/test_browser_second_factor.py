"""A clinician's second factor in a real browser (headless Debian Chromium): the first sign-in
walks them through an authenticator app, at desktop and phone widths; a passkey made and used
with Chromium's virtual authenticator. The portal runs on `localhost` (WebAuthn refuses IP
addresses)."""
import time

import pyotp
import pytest
from playwright.sync_api import expect

from practice.models import AuditEvent, Clinician, ClinicianPasskey
from tests.conftest import ARTIFACTS, PASSWORD, clinician

pytestmark = [pytest.mark.browser, pytest.mark.second_factor_required]


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def live_portal_host():
    return "localhost"


def sign_in_with_password(page, base_url):
    page.goto(f"{base_url}/clinic/sign-in")
    page.get_by_label("Email").fill("kim@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page):
    menu = page.locator("summary", has_text="Menu")
    if menu.is_visible():  # on a phone the clinician's menu is a disclosure
        menu.click()
    page.get_by_role("button", name="Sign out (Kim Park)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Clinician sign-in")


def fits(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", [1280, 375])
def test_first_sign_in_sets_up_an_authenticator_app_then_a_recovery_code_signs_in(live_portal, chromium, width):
    app, base_url = live_portal
    with app.app_context():
        clinician("kim@example.com", "Kim Park")
    context = chromium.new_context(viewport={"width": width, "height": 800})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    sign_in_with_password(page, base_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up a second factor")
    expect(page.locator("figure.qr svg")).to_be_visible()  # the QR code, drawn inline
    fits(page, width)
    page.screenshot(path=ARTIFACTS / f"second-factor-setup-{width}.png", full_page=True)
    key = page.locator(".totp-key").inner_text().replace(" ", "")
    page.get_by_label("Code").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on the authenticator app").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator("ol.recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    fits(page, width)
    page.screenshot(path=ARTIFACTS / f"second-factor-recovery-codes-{width}.png", full_page=True)
    page.get_by_role("link", name="I have kept them: continue to the calendar").click()
    expect(page).to_have_url(f"{base_url}/clinic/calendar")
    sign_out(page)

    # Next time: the password, then the second step. A code from minutes ago is refused; a
    # recovery code signs in.
    sign_in_with_password(page, base_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("One more step")
    fits(page, width)
    page.screenshot(path=ARTIFACTS / f"second-factor-step-{width}.png", full_page=True)
    page.get_by_label("Code").fill(pyotp.TOTP(key).at(time.time() - 180))
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#code-error")).to_contain_text("That code did not work")
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(f"{base_url}/clinic/calendar")
    expect(page.get_by_text("You used a recovery code: 9 left")).to_be_visible()
    assert errors == []
    context.close()
    with app.app_context():
        kim = Clinician.get(Clinician.email == "kim@example.com")
        assert [e.kind for e in AuditEvent.select().where(
            AuditEvent.clinician == kim, AuditEvent.kind.startswith("second_factor") | (
                AuditEvent.kind == "recovery_code_used")).order_by(AuditEvent.id)] == [
            "second_factor_set_up", "second_factor_failed", "recovery_code_used"]


def test_a_passkey_as_the_second_factor_with_the_virtual_authenticator(live_portal, page):
    app, base_url = live_portal
    with app.app_context():
        clinician("kim@example.com", "Kim Park")
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    sign_in_with_password(page, base_url)
    passkey = page.get_by_role("region", name="Or use a passkey")
    passkey.get_by_role("button", name="Use a passkey on this device").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your second factor")
    expect(page.get_by_text("Now make your recovery codes")).to_be_visible()
    page.get_by_role("button", name="Make new recovery codes").click()
    expect(page.locator("ol.recovery-codes code")).to_have_count(10)
    page.get_by_role("link", name="Continue to the calendar").click()
    sign_out(page)

    sign_in_with_password(page, base_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("One more step")
    page.screenshot(path=ARTIFACTS / "second-factor-passkey-step.png", full_page=True)
    page.get_by_role("button", name="Use my passkey").click()
    expect(page).to_have_url(f"{base_url}/clinic/calendar")
    assert errors == []
    with app.app_context():
        (row,) = ClinicianPasskey.select()
        assert row.sign_count >= 1 and row.last_used_at is not None
