"""Practice settings (admins only)."""
import re
from zoneinfo import available_timezones

from flask import flash, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Regexp, ValidationError

from practice.models import Practice
from practice.settings import SettingsError, update_settings

from .._forms import at_most, plain_text
from .._htmx import redirect_to
from . import bp
from ._access import admin_required, signed_in_clinician

# ASCII digits and no trailing newline (\d and $ would let "٢١:٠٠" and "21:00\n" be stored).
HHMM = Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z", message="Use a 24-hour time like 21:00.")


def _number(label, low, high, unit):
    message = f"Choose from {low} to {high} {unit}."

    def in_range(form, field):
        # Not wtforms' NumberRange: its math.isnan() raises OverflowError on a huge integer.
        if field.data is None or not low <= field.data <= high:
            raise ValidationError(message)

    return IntegerField(label, validators=[InputRequired(f"Enter a number of {unit}."), in_range])


class SettingsForm(FlaskForm):
    name = StringField("Practice name", validators=[DataRequired("Give the practice a name."), plain_text(),
                                                    Length(max=120)])
    timezone = SelectField("Time zone", choices=sorted(available_timezones()))
    contact_email = EmailField("Contact and reply-to address", validators=[
        DataRequired("Enter the address clients can write to."), at_most(254, "That address is too long."),
        plain_text(), Email("That is not an email address.")])
    sign_in_link_minutes = _number("Sign-in link lifetime (minutes)", 10, 72 * 60, "minutes")
    invitation_link_hours = _number("Invitation and document link lifetime (hours)", 1, 168, "hours")
    quiet_hours_start = StringField("Quiet hours start (client's local time)", validators=[HHMM])
    quiet_hours_end = StringField("Quiet hours end", validators=[HHMM])
    client_idle_minutes = _number("Client idle timeout (minutes)", 5, 60, "minutes")
    clinician_idle_minutes = _number("Clinician idle timeout (minutes)", 5, 240, "minutes")
    telehealth_grace_minutes = _number("Telehealth link grace after the end (minutes)", 0, 120, "minutes")
    reminder_offsets = StringField("Reminders (hours before the start, comma-separated)")
    room_entry = RadioField("Who starts a video session", choices=[
        ("together", "Both connect as soon as both are there"),
        ("waiting_room", "A waiting room: the client waits until the clinician lets them in"),
    ], validators=[InputRequired("Choose how a video session starts.")])

    def validate_reminder_offsets(self, field):
        parts = [p.strip() for p in (field.data or "").split(",") if p.strip()]
        if not all(re.fullmatch(r"\d{1,3}", p) for p in parts):
            raise ValidationError("Use whole hours separated by commas, like 72, 24.")
        hours = sorted({int(p) for p in parts}, reverse=True)
        if any(h < 1 or h > 336 for h in hours):
            raise ValidationError("Each reminder must be from 1 to 336 hours (two weeks) before.")
        if len(hours) > 5:
            raise ValidationError("At most five reminders per appointment.")
        field.data = ",".join(str(h) for h in hours)


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings():
    practice = Practice.current()
    form = SettingsForm(obj=practice)
    if form.validate_on_submit():
        values = {name: getattr(form, name).data for name in form.data if name != "csrf_token"}
        values["contact_email"] = values["contact_email"].strip().lower()
        try:
            changed = update_settings(values, by=signed_in_clinician())
        except SettingsError as error:
            form[error.field].errors.append(str(error))
        else:
            flash(f"Saved ({len(changed)} changed)." if changed else "Nothing changed.", "success" if changed else "info")
            return redirect_to(url_for("clinic.settings"))
    status = 422 if form.is_submitted() else 200
    return render_template("clinic/settings.html", form=form, practice=practice), status
