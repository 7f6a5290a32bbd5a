"""Practice settings (admins only)."""
import re
from decimal import Decimal

from flask import flash, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, Regexp, ValidationError

from portico.hardening import takes_files
from practice.i18n import N_
from practice.logo import MAX_BYTES, LogoError, remove_logo, set_logo
from practice.models import Practice
from practice.settings import SettingsError, update_settings
from practice.zones import zone_choices

from .._forms import at_most, plain_text
from .._htmx import redirect_to
from . import bp
from ._access import admin_required, signed_in_clinician

# ASCII digits and no trailing newline (\d and $ would let "٢١:٠٠" and "21:00\n" be stored).
HHMM = Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z", message=_l("Use a 24-hour time like 21:00."))
# A number's unit, as its range and its missing-number messages name it.
UNITS = {"hours": N_("hours"), "minutes": N_("minutes")}


def _number(label, low, high, unit):
    def in_range(form, field):
        # Not wtforms' NumberRange: its math.isnan() raises OverflowError on a huge integer.
        if field.data is None or not low <= field.data <= high:
            raise ValidationError(gettext("Choose from %(low)s to %(high)s %(unit)s.", low=low, high=high,
                                          unit=gettext(UNITS[unit])))

    return IntegerField(label, validators=[InputRequired(_l("Enter a number of %(unit)s.", unit=_l(UNITS[unit]))),
                                           in_range],
                        render_kw={"min": low, "max": high, "inputmode": "numeric"})


class HoursField(StringField):
    """A lifetime typed in hours ("24", "1.5") and stored in minutes, as the rules keep it."""

    def __init__(self, label, low_minutes, high_minutes, **kwargs):
        super().__init__(label, render_kw={"inputmode": "decimal", "class": "number"}, **kwargs)
        self.low, self.high = low_minutes, high_minutes
        self.minutes = None

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return _hours(self.data) if isinstance(self.data, int) else ""

    def pre_validate(self, form):
        text = (self.raw_data[0] if self.raw_data else "").strip()
        if not text:
            raise ValidationError(gettext("Enter a number of %(unit)s.", unit=gettext(UNITS["hours"])))
        # ASCII digits only, and short: Decimal would take "NaN", "1e999999" and other digits.
        if not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,3})?", text):
            raise ValidationError(gettext("Enter the hours as a number, like 24 or 1.5."))
        hours = Decimal(text)
        if not self.low <= hours * 60 <= self.high:
            raise ValidationError(gettext("Choose from %(low)s to %(high)s %(unit)s.", low=_hours(self.low),
                                          high=_hours(self.high), unit=gettext(UNITS["hours"])))
        self.minutes = int((hours * 60).to_integral_value())


def _hours(minutes: int) -> str:
    """90 -> "1.5", 1440 -> "24", 10 -> "0.17"."""
    return f"{minutes / 60:.2f}".rstrip("0").rstrip(".")


# The form's sections, in order: each a <fieldset> of its own, so that a section added for a new
# rule (online rescheduling, say) is one more entry here and one more block in the template.
SECTIONS = {
    "practice": ("name", "timezone", "contact_email"),
    "links": ("sign_in_link_hours", "invitation_link_hours", "client_idle_minutes", "clinician_idle_minutes",
              "telehealth_grace_minutes"),
    "reminders": ("reminder_offsets", "quiet_hours_start", "quiet_hours_end"),
    "clinician sign-in": ("require_second_factor",),
}


class SettingsForm(FlaskForm):
    """The fields in the page's order (the error summary lists them so)."""

    name = StringField(_l("Practice name"), validators=[DataRequired(_l("Give the practice a name.")), plain_text(),
                                                        Length(max=120)])
    timezone = SelectField(_l("Time zone"))
    contact_email = EmailField(_l("Contact and reply-to address"), validators=[
        DataRequired(_l("Enter the address clients can write to.")), at_most(254, _l("That address is too long.")),
        plain_text(), Email(_l("That is not an email address."))])
    sign_in_link_hours = HoursField(_l("Sign-in link lifetime"), 15, 72 * 60)
    invitation_link_hours = _number(_l("Invitation and document link lifetime"), 1, 168, "hours")
    client_idle_minutes = _number(_l("Client idle timeout"), 5, 60, "minutes")
    clinician_idle_minutes = _number(_l("Clinician idle timeout"), 5, 240, "minutes")
    telehealth_grace_minutes = _number(_l("Telehealth link grace after the end"), 0, 120, "minutes")
    reminder_offsets = StringField(_l("Reminders"))
    quiet_hours_start = StringField(_l("Quiet hours start (client's local time)"), validators=[HHMM])
    quiet_hours_end = StringField(_l("Quiet hours end"), validators=[HHMM])
    room_entry = RadioField(_l("Who starts a video session"), choices=[
        ("together", _l("Both connect as soon as both are there")),
        ("waiting_room", _l("A waiting room: the client waits until the clinician lets them in")),
    ], validators=[InputRequired(_l("Choose how a video session starts."))])
    require_second_factor = BooleanField(_l("Every clinician must use a second factor"))

    def validate_reminder_offsets(self, field):
        parts = [p.strip() for p in (field.data or "").split(",") if p.strip()]
        if not all(re.fullmatch(r"\d{1,3}", p) for p in parts):
            raise ValidationError(gettext("Use whole hours separated by commas, like 72, 24."))
        hours = sorted({int(p) for p in parts}, reverse=True)
        if any(h < 1 or h > 336 for h in hours):
            raise ValidationError(gettext("Each reminder must be from 1 to 336 hours (two weeks) before."))
        if len(hours) > 5:
            raise ValidationError(gettext("At most five reminders per appointment."))
        field.data = ",".join(str(h) for h in hours)


@bp.route("/settings", methods=["GET", "POST"])
@admin_required
def settings():
    practice = Practice.current()
    form = SettingsForm(obj=practice, sign_in_link_hours=practice.sign_in_link_minutes)
    form.timezone.choices = zone_choices(current=practice.timezone)
    if form.validate_on_submit():
        values = {name: getattr(form, name).data for name in form.data if name not in ("csrf_token", "sign_in_link_hours")}
        values["sign_in_link_minutes"] = form.sign_in_link_hours.minutes
        values["contact_email"] = values["contact_email"].strip().lower()
        try:
            changed = update_settings(values, by=signed_in_clinician())
        except SettingsError as error:
            form[error.field].errors = [*form[error.field].errors, str(error)]
        else:
            flash(gettext("Saved (%(num)d changed).", num=len(changed)) if changed else gettext("Nothing changed."),
                  "success" if changed else "info")
            return redirect_to(url_for("clinic.settings"))
    status = 422 if form.is_submitted() else 200
    return _page(form, practice, status)


def _page(form, practice, status, logo_error=None):
    return render_template("clinic/settings.html", form=form, practice=practice, sections=SECTIONS,
                           logo_form=FlaskForm(), logo_error=logo_error, logo_max_kb=MAX_BYTES // 1024), status


@bp.post("/settings/logo")
@admin_required
@takes_files("logo")
def settings_logo():
    """Upload (or, with "remove", take away) the logo shown beside the practice's name."""
    practice = Practice.current()
    if not FlaskForm().validate_on_submit():
        return _page(_settings_form(practice), practice, 400, gettext("The form had expired: choose the file again."))
    if request.form.get("remove"):
        removed = remove_logo(by=signed_in_clinician())
        flash(gettext("The logo is removed.") if removed else gettext("There was no logo."),
              "success" if removed else "info")
        return redirect_to(url_for("clinic.settings"))
    upload = request.files.get("logo")
    try:
        set_logo(upload.read(MAX_BYTES + 1) if upload else b"", by=signed_in_clinician())
    except LogoError as error:
        return _page(_settings_form(practice), practice, 422, str(error))
    flash(gettext("The new logo is saved; it shows beside the practice's name on every page."), "success")
    return redirect_to(url_for("clinic.settings"))


def _settings_form(practice):
    form = SettingsForm(formdata=None, obj=practice, sign_in_link_hours=practice.sign_in_link_minutes)
    form.timezone.choices = zone_choices(current=practice.timezone)
    return form
