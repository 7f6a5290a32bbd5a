"""Clinician sign-in, sign-out, and the one-time first-run setup."""
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, Length

from portico.extensions import rate_limit
from practice.clinicians import (MIN_PASSWORD_LENGTH, AlreadySetUp, SlowDown, authenticate, failures_since_last_sign_in,
                                 set_up_practice)
from practice.clock import format_local
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
    "idle": "You were signed out after {idle_minutes} minutes without activity.",
    "absolute": "You were signed out because you had been signed in for 12 hours.",
    "signed_out": "You have signed out.",
}


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            at_most(254, "That address is too long.")])
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=200)])


class SetupForm(FlaskForm):
    practice_name = StringField("Practice name", validators=[DataRequired("Give the practice a name."), plain_text(),
                                                             Length(max=120)])
    timezone = SelectField("Time zone", default="Europe/London")
    contact_email = EmailField("Contact address (clients' replies go here)", validators=[
        DataRequired("Enter the address clients can write to."), at_most(254, "That address is too long."),
        plain_text(), Email("That is not an email address.")])
    name = StringField("Your name", validators=[DataRequired("Enter your name."), plain_text(), Length(max=120)])
    email = EmailField("Your email (you sign in with it)", validators=[
        DataRequired("Enter your email address."), at_most(254, "That address is too long."), plain_text(),
        Email("That is not an email address.")])
    password = PasswordField("Password", validators=[
        DataRequired("Choose a password."),
        Length(min=MIN_PASSWORD_LENGTH, max=200, message=f"Use at least {MIN_PASSWORD_LENGTH} characters.")])
    confirm = PasswordField("Password again", validators=[EqualTo("password", "The two passwords differ.")])


@bp.get("/")
def index():
    if not Clinician.select().exists():
        return redirect(url_for("clinic.setup"))
    if signed_in_clinician() is None:
        return redirect(url_for("clinic.sign_in"))
    return redirect(url_for("clinic.calendar_day"))


SET_UP_ALREADY = "This practice is already set up: sign in with your account."


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
    flash(SET_UP_ALREADY, "info")
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
            notice = notice.format(idle_minutes=practice.clinician_idle_minutes)
        response = current_app.make_response(
            render_template("clinic/sign_in.html", form=form, practice=practice, notice=notice))
        return forget_cookie(response) if stale_cookie() else response
    status = 422
    if form.validate_on_submit():
        try:
            clinician = authenticate(form.email.data, form.password.data, ip=request.remote_addr)
        except SlowDown as slow:
            form.password.errors.append(f"Too many failed sign-ins with this address. Try again in "
                                        f"{_seconds(slow.seconds)}.")
            status = 429
        else:
            if clinician is not None:
                _tell_of_failures(failures_since_last_sign_in(clinician), practice)
                return after_password(clinician, practice)
            form.password.errors.append("That email and password do not match. Please try again.")
    return render_template("clinic/sign_in.html", form=form, practice=practice), status


def _seconds(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


def _tell_of_failures(failures, practice) -> None:
    """Someone may be guessing the password: the clinician hears of it as they sign in."""
    if not failures:
        return
    latest = failures[0]
    attempts = "1 failed sign-in attempt" if len(failures) == 1 else f"{len(failures)} failed sign-in attempts"
    where = f" from {latest.ip}" if latest.ip else ""
    flash(f"{attempts} since your last sign-in, the latest {format_local(latest.at, practice.timezone)}{where}. "
          "If that was not you, choose a new password and tell your administrator.", "warning")


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
