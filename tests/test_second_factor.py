"""Clinicians' second factor: after the right password, a code from an authenticator app, a
recovery code or a passkey; the setup a practice that requires one walks a clinician through;
an admin's reset; rate limits; and no secret of it in any log line."""
import json
import logging
import re

import pyotp
import pytest

from practice import second_factor
from practice.clock import utcnow
from practice.models import (AuditEvent, Clinician, ClinicianPasskey, PendingSignIn, Practice, RecoveryCode, Session,
                             db)
from tests._authenticator import SoftAuthenticator
from tests.conftest import CSRF_INPUT, clinic_sign_in, csrf_token

pytestmark = [pytest.mark.second_factor_required, pytest.mark.usefixtures("traveller")]

ORIGIN = "http://portal.test"
KEY = re.compile(r'<code class="totp-key">([A-Z2-7 ]+)</code>')
RECOVERY = re.compile(r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>")
CSRF_HEADER = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|data-csrf="([^"]+)"')


def kinds(clinician):
    return [e.kind for e in AuditEvent.select().where(AuditEvent.clinician == clinician).order_by(AuditEvent.id)]


def enrol_totp(clinician) -> tuple[str, list[str]]:
    """The clinician's app, set up as the setup page does it: (secret, recovery codes)."""
    secret = second_factor.begin_totp(clinician)
    codes = second_factor.confirm_totp(clinician, pyotp.TOTP(secret).now())
    return secret, codes


def next_step(traveller):
    """On to the next 30 s step: a new code, the last one used up."""
    traveller.shift(30)


def walk_through_setup(client) -> tuple[str, list[str]]:
    """On the setup page after the password: scan (read the key), type the code; returns the
    secret and the recovery codes shown."""
    page = client.get("/clinic/second-factor/set-up").get_data(as_text=True)
    assert "<svg" in page and "QR code for your authenticator app" in page  # the QR code, inline
    secret = KEY.search(page).group(1).replace(" ", "")
    token = CSRF_INPUT.search(page).group(1)
    response = client.post("/clinic/second-factor/set-up/totp",
                           data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    codes = RECOVERY.findall(response.get_data(as_text=True))
    return secret, codes


def test_a_new_practice_requires_a_second_factor(app):
    # A new database's practice row (first-run setup sets it too: tests/test_clinic_access.py).
    assert Practice.current().require_second_factor


def test_right_code_after_the_password_starts_the_session_and_only_then(client, kim, traveller):
    secret, _ = enrol_totp(kim)
    next_step(traveller)
    response = clinic_sign_in(client, "kim@example.com")
    assert response.headers["Location"] == "/clinic/sign-in/second-factor"
    # The password alone opens nothing: no session, the calendar sends to sign-in.
    assert Session.select().where(Session.clinician == kim).count() == 0
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/sign-in"
    page = client.get("/clinic/sign-in/second-factor").get_data(as_text=True)
    assert "6-digit code" in page

    token = csrf_token(client, "/clinic/sign-in/second-factor")
    response = client.post("/clinic/sign-in/second-factor",
                           data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/clinic/calendar"
    assert client.get("/clinic/calendar").status_code == 200
    assert Session.select().where(Session.clinician == kim).count() == 1
    assert PendingSignIn.select().count() == 0
    assert kinds(kim)[-1] == "second_factor_used"


def test_wrong_code_is_refused_and_counted(client, kim, traveller):
    secret, _ = enrol_totp(kim)
    next_step(traveller)
    clinic_sign_in(client, "kim@example.com")
    token = csrf_token(client, "/clinic/sign-in/second-factor")
    right = pyotp.TOTP(secret).now()
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    response = client.post("/clinic/sign-in/second-factor", data={"code": wrong, "csrf_token": token})
    assert response.status_code == 422
    assert "That code did not work" in response.get_data(as_text=True)
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/sign-in"
    (failed,) = AuditEvent.select().where(AuditEvent.kind == "second_factor_failed")
    assert failed.clinician_id == kim.id and wrong not in failed.detail


def test_a_code_used_once_is_refused_again_inside_its_30_second_step(client, app, kim, traveller):
    secret, _ = enrol_totp(kim)
    next_step(traveller)
    code = pyotp.TOTP(secret).now()
    assert clinic_sign_in(client, "kim@example.com", code=code).headers["Location"] == "/clinic/calendar"

    # Seen over a shoulder, tried from another browser ten seconds later: the same step, refused.
    traveller.shift(10)
    other = app.test_client()
    response = clinic_sign_in(other, "kim@example.com", code=code)
    assert response.status_code == 422 and "That code did not work" in response.get_data(as_text=True)
    # The next step's code works.
    next_step(traveller)
    response = clinic_sign_in(app.test_client(), "kim@example.com", code=pyotp.TOTP(secret).now())
    assert response.headers["Location"] == "/clinic/calendar"


def test_a_recovery_code_works_once(client, app, kim, traveller):
    _, codes = enrol_totp(kim)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert RecoveryCode.select().where(RecoveryCode.clinician == kim).count() == 10
    assert not any(code.replace("-", "") in row.code_hash for code in codes for row in RecoveryCode.select())

    response = clinic_sign_in(client, "kim@example.com", code=codes[3].upper())  # as typed off paper
    assert response.headers["Location"] == "/clinic/calendar"
    assert "You used a recovery code: 9 left" in client.get("/clinic/calendar").get_data(as_text=True)
    assert AuditEvent.get(AuditEvent.kind == "recovery_code_used").detail == "9 left"

    response = clinic_sign_in(app.test_client(), "kim@example.com", code=codes[3])
    assert response.status_code == 422
    assert second_factor.recovery_codes_left(kim) == 9


def test_wrong_codes_for_one_clinician_stop_being_checked(client, app, kim, traveller):
    secret, _ = enrol_totp(kim)
    next_step(traveller)
    for _ in range(second_factor.FAILURES_PER_CLINICIAN):
        assert clinic_sign_in(app.test_client(), "kim@example.com", code="000000").status_code == 422
    # Even the right code is not checked now, from any browser.
    response = clinic_sign_in(client, "kim@example.com", code=pyotp.TOTP(secret).now())
    assert response.status_code == 429
    assert "Too many wrong codes. Try again in 15 minutes." in response.get_data(as_text=True)
    traveller.shift(int(second_factor.FAILURE_WINDOW.total_seconds()) + 1)
    response = clinic_sign_in(client, "kim@example.com", code=pyotp.TOTP(secret).now())
    assert response.headers["Location"] == "/clinic/calendar"


def test_wrong_codes_from_one_network_address_stop_it_for_everyone(app, kim, traveller):
    secret, _ = enrol_totp(kim)
    guessed = [Clinician.create(email=f"c{n}@example.com", name=f"C {n}", password_hash="x") for n in range(5)]
    for clinician in guessed:
        second_factor.begin_totp(clinician)
        Clinician.update(totp_confirmed_at=utcnow()).where(Clinician.id == clinician.id).execute()
        clinician = Clinician.get_by_id(clinician.id)
        for _ in range(second_factor.FAILURES_PER_ADDRESS // len(guessed)):
            with pytest.raises(second_factor.SecondFactorError):
                second_factor.verify(clinician, "000000", ip="203.0.113.9")
    next_step(traveller)
    with pytest.raises(second_factor.TooManyAttempts):
        second_factor.verify(kim, pyotp.TOTP(secret).now(), ip="203.0.113.9")
    assert second_factor.verify(kim, pyotp.TOTP(secret).now(), ip="198.51.100.1") == "totp"


def test_the_second_step_is_rate_limited_per_network_address(make_app, kim):
    app = make_app(CLINIC_SECOND_FACTOR_IP_LIMIT="3 per minute")
    enrol_totp(kim)
    client = app.test_client()
    clinic_sign_in(client, "kim@example.com")
    token = csrf_token(client, "/clinic/sign-in/second-factor")
    statuses = [client.post("/clinic/sign-in/second-factor", data={"code": "12345", "csrf_token": token}).status_code
                for _ in range(4)]
    assert statuses == [422, 422, 422, 429]


def test_first_sign_in_walks_a_clinician_without_a_factor_through_setting_one_up(client, app, kim, traveller):
    response = clinic_sign_in(client, "kim@example.com")
    assert response.headers["Location"] == "/clinic/second-factor/set-up"
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/sign-in"  # nothing open yet

    page = client.get("/clinic/second-factor/set-up").get_data(as_text=True)
    assert "Set up a second factor" in page and "Or use a passkey" in page
    token = csrf_token(client, "/clinic/second-factor/set-up")
    response = client.post("/clinic/second-factor/set-up/totp", data={"code": "000000", "csrf_token": token})
    assert response.status_code == 422 and "That code does not match" in response.get_data(as_text=True)

    next_step(traveller)
    secret, codes = walk_through_setup(client)
    assert len(codes) == 10
    assert client.get("/clinic/calendar").status_code == 200  # a full session now
    kim = Clinician.get_by_id(kim.id)
    assert kim.totp_secret == secret and kim.totp_confirmed_at is not None
    assert "second_factor_set_up" in kinds(kim)
    # The secret is sealed at rest: the column holds no trace of it.
    (value,) = db.execute_sql(f"SELECT totp_secret FROM clinician WHERE id = {int(kim.id)}").fetchone()
    assert value.startswith("aesgcm1:") and secret not in value

    # Next time the code is asked for, not set up again.
    client.post("/clinic/sign-out", data={"csrf_token": csrf_token(client, "/clinic/calendar")})
    next_step(traveller)
    assert clinic_sign_in(client, "kim@example.com").headers["Location"] == "/clinic/sign-in/second-factor"


def test_a_pending_sign_in_with_a_factor_cannot_add_another(client, kim):
    enrol_totp(kim)
    clinic_sign_in(client, "kim@example.com")
    assert client.get("/clinic/second-factor/set-up").headers["Location"] == "/clinic/sign-in"


def test_a_pending_sign_in_expires(client, kim, traveller):
    enrol_totp(kim)
    clinic_sign_in(client, "kim@example.com")
    traveller.shift(int(second_factor.PENDING_LIFETIME.total_seconds()) + 1)
    response = client.get("/clinic/sign-in/second-factor")
    assert response.headers["Location"] == "/clinic/sign-in"
    assert "That sign-in took too long" in client.get("/clinic/sign-in").get_data(as_text=True)


def test_turning_the_requirement_on_sends_a_signed_in_clinician_without_one_to_set_it_up(client, kim):
    Practice.update(require_second_factor=False).execute()
    assert clinic_sign_in(client, "kim@example.com").headers["Location"] == "/clinic/calendar"
    Practice.update(require_second_factor=True).execute()
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/second-factor/set-up"


def test_the_setting_is_an_admins_and_audited(client, dana, traveller):
    secret, _ = enrol_totp(dana)
    next_step(traveller)
    clinic_sign_in(client, "dana@example.com", code=pyotp.TOTP(secret).now())
    page = client.get("/clinic/settings").get_data(as_text=True)
    assert "Every clinician must use a second factor" in page
    (box,) = re.findall(r'<input[^>]*name="require_second_factor"[^>]*>', page)
    assert " checked" in box
    form = dict(re.findall(r'name="([a-z_]+)"[^>]*value="([^"]*)"', page))
    form.pop("require_second_factor", None)  # an unticked box is not sent
    form.update(timezone="UTC", contact_email="office@example.com")
    response = client.post("/clinic/settings", data=form)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert not Practice.current().require_second_factor
    changed = [e.detail for e in AuditEvent.select().where(AuditEvent.kind == "setting_changed")]
    assert "require_second_factor: True -> False" in changed


def test_an_admin_resets_another_clinicians_second_factor_audited(client, app, dana, kim, traveller):
    dana_secret, _ = enrol_totp(dana)
    kim_secret, _ = enrol_totp(kim)
    next_step(traveller)
    kim_browser = app.test_client()
    clinic_sign_in(kim_browser, "kim@example.com", code=pyotp.TOTP(kim_secret).now())
    clinic_sign_in(client, "dana@example.com", code=pyotp.TOTP(dana_secret).now())

    page = client.get("/clinic/clinicians").get_data(as_text=True)
    assert "Authenticator app" in page and "Reset the second factor of Kim Park" in page
    assert "Reset the second factor of Dana Hale" not in page  # not one's own
    response = client.post(f"/clinic/clinicians/{kim.id}/reset-second-factor",
                           data={"csrf_token": csrf_token(client, "/clinic/clinicians")})
    assert response.status_code == 303
    kim = Clinician.get_by_id(kim.id)
    assert kim.totp_secret is None and not second_factor.has_second_factor(kim)
    assert second_factor.recovery_codes_left(kim) == 0
    reset = AuditEvent.get(AuditEvent.kind == "second_factor_reset")
    assert reset.clinician_id == kim.id and reset.detail == "by Dana Hale"
    page = client.get("/clinic/clinicians").get_data(as_text=True)
    assert "Second factor reset" in page and "by Dana Hale" in page
    # Kim's session ended; their next sign-in sets a factor up again.
    assert kim_browser.get("/clinic/calendar").headers["Location"] == "/clinic/sign-in"
    assert clinic_sign_in(kim_browser, "kim@example.com").headers["Location"] == "/clinic/second-factor/set-up"


def test_only_an_admin_resets(client, kim, dana):
    Practice.update(require_second_factor=False).execute()
    clinic_sign_in(client, "kim@example.com")
    response = client.post(f"/clinic/clinicians/{dana.id}/reset-second-factor",
                           data={"csrf_token": csrf_token(client, "/clinic/calendar")})
    assert response.status_code == 403


def post_json(client, path, body=None, *, csrf):
    return client.post(path, json=body if body is not None else {}, headers={"X-CSRFToken": csrf})


def page_csrf(client, path):
    match = CSRF_HEADER.search(client.get(path).get_data(as_text=True))
    return match.group(1) or match.group(2)


def test_a_passkey_as_the_second_factor(client, app, kim, traveller):
    authenticator = SoftAuthenticator()
    # First sign-in: the walk-through, with a passkey this time.
    assert clinic_sign_in(client, "kim@example.com").headers["Location"] == "/clinic/second-factor/set-up"
    csrf = page_csrf(client, "/clinic/second-factor/set-up")
    options = post_json(client, "/clinic/second-factor/passkey/options", csrf=csrf)
    assert options.status_code == 200
    response = post_json(client, "/clinic/second-factor/passkey",
                         authenticator.create(options.get_data(as_text=True), ORIGIN), csrf=csrf)
    assert response.status_code == 201 and response.get_json()["redirect"] == "/clinic/second-factor"
    assert "Now make your recovery codes" in client.get("/clinic/second-factor").get_data(as_text=True)
    assert ClinicianPasskey.select().where(ClinicianPasskey.clinician == kim).count() == 1
    client.post("/clinic/sign-out", data={"csrf_token": csrf_token(client, "/clinic/calendar")})

    # Next sign-in: password, then the passkey.
    assert clinic_sign_in(client, "kim@example.com").headers["Location"] == "/clinic/sign-in/second-factor"
    page = client.get("/clinic/sign-in/second-factor").get_data(as_text=True)
    assert "Use my passkey" in page
    csrf = page_csrf(client, "/clinic/sign-in/second-factor")

    # Someone else's passkey (or a replay) does not sign in.
    options = post_json(client, "/clinic/sign-in/second-factor/passkey/options", csrf=csrf).get_data(as_text=True)
    stranger = SoftAuthenticator()
    stranger.user_handle = authenticator.user_handle
    assert post_json(client, "/clinic/sign-in/second-factor/passkey", stranger.get(options, ORIGIN),
                     csrf=csrf).status_code == 400
    assert client.get("/clinic/calendar").headers["Location"] == "/clinic/sign-in"

    options = post_json(client, "/clinic/sign-in/second-factor/passkey/options", csrf=csrf).get_data(as_text=True)
    assert json.loads(options)["allowCredentials"][0]["id"] == authenticator.id  # only hers are offered
    answer = authenticator.get(options, ORIGIN)
    response = post_json(client, "/clinic/sign-in/second-factor/passkey", answer, csrf=csrf)
    assert response.status_code == 200 and response.get_json() == {"redirect": "/clinic/calendar"}
    assert client.get("/clinic/calendar").status_code == 200
    assert ClinicianPasskey.get(ClinicianPasskey.clinician == kim).sign_count == 1
    # The same answer again, from a new password step: its challenge is used up.
    other = app.test_client()
    clinic_sign_in(other, "kim@example.com")
    csrf = page_csrf(other, "/clinic/sign-in/second-factor")
    assert post_json(other, "/clinic/sign-in/second-factor/passkey", answer, csrf=csrf).status_code == 400
    assert {"second_factor_set_up", "second_factor_used", "second_factor_failed"} <= set(kinds(kim))


def test_recovery_codes_made_again_replace_the_old_ones(client, kim, traveller):
    secret, old = enrol_totp(kim)
    next_step(traveller)
    clinic_sign_in(client, "kim@example.com", code=pyotp.TOTP(secret).now())
    assert "10 of 10 unused" in client.get("/clinic/second-factor").get_data(as_text=True)
    response = client.post("/clinic/second-factor/recovery-codes",
                           data={"csrf_token": csrf_token(client, "/clinic/second-factor")})
    new = RECOVERY.findall(response.get_data(as_text=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert "Keep these 10 codes somewhere safe" in " ".join(response.get_data(as_text=True).split())
    assert response.headers["Cache-Control"] == "no-store"
    with pytest.raises(second_factor.SecondFactorError):
        second_factor.verify(kim, old[0])
    assert second_factor.verify(kim, new[0]) == "recovery_code"
    assert "recovery_codes_made" in kinds(kim)


def test_a_required_factor_cannot_be_removed_while_it_is_the_only_one(client, kim, traveller):
    secret, _ = enrol_totp(kim)
    next_step(traveller)
    clinic_sign_in(client, "kim@example.com", code=pyotp.TOTP(secret).now())
    client.post("/clinic/second-factor/totp/remove", data={"csrf_token": csrf_token(client, "/clinic/second-factor")})
    assert second_factor.has_totp(Clinician.get_by_id(kim.id))
    Practice.update(require_second_factor=False).execute()
    client.post("/clinic/second-factor/totp/remove", data={"csrf_token": csrf_token(client, "/clinic/second-factor")})
    assert not second_factor.has_totp(Clinician.get_by_id(kim.id))
    assert AuditEvent.get(AuditEvent.kind == "second_factor_removed").detail == "authenticator app"


def test_no_secret_code_or_recovery_code_in_any_log_line(client, app, kim, traveller, caplog):
    caplog.set_level(logging.DEBUG)
    clinic_sign_in(client, "kim@example.com")
    next_step(traveller)
    secret, codes = walk_through_setup(client)
    client.post("/clinic/sign-out", data={"csrf_token": csrf_token(client, "/clinic/calendar")})
    next_step(traveller)
    used = [pyotp.TOTP(secret).now()]
    clinic_sign_in(client, "kim@example.com", code=used[0])
    client.post("/clinic/sign-out", data={"csrf_token": csrf_token(client, "/clinic/calendar")})
    clinic_sign_in(client, "kim@example.com", code=used[0])  # a replay, refused
    clinic_sign_in(client, "kim@example.com", code=codes[0])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # requests were logged at all
    for secret_text in [secret, *used, *codes, *(c.replace("-", "") for c in codes)]:
        assert secret_text not in logged
    assert secret not in "\n".join(e.detail for e in AuditEvent.select())
