"""Clinician sign-in, sign-out, and the one-time first-run setup."""
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l, ngettext
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from portico.extensions import rate_limit
from practice.clinicians import (MIN_PASSWORD_LENGTH, AlreadySetUp, SlowDown, authenticate, failures_since_last_sign_in,
                                 set_up_practice)
from practice.clock import format_local
from practice.i18n import N_
from practice.models import Clinician, Practice
from practice.sessions import end_session
from practice.zones import zone_choices

from .._auth import (current_session, ended_session, forget_cookie, sign_in as start_signed_in, signed_out,
                     stale_cookie)
from .._forms import at_most, plain_text
from .._htmx import redirect_to
from . import bp
from ._access import signed_in_clinician
from .second_factor import after_password

ENDED = {
    # Names the practice's current setting (a change since the timeout is rare and harmless).
    "idle": N_("You were signed out after %(idle_minutes)s minutes without activity."),
    "absolute": N_("You were signed out because you had been signed in for 12 hours."),
    "signed_out": N_("You have signed out."),
}


class SignInForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(_l("Enter your email address.")),
                                                at_most(254, _l("That address is too long."))])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=200)])


class SetupForm(FlaskForm):
    practice_name = StringField(_l("Practice name"), validators=[DataRequired(_l("Give the practice a name.")),
                                                                 plain_text(), Length(max=120)])
    timezone = SelectField(_l("Time zone"), default="Europe/London")
    contact_email = EmailField(_l("Contact address (clients' replies go here)"), validators=[
        DataRequired(_l("Enter the address clients can write to.")), at_most(254, _l("That address is too long.")),
        plain_text(), Email(_l("That is not an email address."))])
    name = StringField(_l("Your name"), validators=[DataRequired(_l("Enter your name.")), plain_text(),
                                                    Length(max=120)])
    email = EmailField(_l("Your email (you sign in with it)"), validators=[
        DataRequired(_l("Enter your email address.")), at_most(254, _l("That address is too long.")), plain_text(),
        Email(_l("That is not an email address."))])
    password = PasswordField(_l("Password"), validators=[
        DataRequired(_l("Choose a password.")),
        Length(min=MIN_PASSWORD_LENGTH, max=200,
               message=_l("Use at least %(num)d characters.", num=MIN_PASSWORD_LENGTH))])
    confirm = PasswordField(_l("Password again"), validators=[EqualTo("password", _l("The two passwords differ."))])


@bp.get("/")
def index():
    if not Clinician.select().exists():
        return redirect(url_for("clinic.setup"))
    if signed_in_clinician() is None:
        return redirect(url_for("clinic.sign_in"))
    return redirect(url_for("clinic.calendar_day"))


SET_UP_ALREADY = N_("This practice is already set up: sign in with your account.")


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """Exists only until the first clinician does. A setup sent as another won (or after
    it) goes to the sign-in page: the practice is there now, only not theirs to set up."""
    if Clinician.select().exists():
        if request.method == "GET":
            abort(404)
        return _already_set_up()
    form = SetupForm()
    form.timezone.choices = zone_choices()
    if form.validate_on_submit():
        try:
            clinician = set_up_practice(
                practice_name=form.practice_name.data, zone=form.timezone.data,
                contact_email=form.contact_email.data, name=form.name.data, email=form.email.data,
                password=form.password.data)
        except AlreadySetUp:
            return _already_set_up()
        return start_signed_in(redirect_to(url_for("clinic.calendar_day")), clinician=clinician)
    status = 422 if form.is_submitted() else 200
    return render_template("clinic/setup.html", form=form, practice=Practice.current(),
                           min_password_length=MIN_PASSWORD_LENGTH), status


def _already_set_up():
    flash(gettext(SET_UP_ALREADY), "info")
    return redirect_to(url_for("clinic.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"])
@rate_limit("CLINIC_SIGN_IN_IP_LIMIT", methods=["POST"])
def sign_in():
    practice = Practice.current()
    form = SignInForm()
    if request.method == "GET":
        if signed_in_clinician() is not None:
            return redirect(url_for("clinic.calendar_day"))
        ended = ended_session()
        notice = ENDED.get(ended.end_reason) if ended is not None and ended.clinician_id else None
        if notice:
            notice = gettext(notice, idle_minutes=practice.clinician_idle_minutes)
        response = current_app.make_response(
            render_template("clinic/sign_in.html", form=form, practice=practice, notice=notice))
        return forget_cookie(response) if stale_cookie() else response
    status = 422
    if form.validate_on_submit():
        try:
            clinician = authenticate(form.email.data, form.password.data, ip=request.remote_addr)
        except SlowDown as slow:
            form.password.errors.append(gettext("Too many failed sign-ins with this address. Try again in %(wait)s.",
                                                wait=_seconds(slow.seconds)))
            status = 429
        else:
            if clinician is not None:
                _tell_of_failures(failures_since_last_sign_in(clinician), practice)
                return after_password(clinician, practice)
            form.password.errors.append(gettext("That email and password do not match. Please try again."))
    return render_template("clinic/sign_in.html", form=form, practice=practice), status


def _seconds(seconds: int) -> str:
    if seconds < 120:
        return ngettext("%(num)d second", "%(num)d seconds", seconds)
    return ngettext("%(num)d minute", "%(num)d minutes", -(-seconds // 60))


def _tell_of_failures(failures, practice) -> None:
    """Someone may be guessing the password: the clinician hears of it as they sign in."""
    if not failures:
        return
    latest = failures[0]
    attempts = ngettext("%(num)d failed sign-in attempt", "%(num)d failed sign-in attempts", len(failures))
    when = format_local(latest.at, practice.timezone)
    if latest.ip:
        told = gettext("%(attempts)s since your last sign-in, the latest %(when)s from %(ip)s. If that was not you, "
                       "choose a new password and tell your administrator.", attempts=attempts, when=when, ip=latest.ip)
    else:
        told = gettext("%(attempts)s since your last sign-in, the latest %(when)s. If that was not you, choose a new "
                       "password and tell your administrator.", attempts=attempts, when=when)
    flash(told, "warning")


@bp.post("/sign-out")
def sign_out():
    session = current_session()
    if session is not None:
        end_session(session, "signed_out")
    return signed_out(redirect_to(url_for("clinic.sign_in")), session)


@bp.app_context_processor
def clinic_context():
    """Templates under clinic/ get the signed-in clinician as `me`."""
    return {"me": signed_in_clinician()} if request and request.blueprint == "clinic" else {}
