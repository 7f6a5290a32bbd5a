"""The appointment forms: create and edit share one; extend and set-end are the inline ones."""
import calendar
import re
from datetime import date, time, timezone
from zoneinfo import ZoneInfo

from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, SelectField, StringField
from wtforms.validators import AnyOf, ValidationError

from practice.appointments import (KINDS, AppointmentError, OverlapWarning, PastStartWarning, create_appointment,
                                   local_to_utc, move_appointment)
from practice.models import Appointment, Client, Clinician

TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])(?::[0-5][0-9](?:\.[0-9]+)?)?$")
DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
FIRST_YEAR, LAST_YEAR = 1970, 2200


def parse_time(raw: str | None) -> time | None:
    """'09:30' (as <input type=time> sends it, seconds allowed) as a time, else None."""
    match = TIME.match((raw or "").strip())
    return time(int(match[1]), int(match[2])) if match else None


def parse_date(raw: str | None) -> date:
    """'2026-03-09' as a date; a ValidationError that says what is wrong otherwise."""
    raw = (raw or "").strip()
    match = DATE.match(raw)
    if not raw:
        raise ValidationError(gettext("Enter the date."))
    if not match:
        raise ValidationError(gettext("Enter a date like 2026-03-09."))
    year, month, day = (int(part) for part in match.groups())
    if not FIRST_YEAR <= year <= LAST_YEAR:  # the calendar's arithmetic stays inside datetime's range
        raise ValidationError(gettext("Enter a date from %(first)d to %(last)d.", first=FIRST_YEAR, last=LAST_YEAR))
    if not 1 <= month <= 12:
        raise ValidationError(gettext("%(raw)s is not a date: there is no month %(month)d.", raw=raw, month=month))
    try:
        return date(year, month, day)
    except ValueError:
        raise ValidationError(gettext("%(raw)s is not a date: %(month)s %(year)d has no day %(day)d.", raw=raw,
                                      month=calendar.month_name[month], year=year, day=day)) from None


def _time_validator(form, field):
    if parse_time(field.data) is None:
        raise ValidationError(gettext("Enter a time like 09:30.") if field.data else gettext("Enter a time."))


class AppointmentForm(FlaskForm):
    clinician = SelectField(_l("Clinician"), validate_choice=False)
    client = SelectField(_l("Client"), validate_choice=False)
    date = StringField(_l("Date"), render_kw={"type": "date"})
    start_time = StringField(_l("Start"), validators=[_time_validator], render_kw={"type": "time"})
    end_time = StringField(_l("End"), validators=[_time_validator], render_kw={"type": "time"})
    kind = SelectField(_l("Kind"), choices=list(KINDS.items()))
    save_anyway = BooleanField(_l("Save anyway"))

    def __init__(self, viewer: Clinician, appointment: Appointment | None = None, **kwargs):
        super().__init__(**kwargs)
        if appointment is None:
            clients = Client.visible_to(viewer).where(Client.archived_at.is_null()).order_by(Client.name)
            self.client.choices = [("", gettext("Choose a client"))] + [(str(c.id), c.name) for c in clients]
        else:
            del self.client  # another client means cancelling this one and booking anew
        if viewer.is_admin:
            self.clinician.choices = [(str(c.id), c.name) for c in Clinician.select().order_by(Clinician.name)]
        else:
            del self.clinician  # a clinician books for themselves

    def validate_client(self, field):
        if not field.data or field.data not in dict(field.choices[1:]):
            raise ValidationError(gettext("Choose one of your clients."))

    def validate_clinician(self, field):
        if field.data not in dict(field.choices):
            raise ValidationError(gettext("Choose a clinician."))

    def validate_date(self, field):
        parse_date(field.data)

    def blame(self, error: AppointmentError) -> str | None:
        """Put a domain error beside its field; returns it when it belongs to no field."""
        target = getattr(self, error.field, None) if error.field else None
        if target is None:
            return str(error)
        target.errors = list(target.errors) + [str(error)]
        return None


def save_appointment(form: AppointmentForm, viewer: Clinician, zone: str, appointment: Appointment | None = None):
    """Create or change from a validated form. Returns (appointment, None, [], None) when
    saved, else (None, message for no field or None, overlapping appointments, the start
    when it is in the past): "Save anyway" confirms both."""
    day = parse_date(form.date.data)
    clinician = Clinician.get_by_id(int(form.clinician.data)) if form.clinician else viewer
    values = {"kind": form.kind.data, "by": viewer, "allow_overlap": form.save_anyway.data,
              "allow_past": form.save_anyway.data}
    try:
        starts_at = local_to_utc(day, parse_time(form.start_time.data), zone, field="start_time")
        ends_at = local_to_utc(day, parse_time(form.end_time.data), zone, field="end_time")
        if appointment is None:
            saved = create_appointment(clinician=clinician, client=Client.get_by_id(int(form.client.data)),
                                       starts_at=starts_at, ends_at=ends_at, **values)
        else:
            saved = move_appointment(appointment, starts_at=starts_at, ends_at=ends_at, clinician=clinician,
                                     **values)
    except PastStartWarning as warning:
        return None, None, warning.appointments, warning.starts_at
    except OverlapWarning as warning:
        return None, None, warning.appointments, None
    except AppointmentError as error:
        return None, form.blame(error), [], None
    return saved, None, [], None


def form_data_for(appointment: Appointment, zone: str) -> dict:
    """The edit form's starting values, in local time."""
    tz = ZoneInfo(zone)
    start = appointment.starts_at.replace(tzinfo=timezone.utc).astimezone(tz)
    end = appointment.ends_at.replace(tzinfo=timezone.utc).astimezone(tz)
    return {"clinician": str(appointment.clinician_id), "date": start.date().isoformat(),
            "start_time": f"{start:%H:%M}", "end_time": f"{end:%H:%M}", "kind": appointment.kind}


class ExtendForm(FlaskForm):
    minutes = IntegerField(_l("Minutes"), validators=[AnyOf([15, 30], _l("Extend by 15 or 30 minutes."))])
    save_anyway = BooleanField(_l("Extend anyway"))
    view = HiddenField(default="day")
    clinician = HiddenField()  # whose calendar the card is on (an admin's choice)


class EndForm(FlaskForm):
    end_time = StringField(_l("End at"), validators=[_time_validator], render_kw={"type": "time"})
    save_anyway = BooleanField(_l("Set anyway"))
    view = HiddenField(default="day")
    clinician = HiddenField()  # whose calendar the card is on (an admin's choice)


class NewJoinLinkForm(FlaskForm):
    """Only the CSRF token: pressing "New join link" is the whole input."""
