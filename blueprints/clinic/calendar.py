"""The calendar: day and week views, and appointment changes."""
from flask import render_template

from practice.models import Practice

from . import bp
from ._access import clinician_required


@bp.get("/calendar")
@clinician_required
def calendar_day():
    return render_template("clinic/calendar_day.html", practice=Practice.current())
