"""Passkeys in a real browser: headless Debian Chromium with its DevTools virtual
authenticator (a platform authenticator with user verification), the portal on `localhost`
(WebAuthn refuses IP addresses)."""
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from practice.clients import add_client, archive_client
from practice.clock import utcnow
from practice.models import Passkey, Session
from practice.sessions import start_session
from tests.conftest import ARTIFACTS, clinician, deliver
from tests.test_accessibility import AXE, Site, check_page
from tests.test_browser import PHONE, latest_mail, link_from

pytestmark = pytest.mark.browser


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'portico.db'}"


@pytest.fixture
def live_portal_host():
    return "localhost"


@pytest.fixture
def authenticator(page):
    """Chromium's virtual authenticator, as a phone's or laptop's built-in one."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
        "isUserVerified": True, "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


# Chromium's virtual authenticator answers a conditional (autofill) request at once, where a
# person would pick the passkey from the field's suggestions: a test of the button turns
# autofill off, as in a browser without it.
NO_AUTOFILL = ("if (window.PublicKeyCredential) "
               "PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);")


def link_sign_in(page, app, smtp_server, base_url, address, count):
    page.goto(f"{base_url}/sign-in")
    page.get_by_label("Email address").fill(address)
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(page.get_by_role("heading", name="Enter the code from the email")).to_be_visible()
    deliver(app)
    page.goto(link_from(latest_mail(smtp_server, address, count), base_url))
    page.get_by_role("button", name="Continue to the portal").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Alex Morgan")


def test_register_after_a_link_then_sign_in_with_the_passkey_time_out_and_remove_it(
        live_portal, page, authenticator, smtp_server):
    app, base_url = live_portal
    address = "alex@example.com"
    alex = add_client(address, "Alex Morgan")
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.add_init_script(NO_AUTOFILL)

    # After a link sign-in the portal offers a passkey; the device's lock makes one.
    link_sign_in(page, app, smtp_server, base_url, address, 1)
    offer = page.get_by_role("region", name="Sign in faster next time")
    expect(offer).to_be_visible()
    page.screenshot(path=ARTIFACTS / "passkey-offer.png", full_page=True)
    offer.get_by_role("button", name="Use a passkey on this device").click()
    expect(offer.get_by_text("Passkey saved")).to_be_visible()
    cdp, authenticator_id = authenticator
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]
    assert Passkey.select().where(Passkey.client == alex).count() == 1
    page.reload()
    expect(page.get_by_role("heading", name="Sign in faster next time")).to_have_count(0)  # once per device

    # Sign out, and back in with the passkey alone: no email.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base_url}/sign-in")
    page.screenshot(path=ARTIFACTS / "passkey-sign-in.png", full_page=True)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Alex Morgan")
    expect(page).to_have_url(f"{base_url}/portal")
    assert len(smtp_server.to(address)) == 1

    # Timed out: the sign-in page offers the passkey first, and it is two clicks back in.
    live = Session.get(Session.ended_at.is_null())
    Session.update(last_seen_at=live.last_seen_at - timedelta(minutes=16)).where(Session.id == live.id).execute()
    page.reload()
    expect(page.get_by_role("status")).to_contain_text("signed out after a period of inactivity")
    expect(page.get_by_text("You have a passkey for")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "passkey-timeout.png", full_page=True)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Alex Morgan")

    # The list of passkeys, on a phone too; removing it means it signs nobody in.
    page.get_by_role("link", name="Your passkeys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your passkeys")
    expect(page.get_by_text("Last used: Not yet")).to_have_count(0)  # it has been used
    page.screenshot(path=ARTIFACTS / "passkeys.png", full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=ARTIFACTS / "passkeys-phone.png", full_page=True)
    page.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_text("That passkey did not sign you in.")).to_be_visible()
    expect(page).to_have_url(f"{base_url}/sign-in")
    page.screenshot(path=ARTIFACTS / "passkey-refused-phone.png", full_page=True)

    assert script_errors == []


def test_the_email_field_offers_the_passkey_as_autofill(live_portal, page, authenticator, smtp_server):
    app, base_url = live_portal
    address = "alex@example.com"
    add_client(address, "Alex Morgan")
    link_sign_in(page, app, smtp_server, base_url, address, 1)
    page.get_by_role("button", name="Use a passkey on this device").click()
    expect(page.get_by_text("Passkey saved")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    # The sign-in page's conditional request, answered by the authenticator: signed in, no email.
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Alex Morgan")
    expect(page).to_have_url(f"{base_url}/portal")
    assert len(smtp_server.to(address)) == 1


def revealed(path: str, heading: str):
    """A visit that opens `path` and shows what the script shows where WebAuthn is there, so
    that axe and the phone check see the passkey parts too."""

    def visit(tab, site):
        tab.goto(site.base + path)
        expect(tab.get_by_role("heading", level=1)).to_contain_text(heading)
        tab.evaluate("document.querySelectorAll('[data-passkey-offer], [data-passkey-signin]')"
                     ".forEach(element => { element.hidden = false; })")

    return visit


def test_every_passkey_page_passes_the_accessibility_audit(live_portal, chromium):
    if not AXE.exists():
        pytest.skip("axe-core is not installed (npm ci)")
    app, base_url = live_portal
    alex = add_client("alex@example.com", "Alex Morgan")
    Passkey.create(client=alex, credential_id="abc", public_key="def", device="Safari on iOS", created_at=utcnow())
    dana = clinician("dana@example.com", "Dana Hale", is_admin=True)
    site = Site(app, base_url, chromium)
    site.cookies["client"] = start_session(client=alex)[0]
    site.cookies["clinician"] = start_session(clinician=dana)[0]
    pages = {
        "passkey-sign-in": ("anon", revealed("/sign-in", "Sign in to")),
        "passkey-offer": ("client", revealed("/portal", "Hello, Alex Morgan")),
        "passkeys": ("client", revealed("/portal/passkeys", "Your passkeys")),
        "client-page-passkeys": ("clinician", revealed(f"/clinic/clients/{alex.id}", "Alex Morgan")),
    }
    try:
        problems = {name: check_page(site, name, who, visit) for name, (who, visit) in pages.items()}
    finally:
        for context in site.contexts.values():
            context.close()
    assert problems == {name: [] for name in pages}


def test_an_archived_clients_passkey_is_refused(live_portal, page, authenticator, smtp_server):
    app, base_url = live_portal
    address = "alex@example.com"
    alex = add_client(address, "Alex Morgan")
    page.add_init_script(NO_AUTOFILL)
    link_sign_in(page, app, smtp_server, base_url, address, 1)
    page.get_by_role("button", name="Use a passkey on this device").click()
    expect(page.get_by_text("Passkey saved")).to_be_visible()
    archive_client(alex)
    page.reload()
    expect(page.get_by_role("status")).to_contain_text("Your access to the portal has ended")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_text("That passkey did not sign you in.")).to_be_visible()
    expect(page).to_have_url(f"{base_url}/sign-in")
    assert Session.select().where(Session.ended_at.is_null()).count() == 0
