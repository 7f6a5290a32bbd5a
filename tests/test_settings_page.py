"""The settings page in the units people think in, with a time-zone list a person can read and
an error summary at the top; the setup page says what a password needs before refusing one."""
import re

import pytest

from practice.models import AuditEvent, Practice
from practice.zones import zone_choices, zone_label
from tests.conftest import clinic_csrf, clinic_sign_in
from tests.test_clinic_access import SETTINGS

pytestmark = pytest.mark.usefixtures("traveller")


def settings_page(client) -> str:
    return client.get("/clinic/settings").get_data(as_text=True)


def test_the_sign_in_link_lifetime_is_shown_and_typed_in_hours_and_stored_in_minutes(client, dana):
    clinic_sign_in(client, "dana@example.com")
    assert re.search(r'<input[^>]*name="sign_in_link_hours"[^>]*value="24"', settings_page(client))
    response = client.post("/clinic/settings", data=dict(SETTINGS, sign_in_link_hours="1.5",
                                                         csrf_token=clinic_csrf(client)))
    assert response.status_code == 303
    assert Practice.current().sign_in_link_minutes == 90
    assert re.search(r'name="sign_in_link_hours"[^>]*value="1.5"', settings_page(client))
    assert "sign_in_link_minutes: 1440 -> 90" in [e.detail for e in AuditEvent.select()]


def test_the_zone_list_has_common_zones_first_by_region_and_no_junk(client, dana):
    clinic_sign_in(client, "dana@example.com")
    page = settings_page(client)
    select = page.split('name="timezone"', 1)[1].split("</select>", 1)[0]
    groups = re.findall(r'<optgroup label="([^"]+)">', select)
    assert groups[0] == "Common time zones" and {"America", "Europe", "Asia", "Africa", "Pacific"} <= set(groups)
    assert '<option value="America/New_York">Eastern Time — New York</option>' in select
    values = re.findall(r'<option[^>]*value="([^"]+)"', select)
    for junk in ("Factory", "localtime", "Etc/GMT+5", "US/Eastern", "EST5EDT", "posixrules", "Asia/Calcutta"):
        assert junk not in values
    assert len(values) == len(set(values)) > 400  # every real zone, each once
    assert "Asia/Kolkata" in values and "America/Argentina/Buenos_Aires" in values and "Europe/Kyiv" in values


def test_a_zone_chosen_before_the_list_was_curated_stays_chosen(client, dana):
    Practice.update(timezone="US/Eastern").execute()
    clinic_sign_in(client, "dana@example.com")
    assert re.search(r'<option selected value="US/Eastern">|<option value="US/Eastern" selected>', settings_page(client))
    response = client.post("/clinic/settings", data=dict(SETTINGS, timezone="US/Eastern", csrf_token=clinic_csrf(client)))
    assert response.status_code == 303 and Practice.current().timezone == "US/Eastern"
    refused = client.post("/clinic/settings", data=dict(SETTINGS, timezone="Factory", csrf_token=clinic_csrf(client)))
    assert refused.status_code == 422


def test_zone_labels_are_words():
    assert zone_label("America/New_York") == "Eastern Time — New York"
    assert zone_label("Europe/London") == "British Time — London"
    assert "Current setting" not in zone_choices("Europe/London")


def test_an_error_summary_at_the_top_links_to_each_wrong_field(client, dana):
    clinic_sign_in(client, "dana@example.com")
    response = client.post("/clinic/settings", data=dict(SETTINGS, client_idle_minutes="4", quiet_hours_end="8am",
                                                         csrf_token=clinic_csrf(client)))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    summary = page.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    assert page.index('class="error-summary"') < page.index('action="/clinic/settings"')
    assert 'role="alert"' in summary and "autofocus" in summary
    assert re.findall(r'<a href="#(\w+)">([^<]+)</a>', summary) == [
        ("client_idle_minutes", "Choose from 5 to 60 minutes."), ("quiet_hours_end", "Use a 24-hour time like 21:00.")]
    assert re.search(r'<input[^>]*aria-describedby="client_idle_minutes-hint client_idle_minutes-error"', page)
    assert 'class="error-summary"' not in settings_page(client)


def test_the_setup_page_says_how_long_a_password_must_be_before_refusing_one(client):
    page = client.get("/clinic/setup").get_data(as_text=True)
    password = re.search(r'<input[^>]*name="password"[^>]*>', page)[0]
    assert 'minlength="12"' in password and 'aria-describedby="password-hint"' in password
    assert re.search(r'<p class="hint" id="password-hint">At least 12 characters', page)


# ---- the practice's logo, beside its name in every header -------------------------------------

import io  # noqa: E402

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="32"><rect width="64" height="32" fill="#1f5f8b"/></svg>'


def upload(client, data, name="logo.png", **extra):
    return client.post("/clinic/settings/logo", content_type="multipart/form-data", data={
        "logo": (io.BytesIO(data), name), "csrf_token": clinic_csrf(client), **extra})


def test_a_logo_uploaded_in_settings_heads_the_client_and_clinician_pages_beside_the_name(client, dana):
    Practice.update(name="Willow Street Therapy").execute()
    clinic_sign_in(client, "dana@example.com")
    assert 'class="logo"' not in settings_page(client)
    response = upload(client, PNG)
    assert response.status_code == 303
    version = Practice.current().logo_version
    assert version
    for path in ("/clinic/settings", "/clinic/clients"):
        header = client.get(path).get_data(as_text=True).split("</header>")[0]
        assert f'<img class="logo" src="/logo/{version}" alt=""' in header and "Willow Street Therapy" in header
    signed_out = client.application.test_client()
    header = signed_out.get("/sign-in").get_data(as_text=True).split("</header>")[0]
    assert f'src="/logo/{version}"' in header and "Willow Street Therapy" in header
    image = signed_out.get(f"/logo/{version}")
    assert (image.status_code, image.mimetype, image.data) == (200, "image/png", PNG)
    assert "immutable" in image.headers["Cache-Control"]
    assert "logo: new PNG" in AuditEvent.select().order_by(AuditEvent.id.desc()).first().detail
    removed = client.post("/clinic/settings/logo", content_type="multipart/form-data",
                          data={"remove": "1", "csrf_token": clinic_csrf(client)})
    assert removed.status_code == 303 and Practice.current().logo_version == ""
    assert signed_out.get(f"/logo/{version}").status_code == 404
    assert 'class="logo"' not in signed_out.get("/sign-in").get_data(as_text=True)


def test_an_svg_logo_is_served_as_an_image_under_a_sandbox(client, dana):
    clinic_sign_in(client, "dana@example.com")
    assert upload(client, SVG, "logo.svg").status_code == 303
    image = client.get(f"/logo/{Practice.current().logo_version}")
    assert image.mimetype == "image/svg+xml"
    assert "sandbox" in image.headers["Content-Security-Policy"]
    assert "default-src 'none'" in image.headers["Content-Security-Policy"]


@pytest.mark.parametrize("data, name, message", [
    (b"GIF89a\x01\x00\x01\x00", "logo.png", "The logo must be a PNG, JPEG or SVG image."),
    (b"<html><body>hi</body></html>", "logo.svg", "The logo must be a PNG, JPEG or SVG image."),
    (SVG.replace(b"<rect", b'<script>alert(1)</script><rect'), "logo.svg", "This SVG contains scripts"),
    (SVG.replace(b"<rect", b'<rect onload="alert(1)"'), "logo.svg", "This SVG contains scripts"),
    (PNG + b"\x00" * (200 * 1024), "logo.png", "The logo must be 200 KB or smaller"),
    (b"", "logo.png", "Choose an image file for the logo."),
])
def test_a_file_that_cannot_be_the_logo_is_refused_with_a_clear_message(client, dana, data, name, message):
    clinic_sign_in(client, "dana@example.com")
    response = upload(client, data, name)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert Practice.current().logo_version == ""


def test_only_an_admin_sets_the_logo_and_other_forms_still_refuse_files(client, kim):
    clinic_sign_in(client, "kim@example.com")
    assert upload(client, PNG).status_code == 403
    assert Practice.current().logo_version == ""
    refused = client.post("/clinic/clients/new", content_type="multipart/form-data",
                          data={"name": (io.BytesIO(PNG), "x.png"), "csrf_token": clinic_csrf(client)})
    assert refused.status_code == 400
