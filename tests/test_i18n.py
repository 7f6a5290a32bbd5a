"""Clients read Portico in their own language (issue 15): English and Spanish pages, emails,
reminders and calendar entries; the catalogs complete and up to date with the code."""
import html
import json
import re
from datetime import datetime, timedelta

import pytest
from babel.messages.checkers import python_format
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from icalendar import Calendar

from portico.catalog import CLINIC_POT, ROOT, TRANSLATIONS, extract, extract_clinic
from practice import jobs
from practice.appointments import create_appointment
from practice.clients import add_client
from practice.models import Client, Email, db
from practice.telehealth import join_token
from tests.conftest import (CSRF_INPUT, ask_for_link, clinic_csrf, clinic_sign_in, code_from, continue_with,
                            csrf_token, deliver, mailed_link, text_part)

TEMPLATES = ROOT / "templates"
# The developer's mailbox (dev only, never a practice's) is English and outside the catalogs.
UNCATALOGUED_TEMPLATES = {"dev_mailbox.html", "dev_message.html"}
# Attributes whose value a person reads or hears.
READ_ATTRIBUTES = ("aria-label", "aria-description", "title", "placeholder", "alt", "hx-confirm")
SPANISH_PO = TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po"
SPANISH_MO = SPANISH_PO.with_suffix(".mo")
SPANISH_BROWSER = {"Accept-Language": "es-US,es;q=0.9,en;q=0.5"}
ENGLISH_BROWSER = {"Accept-Language": "en-GB,en;q=0.9"}


def read_catalog(path):
    with open(path, "rb") as handle:
        return read_mo(handle) if path.suffix == ".mo" else read_po(handle)


def ids(catalog) -> set:
    return {message.id for message in catalog if message.id}


def page_language(html: str) -> str:
    return re.search(r'<html lang="([^"]+)"', html).group(1)


def words(html: str) -> str:
    """The page's text, as a person reads it (tags gone, spaces collapsed)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def plain(message) -> str:
    return text_part(message).replace("\r\n", "\n")


def html_part(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def ics_of(message) -> Calendar:
    (attached,) = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    content = attached.get_content()
    return Calendar.from_ical(content if isinstance(content, str) else content.decode())


@pytest.fixture
def ana(app):
    return add_client("ana@example.com", "Ana García", language="es")


# ---- the catalogs -------------------------------------------------------------------------

def words_outside_gettext(source: str) -> list:
    """The words a template shows that no _() or {% trans %} carries: what would stay English."""
    text = re.sub(r"{#.*?#}", " ", source, flags=re.S)
    text = re.sub(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", " ", text, flags=re.S)
    text = re.sub(r"{{.*?}}|{%.*?%}", " ", text, flags=re.S)
    text = re.sub(r"<(style|script)\b.*?</\1\s*>|<!--.*?-->", " ", text, flags=re.S | re.I)
    read = re.findall(r'\s(?:%s)="([^"]*)"' % "|".join(READ_ATTRIBUTES), text)
    text = re.sub(r"<[^>]*>|&#?\w+;|[\w-]+=(?=[\"'])", " ", text, flags=re.S)
    return re.findall(r"[A-Za-z]{2,}", " ".join([text, *read]))


def test_the_word_check_finds_words_outside_gettext():
    assert words_outside_gettext('<p title="Open it">{{ _("Hi") }} there</p>') == ["there", "Open", "it"]
    assert words_outside_gettext('{% trans n=1 %}{{ n }} day{% pluralize %}days{% endtrans %}'
                                 '<a aria-label="{{ _(\'Go\') }}" href="/x">&nbsp;</a>') == []


@pytest.mark.parametrize("template", sorted(
    str(path.relative_to(TEMPLATES)) for pattern in ("**/*.html", "**/*.txt") for path in TEMPLATES.glob(pattern)
    if path.name not in UNCATALOGUED_TEMPLATES))
def test_every_word_a_template_shows_goes_through_gettext(template):
    """Clients' pages and emails in their language; the clinician side's words in its own
    catalog, ready to translate (English for now)."""
    assert words_outside_gettext((TEMPLATES / template).read_text()) == []


@pytest.mark.parametrize("extractor, catalog, found_at_least", [
    (extract, SPANISH_PO, 250),  # what clients read, in Spanish
    (extract_clinic, CLINIC_POT, 300),  # the clinician side's template: English for now
], ids=["clients", "clinic"])
def test_each_catalog_has_every_msgid_of_its_templates_and_code(tmp_path, extractor, catalog, found_at_least):
    """Fails when text was added or changed without `python portal.py translations`."""
    pot = tmp_path / "extracted.pot"
    extractor(pot)
    in_code, in_catalog = ids(read_catalog(pot)), ids(read_catalog(catalog))
    assert in_code - in_catalog == set(), "new text: run `python portal.py translations` (and translate it)"
    assert in_catalog - in_code == set(), "the catalog keeps text the code no longer has"
    assert len(in_code) > found_at_least  # the scan found the templates and the code


def test_every_msgid_has_a_spanish_translation_with_all_its_plural_forms_and_placeholders():
    catalog = read_catalog(SPANISH_PO)
    assert catalog.num_plurals == 3  # CLDR's Spanish: one, many (millions), other
    untranslated, broken = [], []
    for message in catalog:
        if not message.id:
            continue
        forms = message.string if message.pluralizable else (message.string,)
        if message.fuzzy or len(forms) != catalog.num_plurals ** message.pluralizable or not all(
                form and form.strip() for form in forms):
            untranslated.append(message.id)
        try:
            python_format(catalog, message)  # the same %(name)s placeholders as the English
        except Exception as error:  # babel's TranslationError
            broken.append(f"{message.id!r}: {error}")
        english = message.id if isinstance(message.id, tuple) else (message.id,)
        if any("{name}" in text for text in english) != all("{name}" in form for form in forms):
            broken.append(f"{message.id!r}: the script's {{name}} placeholder")
    assert untranslated == [] and broken == []


def test_the_compiled_catalog_is_the_spanish_po_compiled():
    """The .mo the app reads is committed (a fresh install has it) and matches the .po."""
    po, mo = read_catalog(SPANISH_PO), read_catalog(SPANISH_MO)
    def entries(catalog):
        as_tuple = lambda value: tuple(value) if isinstance(value, (list, tuple)) else value  # noqa: E731
        return {as_tuple(m.id): as_tuple(m.string) for m in catalog if m.id}
    assert entries(po) == entries(mo)


# ---- which language ---------------------------------------------------------------------

def test_the_sign_in_page_follows_the_browser_before_anyone_is_signed_in(client):
    spanish = client.get("/sign-in", headers=SPANISH_BROWSER).get_data(as_text=True)
    assert page_language(spanish) == "es"
    assert "Entrar a Portico" in words(spanish)
    assert "Puede guardar esta página en sus favoritos: siempre es la forma de entrar." in words(spanish)
    english = client.get("/sign-in", headers=ENGLISH_BROWSER)
    assert page_language(english.get_data(as_text=True)) == "en"
    assert "Sign in to Portico" in words(english.get_data(as_text=True))
    assert "Accept-Language" in english.headers["Vary"]


def test_the_language_switch_works_without_javascript_and_is_remembered(client):
    page = client.get("/sign-in", headers=ENGLISH_BROWSER).get_data(as_text=True)
    switch = re.search(r'<form class="language-switch".*?</form>', page, re.S).group(0)
    assert 'action="/language"' in switch and 'name="language" value="es"' in switch
    token = CSRF_INPUT.search(switch).group(1)

    answer = client.post("/language", data={"language": "es", "next": "/sign-in", "csrf_token": token},
                         headers=ENGLISH_BROWSER)

    assert answer.status_code == 303 and answer.headers["Location"] == "/sign-in"
    again = client.get("/sign-in", headers=ENGLISH_BROWSER).get_data(as_text=True)  # the cookie wins
    assert page_language(again) == "es" and "Entrar a Portico" in words(again)
    assert '<span class="current" lang="es" aria-current="true">Español</span>' in again
    code_page = client.get("/sign-in/code", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert "Entrar con un código" in words(code_page)


@pytest.mark.parametrize("form, status", [
    ({"language": "es", "next": "/sign-in"}, 400),  # no CSRF token
    ({"language": "fr", "next": "/sign-in"}, 400),  # not a language we ship
])
def test_the_language_switch_refuses_what_it_cannot_take(client, form, status):
    answer = client.post("/language", data=form)
    assert answer.status_code == status
    assert "portico_language" not in answer.headers.get("Set-Cookie", "")


def test_the_language_switch_goes_back_only_to_this_portal(client):
    answer = client.post("/language", data={"language": "es", "next": "//evil.example/x",
                                            "csrf_token": csrf_token(client)})
    assert answer.headers["Location"] == "/sign-in"


def test_a_signed_in_client_changes_their_own_language_on_the_portal_and_their_email_follows(
        app, client, smtp_server):
    add_client("alex@example.com", "Alex Morgan")
    continue_with(client, mailed_link(app, client, smtp_server))
    home = client.get("/portal", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert "Hello, Alex Morgan" in words(home)

    client.post("/language", data={"language": "es", "next": "/portal", "csrf_token": CSRF_INPUT.search(home).group(1)})

    home = client.get("/portal", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert page_language(home) == "es" and "Hola, Alex Morgan" in words(home) and "Próximas citas" in words(home)
    with app.app_context(), db.connection_context():
        assert Client.by_email("alex@example.com").language == "es"
    other_browser = app.test_client()
    ask_for_link(other_browser, "alex@example.com", **ENGLISH_BROWSER)
    deliver(app)
    assert smtp_server.to("alex@example.com")[-1]["Subject"].endswith(" es su código para entrar a Portico")


def test_the_clinician_sets_a_clients_language_and_the_clinic_stays_english(app, client, dana):
    add_client("alex@example.com", "Alex Morgan")
    clinic_sign_in(client, "dana@example.com")
    with app.app_context(), db.connection_context():
        alex = Client.by_email("alex@example.com")
    form = client.get(f"/clinic/clients/{alex.id}/edit", headers=SPANISH_BROWSER).get_data(as_text=True)
    assert page_language(form) == "en" and '<option value="es">Español</option>' in form

    client.post(f"/clinic/clients/{alex.id}/edit", data={
        "name": "Alex Morgan", "email": "alex@example.com", "phone": "", "timezone": "", "language": "es",
        "clinician": dana.id, "csrf_token": clinic_csrf(client)})

    with app.app_context(), db.connection_context():
        assert Client.by_email("alex@example.com").language == "es"
    calendar = client.get("/clinic/calendar", headers=SPANISH_BROWSER).get_data(as_text=True)
    assert page_language(calendar) == "en"


# ---- sign-in mail and pages -------------------------------------------------------------

def test_a_spanish_client_gets_a_spanish_sign_in_email_with_spanish_dates(app, client, ana, smtp_server, traveller):
    ask_for_link(client, "ana@example.com", **ENGLISH_BROWSER)  # the client's setting, not the browser's
    deliver(app)
    (message,) = smtp_server.to("ana@example.com")
    code = code_from(message)
    assert message["Subject"] == f"{code} es su código para entrar a Portico"
    with app.app_context(), db.connection_context():  # kept with the code masked, as an English one is
        assert Email.get(Email.client == ana.id).subject == "•••••• es su código para entrar a Portico"
    text = plain(message)
    assert text.startswith("Hola, Ana García:\n\nEste es su enlace para entrar al portal de clientes de Portico:")
    assert "Funciona una sola vez, durante 24 horas (hasta el mar, 3 mar 2026, 9:00 UTC)" in text
    assert "¿Va a entrar desde otro dispositivo? Vaya allí a http://portal.test/sign-in/code" in text
    assert '<html lang="es">' in html_part(message) and "Entrar al portal" in html_part(message)


def test_an_english_clients_sign_in_email_is_unchanged(app, client, smtp_server, traveller):
    add_client("alex@example.com", "Alex Morgan")
    ask_for_link(client, "alex@example.com", **SPANISH_BROWSER)
    deliver(app)
    (message,) = smtp_server.to("alex@example.com")
    assert message["Subject"] == f"{code_from(message)} is your sign-in code for Portico"
    text = plain(message)
    assert text.startswith("Hello Alex Morgan,\n\nHere is your link to sign in to Portico's client portal:")
    assert "It works once, for 24 hours (until Tue 3 Mar 2026, 9:00 AM UTC), and it replaces" in text
    assert '<html lang="en">' in html_part(message)


def test_no_sign_in_email_goes_to_an_address_the_practice_does_not_know_in_any_language(
        app, client, ana, smtp_server):
    answer = ask_for_link(client, "stranger@example.com", **SPANISH_BROWSER)
    assert "ya le estamos enviando un enlace de acceso" in words(answer.get_data(as_text=True))
    deliver(app)
    assert smtp_server.to("stranger@example.com") == []


def test_a_spanish_clients_link_pages_are_in_spanish_dead_link_included(app, client, ana, smtp_server, traveller):
    token = mailed_link(app, client, smtp_server, "ana@example.com")
    browser = app.test_client()  # another device, whose browser says English
    opened = browser.get(f"/s/{token}", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert page_language(opened) == "es" and "Entrar al portal" in opened
    assert "Este enlace funciona una sola vez. Al pulsar el botón, entrará al portal." in words(opened)
    continue_with(browser, token)

    traveller.shift(3600)
    dead = app.test_client().get(f"/s/{token}", headers=ENGLISH_BROWSER)

    assert dead.status_code == 410
    page = dead.get_data(as_text=True)
    assert page_language(page) == "es"
    assert "Este enlace ya no funciona" in words(page)
    assert "Este enlace ya se usó el lun, 2 mar 2026, 9:00 UTC. Cada enlace le da acceso una sola vez." in words(page)
    assert "Envíenme un enlace nuevo" in page and 'value="ana@example.com"' in page


def test_an_unknown_link_says_so_in_the_browsers_language(client):
    page = client.get("/s/not-a-real-link", headers=SPANISH_BROWSER)
    assert page.status_code == 404
    assert page_language(page.get_data(as_text=True)) == "es"
    assert "No reconocemos este enlace" in words(page.get_data(as_text=True))


def test_error_pages_a_client_can_meet_are_in_their_language(client):
    page = client.get("/no-such-page", headers=SPANISH_BROWSER).get_data(as_text=True)
    assert page_language(page) == "es"
    assert "No encontramos esta página" in words(page) and "Ir a la página de acceso" in words(page)


# ---- reminders and their calendar entries -----------------------------------------------

def remind(app, dana, client, traveller, kind="telehealth", hours_before=23):
    """Book Tue 10 Mar 2026, 3:00 PM UTC, then run the ticks a day (or `hours_before`) before it."""
    start = datetime(2026, 3, 10, 15, 0)
    with app.app_context(), db.connection_context():
        create_appointment(clinician=dana, client=client, starts_at=start, ends_at=start + timedelta(minutes=50),
                           kind=kind)
    traveller.move_to(start - timedelta(hours=hours_before))
    with app.app_context():
        jobs.reminder_tick()
        jobs.mail_tick()


def test_a_spanish_client_gets_spanish_reminders_subject_body_and_calendar_entry(
        app, dana, ana, smtp_server, traveller):
    remind(app, dana, ana, traveller)
    message = smtp_server.to("ana@example.com")[-1]
    assert message["Subject"] == "Recordatorio: su cita del martes, 10 de marzo, 15:00"
    text = plain(message)
    assert text.startswith("Hola, Ana García:\n\nLe recordamos su cita con Portico:")
    assert "    martes, 10 de marzo de 2026\n    15:00 – 15:50 UTC\n    Con Dana Hale (telesalud)" in text
    assert "Únase a la sesión por video con este enlace" in text and "Le adjuntamos un archivo de calendario." in text
    assert '<html lang="es">' in html_part(message)
    event = ics_of(message).walk("VEVENT")[0]
    assert str(event["summary"]) == "Cita con Portico"
    assert str(event["description"]).startswith("Unirse a la sesión por video: http://portal.test/t/")


def test_an_english_clients_reminders_are_unchanged(app, dana, smtp_server, traveller):
    alex = add_client("alex@example.com", "Alex Morgan")
    remind(app, dana, alex, traveller)
    message = smtp_server.to("alex@example.com")[-1]
    assert message["Subject"] == "Reminder: your appointment on Tue 10 Mar at 3:00 PM"
    text = plain(message)
    assert "    Tuesday 10 March 2026\n    3:00 PM – 3:50 PM UTC\n    With Dana Hale (telehealth)" in text
    event = ics_of(message).walk("VEVENT")[0]
    assert str(event["summary"]) == "Appointment with Portico"
    assert str(event["description"]).startswith("Join the video session: http://portal.test/t/")


def test_a_spanish_clients_portal_shows_spanish_dates(app, client, dana, ana, smtp_server, traveller):
    start = datetime(2026, 3, 10, 15, 0)
    with app.app_context(), db.connection_context():
        create_appointment(clinician=dana, client=ana, starts_at=start, ends_at=start + timedelta(minutes=50),
                           kind="telehealth")
    continue_with(client, mailed_link(app, client, smtp_server, "ana@example.com"))
    home = words(client.get("/portal", headers=ENGLISH_BROWSER).get_data(as_text=True))
    assert "mar, 10 mar 2026, 15:00 – 15:50 UTC" in home
    assert "Telesalud con Dana Hale" in home and "Puede unirse a partir del mar, 10 mar 2026, 14:45 UTC" in home


def test_a_spanish_clients_video_page_and_its_scripts_words_are_spanish(app, client, dana, ana, traveller):
    start = datetime(2026, 3, 2, 9, 10)
    with app.app_context(), db.connection_context():
        appointment = create_appointment(clinician=dana, client=ana, starts_at=start,
                                         ends_at=start + timedelta(minutes=50), kind="telehealth")
        token = join_token(appointment)
    page = client.get(f"/t/{token}", headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert page_language(page) == "es"
    assert "Sesión por video con Dana Hale" in words(page) and "Unirse" in words(page)
    check = json.loads(html.unescape(re.search(r"data-text='([^']+)'", page).group(1)))
    assert check["starting"] == "Encendiendo su cámara y su micrófono…"
    assert check["not_allowed"].startswith("Su navegador no permitió")


def test_mail_a_clinicians_request_queues_for_a_spanish_client_is_spanish(app, dana, ana, smtp_server, traveller):
    """Booked from a clinician's (English) page: the notice is still in the client's language."""
    start = datetime(2026, 3, 2, 15, 0)
    with app.test_request_context("/clinic/calendar"), db.connection_context():
        create_appointment(clinician=dana, client=ana, starts_at=start, ends_at=start + timedelta(minutes=50))
    deliver(app)
    (message,) = smtp_server.to("ana@example.com")
    assert message["Subject"] == "Confirmada: su cita del lunes, 2 de marzo, 15:00"
    assert "Su cita con Portico está confirmada:" in plain(message)


def test_a_form_error_on_the_sign_in_page_is_in_the_pages_language(client):
    answer = client.post("/sign-in", data={"email": "not an address", "csrf_token": csrf_token(client)},
                         headers=SPANISH_BROWSER)
    assert answer.status_code == 422
    assert "Eso no parece una dirección de correo. Por favor, revísela e inténtelo de nuevo." in words(
        answer.get_data(as_text=True))


def test_pages_that_are_not_translated_say_they_are_english(make_app):
    app = make_app(MAIL_SERVER=None)  # the dev mailbox is there
    page = app.test_client().get("/dev/mailbox", headers=SPANISH_BROWSER).get_data(as_text=True)
    assert page_language(page) == "en"


def test_a_spanish_client_is_told_they_signed_out_in_spanish_unless_this_browser_chose(
        app, client, ana, smtp_server):
    continue_with(client, mailed_link(app, client, smtp_server, "ana@example.com"))
    home = client.get("/portal", headers=ENGLISH_BROWSER).get_data(as_text=True)
    signed_out = client.post("/sign-out", data={"csrf_token": CSRF_INPUT.search(home).group(1)},
                             follow_redirects=True, headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert page_language(signed_out) == "es" and "Cerró su sesión." in words(signed_out)
    client.post("/language", data={"language": "en", "next": "/sign-in", "csrf_token": CSRF_INPUT.search(
        signed_out).group(1)})
    assert page_language(client.get("/sign-in").get_data(as_text=True)) == "en"


def test_a_spanish_client_reschedules_in_spanish_from_a_spanish_reminder(app, client, dana, ana, smtp_server, traveller):
    from practice.availability import save_hours
    save_hours(dana, {day: [("09:00", "17:00")] for day in range(5)}, [])
    remind(app, dana, ana, traveller, hours_before=48)  # online changes are open until 24 hours before
    message = smtp_server.to("ana@example.com")[-1]
    assert "¿Necesita cambiarla? Cambie la hora o cancele aquí: http://portal.test/a/" in plain(message)
    link = re.search(r"http://portal\.test(/a/[A-Za-z0-9._\-]+\?via=[a-z_]+)", plain(message)).group(1)

    page = client.get(link, headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert page_language(page) == "es"
    assert "Su cita" in words(page) and "Elegir otra hora" in words(page) and "Cancelar la cita" in words(page)
    times = client.get(link.replace("?", "/times?"), headers=ENGLISH_BROWSER).get_data(as_text=True)
    assert "Las horas están en UTC. Cada cita dura 50 minutos." in words(times)
    assert re.search(r"<h3>(lunes|martes|miércoles|jueves|viernes), \d+ de \w+ de 2026</h3>", times)


def test_the_clinicians_notice_of_a_spanish_clients_change_stays_english(app, client, dana, ana, smtp_server, traveller):
    from practice.availability import save_hours
    from tests.test_online_changes import pick
    save_hours(dana, {day: [("09:00", "17:00")] for day in range(5)}, [])
    remind(app, dana, ana, traveller, hours_before=48)
    link = re.search(r"http://portal\.test(/a/[A-Za-z0-9._\-]+\?via=[a-z_]+)",
                     plain(smtp_server.to("ana@example.com")[-1])).group(1)

    times = client.get(link.replace("?", "/times?")).get_data(as_text=True)
    first = datetime.strptime(re.search(r"start=(\d{8}T\d{4})", times).group(1), "%Y%m%dT%H%M")
    assert pick(client, link, first).status_code == 303  # from a Spanish page
    deliver(app)

    notice = smtp_server.to("dana@example.com")[-1]
    assert notice["Subject"] == f"Ana García moved their appointment to {first:%a %-d %b at %-I:%M %p}"
    assert "Was: Tue 10 Mar 2026, 3:00 PM – 3:50 PM UTC" in plain(notice)
    assert '<html lang="en">' in html_part(notice)
