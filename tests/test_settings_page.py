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
