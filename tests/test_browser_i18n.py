"""The sign-in journey in Spanish, in a real browser (headless Debian Chromium): a Spanish
client's browser, the Spanish email, the link, the portal, a dead link and its new link, the
code; and the language switch on the sign-in page with JavaScript off."""
import re

import pytest
from playwright.sync_api import expect

from practice.clients import add_client
from practice.models import Practice
from tests.conftest import ARTIFACTS, code_from, deliver, text_part

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 812}


@pytest.fixture
def database_url(tmp_path):
    """Once, on SQLite: the database rules are tested elsewhere."""
    return f"sqlite:///{tmp_path / 'portico.db'}"


def spanish_page(chromium, **options):
    context = chromium.new_context(locale="es-US", viewport={"width": 1280, "height": 800}, **options)
    context.set_default_timeout(10_000)
    return context, context.new_page()


def link_from(message, base_url):
    return re.search(rf"{re.escape(base_url)}/s/[A-Za-z0-9_\-]+", text_part(message)).group(0)


def test_a_spanish_client_signs_in_in_spanish_dead_link_included(live_portal, chromium, smtp_server):
    app, base_url = live_portal
    Practice.update(name="Willow Street Therapy").execute()
    address = "ana@example.com"
    add_client(address, "Ana García", language="es")
    context, page = spanish_page(chromium)
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    try:
        page.goto(f"{base_url}/sign-in")
        expect(page.locator("html")).to_have_attribute("lang", "es")
        expect(page.get_by_role("heading", level=1)).to_have_text("Entrar a Willow Street Therapy")
        expect(page.get_by_text("Puede guardar esta página en sus favoritos")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "sign-in-es.png", full_page=True)
        page.get_by_label("Correo electrónico").fill(address)
        page.get_by_role("button", name="Continuar", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(
            "Si esa dirección es de un cliente de Willow Street Therapy, ya le estamos enviando un enlace de acceso.")
        expect(page.get_by_role("heading", name="Escriba el código del correo")).to_be_visible()

        deliver(app)
        (mail,) = smtp_server.to(address)
        assert mail["Subject"] == f"{code_from(mail)} es su código para entrar a Willow Street Therapy"
        link = link_from(mail, base_url)

        page.goto(link)
        expect(page.locator("html")).to_have_attribute("lang", "es")
        page.get_by_role("button", name="Entrar al portal").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Hola, Ana García")
        expect(page.get_by_role("heading", name="Próximas citas")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "portal-home-es.png", full_page=True)

        page.get_by_role("button", name="Cerrar sesión").click()
        expect(page.get_by_role("status")).to_have_text("Cerró su sesión.")

        # The used link, on a phone: it says what happened, in Spanish, and sends a new one.
        page.set_viewport_size(PHONE)
        page.goto(link)
        expect(page.get_by_role("heading", level=1)).to_have_text("Este enlace ya no funciona")
        expect(page.locator(".reason")).to_contain_text("Este enlace ya se usó el")
        expect(page.get_by_label("Correo electrónico")).to_have_value(address)
        page.screenshot(path=ARTIFACTS / "link-used-es-phone.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.get_by_role("button", name="Envíenme un enlace nuevo").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Revise su correo")

        deliver(app)
        new_mail = smtp_server.to(address)[-1]
        assert link_from(new_mail, base_url) != link
        page.get_by_label("Código del correo").fill(code_from(new_mail))
        page.get_by_role("button", name="Entrar con el código").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Hola, Ana García")
    finally:
        context.close()
    assert script_errors == []


def test_the_sign_in_pages_language_switch_works_without_javascript(live_portal, chromium):
    app, base_url = live_portal
    context = chromium.new_context(locale="en-US", java_script_enabled=False)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{base_url}/sign-in")
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Portico")
        page.get_by_role("button", name="Español").click()
        expect(page).to_have_url(f"{base_url}/sign-in")
        expect(page.locator("html")).to_have_attribute("lang", "es")
        expect(page.get_by_role("heading", level=1)).to_have_text("Entrar a Portico")
        page.reload()  # remembered
        expect(page.get_by_role("heading", level=1)).to_have_text("Entrar a Portico")
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Portico")
    finally:
        context.close()
