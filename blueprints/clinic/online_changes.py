"""Clients' online changes, the clinician's side: working hours (one's own; an admin, anyone's),
the practice's rules for changes, and the answer to a request for a new time."""
from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Regexp, ValidationError

from practice.availability import WEEKDAYS, HoursError, parse_days_off, parse_ranges, save_hours, weekly_hours
from practice.i18n import N_
from practice.models import Clinician, DayOff, Practice
from practice.online_changes import ChangeRefused, approve, calendar_panel, decline, pending_request
from practice.settings import update_settings

from portico.errors import form_expired

from .._forms import plain_text
from .._htmx import redirect_to
from . import bp
from ._access import admin_required, clinician_required, signed_in_clinician

DAY_FIELDS = [day.lower() for day in WEEKDAYS]


class HoursForm(FlaskForm):
    monday = StringField(_l("Monday"))
    tuesday = StringField(_l("Tuesday"))
    wednesday = StringField(_l("Wednesday"))
    thursday = StringField(_l("Thursday"))
    friday = StringField(_l("Friday"))
    saturday = StringField(_l("Saturday"))
    sunday = StringField(_l("Sunday"))
    days_off = TextAreaField(_l("Dates off"))


def _hours_data(clinician) -> dict:
    hours = weekly_hours(clinician)
    data = {DAY_FIELDS[day]: ", ".join(f"{s}-{e}" for s, e in ranges) for day, ranges in hours.items()}
    data["days_off"] = "\n".join(row.day.isoformat() for row in DayOff.of(clinician))
    return data


def _hours_page(clinician):
    me = signed_in_clinician()
    form = HoursForm(data=_hours_data(clinician))
    if form.validate_on_submit():
        try:
            hours = {day: parse_ranges(form[name].data, name) for day, name in enumerate(DAY_FIELDS)}
            days_off = parse_days_off(form.days_off.data)
        except HoursError as error:
            form[error.field].errors = [*form[error.field].errors, str(error)]
        else:
            save_hours(clinician, hours, days_off, by=me)
            flash(gettext("Working hours saved."), "success")
            return redirect_to(request.path)
    status = 422 if form.is_submitted() else 200
    return render_template("clinic/hours.html", form=form, clinician=clinician, own=clinician.id == me.id,
                           days=DAY_FIELDS, practice=Practice.current()), status


@bp.route("/hours", methods=["GET", "POST"])
@clinician_required
def hours_mine():
    return _hours_page(signed_in_clinician())


@bp.route("/clinicians/<int:clinician_id>/hours", methods=["GET", "POST"])
@admin_required
def hours_of(clinician_id: int):
    clinician = Clinician.get_or_none(Clinician.id == clinician_id)
    if clinician is None:
        abort(404)
    return _hours_page(clinician)


# ---- the practice's rules (a form of their own on the settings page) ---------------------------

# A number's unit, as its range and its missing-number messages name it.
UNITS = {"hours": N_("hours"), "weeks": N_("weeks"), "minutes": N_("minutes")}


def _whole(low, high, unit):
    def in_range(form, field):
        if field.data is None or not low <= field.data <= high:
            raise ValidationError(gettext("Choose from %(low)s to %(high)s %(unit)s.", low=low, high=high,
                                          unit=gettext(UNITS[unit])))
    return [InputRequired(_l("Enter a number of %(unit)s.", unit=_l(UNITS[unit]))), in_range]


class OnlineChangeSettingsForm(FlaskForm):
    online_change_hours = IntegerField(_l("Online changes close (hours before the start)"),
                                       validators=_whole(0, 336, "hours"))
    online_change_weeks = IntegerField(_l("New times up to (weeks ahead)"), validators=_whole(1, 52, "weeks"))
    online_change_approval = SelectField(_l("A new time chosen online"), choices=[
        ("at_once", _l("holds at once")), ("approval", _l("waits for the clinician's approval"))])
    buffer_minutes = IntegerField(_l("Buffer between appointments (minutes)"), validators=_whole(0, 120, "minutes"))
    phone = StringField(_l("Practice phone number (shown when changes are closed)"), validators=[
        plain_text(), Length(max=40, message=_l("Keep the number under 40 characters.")),
        Regexp(r"^[0-9+()./ -]*\Z", message=_l("Use digits, spaces and + ( ) - . / only."))])


def settings_form(formdata=None) -> OnlineChangeSettingsForm:
    practice = Practice.current()
    return OnlineChangeSettingsForm(formdata=formdata, data=dict(
        online_change_hours=practice.online_change_hours, online_change_weeks=practice.online_change_weeks,
        online_change_approval="approval" if practice.online_change_approval else "at_once",
        buffer_minutes=practice.buffer_minutes, phone=practice.phone))


@bp.app_template_global()
def online_change_settings_form():
    """For the settings page's own section (templates/clinic/_online_change_settings.html)."""
    return settings_form()


@bp.route("/settings/online-changes", methods=["GET", "POST"])
@admin_required
def online_change_settings():
    form = settings_form(request.form if request.method == "POST" else None)
    if request.method == "POST" and form.validate_on_submit():
        values = dict(online_change_hours=form.online_change_hours.data, online_change_weeks=form.online_change_weeks.data,
                      online_change_approval=form.online_change_approval.data == "approval",
                      buffer_minutes=form.buffer_minutes.data, phone=(form.phone.data or "").strip())
        changed = update_settings(values, by=signed_in_clinician())
        flash(gettext("Saved (%(num)d changed).", num=len(changed)) if changed else gettext("Nothing changed."),
              "success" if changed else "info")
        return redirect_to(url_for("clinic.settings"))
    status = 422 if form.is_submitted() else 200
    return render_template("clinic/online_change_settings.html", online_form=form, practice=Practice.current()), status


# ---- the calendar's list, and the answer to a request ---------------------------------------------

@bp.app_template_global()
def online_changes_panel(owner=None):
    """What templates/clinic/_online_changes.html lists for the signed-in clinician, on the
    calendar of `owner` (an admin's choice; None: everyone's)."""
    me = signed_in_clinician()
    return calendar_panel(me, of=owner) if me is not None else {"pending": [], "recent": []}


ANSWER_PROBLEMS = {
    "taken": N_("That time has been booked meanwhile, so the request cannot be approved. Decline it, or move the "
                "appointment yourself."),
    "moved": N_("The appointment has changed since the client asked, so the request no longer applies. Decline it."),
    "answered": N_("This request has already been answered."),
}


@bp.post("/online-changes/<int:change_id>/approve")
@clinician_required
def online_change_approve(change_id: int):
    return _answer(change_id, "approve")


@bp.post("/online-changes/<int:change_id>/decline")
@clinician_required
def online_change_decline(change_id: int):
    return _answer(change_id, "decline")


def _answer(change_id: int, answer: str):
    if not FlaskForm().validate_on_submit():
        return form_expired(gettext("Please open the calendar again and answer the request there."))
    me = signed_in_clinician()
    change = pending_request(change_id, me)
    if change is None:
        flash(gettext(ANSWER_PROBLEMS["answered"]), "warning")
        return redirect_to(url_for("clinic.calendar_day"))
    try:
        (approve if answer == "approve" else decline)(change, by=me)
    except ChangeRefused as refused:
        flash(gettext(ANSWER_PROBLEMS.get(refused.reason, ANSWER_PROBLEMS["answered"])), "warning")
    else:
        flash(gettext("Approved: the appointment has moved and the client has been emailed.") if answer == "approve"
              else gettext("Declined: the appointment stays where it was and the client has been emailed."), "success")
    return redirect_to(url_for("clinic.calendar_day"))
