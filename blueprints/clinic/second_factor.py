"""A clinician's second factor over HTTP: the step after the password, the setup walk-through
(an authenticator app or a passkey), recovery codes, and the clinician's own page for them."""

from flask import current_app, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portico.extensions import rate_limit
from portico.hardening import takes_json
from practice import passkeys, second_factor
from practice.clock import format_local
from practice.i18n import N_
from practice.models import ClinicianPasskey, Practice

from .._auth import sign_in as start_signed_in
from .._htmx import redirect_to
from .._json import posted_credential
from . import bp
from ._access import clinician_required, signed_in_clinician

PENDING_COOKIE = "portico_clinic_pending"
EXPIRED = N_("That sign-in took too long. Please sign in again.")


class CodeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(_l("Enter the code.")), Length(max=40)])


def after_password(clinician, practice):
    """Where the right password leads: the second step, the setup walk-through, or (a practice
    that requires none, a clinician who has none) straight into the clinic."""
    if second_factor.has_second_factor(clinician):
        target = url_for("clinic.second_factor_step")
    elif practice.require_second_factor:
        target = url_for("clinic.second_factor_setup")
    else:
        return start_signed_in(redirect_to(url_for("clinic.calendar_day")), clinician=clinician)
    raw_id = second_factor.start_pending(clinician, ip=request.remote_addr)
    response = redirect_to(target)
    response.set_cookie(PENDING_COOKIE, raw_id, max_age=int(second_factor.PENDING_LIFETIME.total_seconds()),
                        httponly=True, samesite="Lax", path="/clinic",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _pending():
    return second_factor.find_pending(request.cookies.get(PENDING_COOKIE))


def _full_session(pending, response):
    """Both factors given: the pending sign-in becomes a session (a new id, as at every sign-in)."""
    second_factor.finish_pending(pending)
    response.delete_cookie(PENDING_COOKIE, path="/clinic", httponly=True, samesite="Lax",
                           secure=current_app.config["SESSION_COOKIE_SECURE"])
    return start_signed_in(response, clinician=pending.clinician)


def _start_again():
    flash(gettext(EXPIRED), "warning")
    return redirect_to(url_for("clinic.sign_in"))


@bp.route("/sign-in/second-factor", methods=["GET", "POST"])
@rate_limit("CLINIC_SECOND_FACTOR_IP_LIMIT", methods=["POST"])
def second_factor_step():
    pending = _pending()
    if pending is None or not second_factor.has_second_factor(pending.clinician):
        return _start_again()
    clinician = pending.clinician
    form = CodeForm()
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            try:
                used = second_factor.verify(clinician, form.code.data, ip=request.remote_addr)
            except second_factor.TooManyAttempts as error:
                form.code.errors.append(str(error))
                status = 429
            except second_factor.SecondFactorError as error:
                form.code.errors.append(str(error))
            else:
                if used == "recovery_code":
                    left = second_factor.recovery_codes_left(clinician)
                    flash(gettext("You used a recovery code: %(left)s left. Make new ones on your second-factor page "
                                  "if you are running low.", left=left), "warning")
                return _full_session(pending, redirect_to(url_for("clinic.calendar_day")))
    return render_template("clinic/second_factor.html", form=form, practice=Practice.current(),
                           has_totp=second_factor.has_totp(clinician),
                           has_passkey=passkeys.passkeys_possible() and ClinicianPasskey.of(clinician).exists()), status


def _options(json_text: str):
    response = make_response(json_text, 200)
    response.headers["Content-Type"] = "application/json"
    response.headers["Cache-Control"] = "no-store"
    return response


PASSKEY_REFUSED = N_("That passkey did not work. Try again, or use a code.")
SAVE_REFUSED = N_("That passkey could not be saved. Please try again.")


@bp.post("/sign-in/second-factor/passkey/options")
@takes_json
@rate_limit("PASSKEY_IP_LIMIT")
def second_factor_passkey_options():
    pending = _pending()
    if pending is None or not passkeys.passkeys_possible():
        return jsonify(error=gettext(EXPIRED)), 400
    return _options(passkeys.clinician_verify_options(pending.clinician))


@bp.post("/sign-in/second-factor/passkey")
@takes_json
@rate_limit("PASSKEY_IP_LIMIT")
def second_factor_passkey():
    pending = _pending()
    credential = posted_credential()
    if pending is None or credential is None or not passkeys.passkeys_possible():
        return jsonify(error=gettext(PASSKEY_REFUSED)), 400
    try:
        passkeys.verify_clinician(pending.clinician, credential, ip=request.remote_addr)
    except passkeys.PasskeyRefused:
        return jsonify(error=gettext(PASSKEY_REFUSED)), 400
    return _full_session(pending, jsonify(redirect=url_for("clinic.calendar_day")))


# ---- setting a factor up ----------------------------------------------------------------------

def _enrolling():
    """Who may set a factor up here, and their pending sign-in if that is how they came: a
    signed-in clinician, or one whose password was right and who has no factor yet (a pending
    sign-in of a clinician who has one must give it, never add another)."""
    clinician = signed_in_clinician()
    if clinician is not None:
        return clinician, None
    pending = _pending()
    if pending is not None and not second_factor.has_second_factor(pending.clinician):
        return pending.clinician, pending
    return None, None


def _setup_page(clinician, pending, form, status=200):
    secret = clinician.totp_secret
    if not secret or second_factor.has_totp(clinician):
        secret = None if second_factor.has_totp(clinician) else second_factor.begin_totp(clinician)
    uri = second_factor.provisioning_uri(clinician, secret) if secret else None
    return render_template(
        "clinic/second_factor_setup.html", form=form, practice=Practice.current(), pending=pending is not None,
        has_totp=secret is None, qr=second_factor.qr_svg(uri) if uri else None,
        secret_groups=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)) if secret else "",
        passkeys_possible=passkeys.passkeys_possible()), status


@bp.get("/second-factor/set-up")
def second_factor_setup():
    clinician, pending = _enrolling()
    if clinician is None:
        return _start_again()
    if clinician.totp_secret and not second_factor.has_totp(clinician):
        # A fresh secret at each visit: a QR code left on a screen earlier is worth nothing.
        clinician.totp_secret = None
    return _setup_page(clinician, pending, CodeForm())


@bp.post("/second-factor/set-up/totp")
@rate_limit("CLINIC_SECOND_FACTOR_IP_LIMIT")
def second_factor_totp_confirm():
    clinician, pending = _enrolling()
    if clinician is None:
        return _start_again()
    form = CodeForm()
    status = 422
    if form.validate_on_submit():
        try:
            codes = second_factor.confirm_totp(clinician, form.code.data, ip=request.remote_addr)
        except second_factor.SecondFactorError as error:
            form.code.errors.append(str(error))
            status = 429 if isinstance(error, second_factor.TooManyAttempts) else 422
        else:
            response = make_response(_codes_page(codes, pending is not None))
            return _full_session(pending, response) if pending is not None else response
    return _setup_page(clinician, pending, form, status)


def _codes_page(codes, first_sign_in: bool):
    response = make_response(render_template("clinic/recovery_codes.html", practice=Practice.current(), codes=codes,
                                             first_sign_in=first_sign_in))
    response.headers["Cache-Control"] = "no-store"  # shown once: no copy in a cache
    return response


@bp.post("/second-factor/passkey/options")
@takes_json
@rate_limit("PASSKEY_IP_LIMIT")
def second_factor_passkey_register_options():
    clinician, _ = _enrolling()
    if clinician is None or not passkeys.passkeys_possible():
        return jsonify(error=gettext(EXPIRED)), 400
    return _options(passkeys.clinician_registration_options(clinician))


@bp.post("/second-factor/passkey")
@takes_json
@rate_limit("PASSKEY_IP_LIMIT")
def second_factor_passkey_register():
    clinician, pending = _enrolling()
    credential = posted_credential()
    if clinician is None or credential is None or not passkeys.passkeys_possible():
        return jsonify(error=gettext(SAVE_REFUSED)), 400
    try:
        passkey = passkeys.register_clinician(clinician, credential, user_agent=request.user_agent.string,
                                              ip=request.remote_addr)
    except passkeys.PasskeyRefused:
        return jsonify(error=gettext(SAVE_REFUSED)), 400
    flash(gettext("Passkey saved (%(device)s). Now make your recovery codes, in case you lose this device.",
                  device=passkey.device), "success")
    response = make_response(jsonify(redirect=url_for("clinic.second_factor_page"),
                                     message=gettext("Passkey saved.")), 201)
    return _full_session(pending, response) if pending is not None else response


# ---- the clinician's own page -----------------------------------------------------------------

@bp.get("/second-factor")
@clinician_required
def second_factor_page():
    me = signed_in_clinician()
    practice = Practice.current()
    rows = [dict(id=p.id, device=p.device, created=format_local(p.created_at, practice.timezone),
                 last_used=format_local(p.last_used_at, practice.timezone) if p.last_used_at else gettext("Not yet"))
            for p in ClinicianPasskey.of(me)]
    return render_template("clinic/second_factor_page.html", practice=practice, has_totp=second_factor.has_totp(me),
                           passkeys=rows, codes_left=second_factor.recovery_codes_left(me),
                           codes_made=second_factor.RECOVERY_CODES,
                           has_factor=second_factor.has_second_factor(me),
                           passkeys_possible=passkeys.passkeys_possible())


@bp.post("/second-factor/recovery-codes")
@clinician_required
def second_factor_recovery_codes():
    me = signed_in_clinician()
    if not second_factor.has_second_factor(me):
        flash(gettext("Set up an authenticator app or a passkey first: recovery codes stand in for one."), "warning")
        return redirect_to(url_for("clinic.second_factor_page"))
    return _codes_page(second_factor.new_recovery_codes(me, ip=request.remote_addr), False)


@bp.post("/second-factor/totp/remove")
@clinician_required
def second_factor_totp_remove():
    try:
        second_factor.remove_totp(signed_in_clinician(), ip=request.remote_addr)
    except second_factor.SecondFactorError as error:
        flash(str(error), "error")
    else:
        flash(gettext("Authenticator app removed: its codes no longer sign you in."), "success")
    return redirect_to(url_for("clinic.second_factor_page"))


@bp.post("/second-factor/passkeys/<int:passkey_id>/remove")
@clinician_required
def second_factor_passkey_remove(passkey_id):
    try:
        if second_factor.remove_passkey(signed_in_clinician(), passkey_id, ip=request.remote_addr):
            flash(gettext("Passkey removed: it no longer signs you in."), "success")
    except second_factor.SecondFactorError as error:
        flash(str(error), "error")
    return redirect(url_for("clinic.second_factor_page"), 303)

