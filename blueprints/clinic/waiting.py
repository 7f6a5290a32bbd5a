"""The video waiting room, clinician side: who is waiting (a live fragment) and "Let in"."""
from flask import abort, make_response, render_template, request, url_for
from flask_babel import gettext
from flask_wtf import FlaskForm
from wtforms import HiddenField

from practice.appointments import visible_appointment
from practice.clock import clock_time
from practice.models import Appointment, Practice
from practice.telehealth import check_entry, client_waiting, let_in

from portico.errors import form_expired

from .._htmx import redirect_to, vary, wants_fragment
from . import bp
from ._access import clinician_required, signed_in_clinician

# Where "Let in" goes back to without htmx (a name, never a URL from the form).
BACK = {"join": "telehealth.clinician_join", "room": "telehealth.clinician_room",
        "appointment": "clinic.appointment_edit"}


class LetInForm(FlaskForm):
    back = HiddenField(default="join")


def _appointment_or_404(appointment_id: int) -> Appointment:
    appointment = visible_appointment(signed_in_clinician(), appointment_id)
    if appointment is None:
        abort(404)
    return appointment


def waiting_context(appointment: Appointment, back: str = "join") -> dict:
    """What templates/clinic/_waiting.html needs (every page that includes it passes this)."""
    waiting = client_waiting(appointment)
    return dict(waiting_appointment=appointment, waiting=waiting, waiting_back=back,
                waiting_since=clock_time(waiting.since, Practice.current().timezone) if waiting.since else None,
                waiting_live=check_entry(appointment).is_open)


@bp.get("/appointments/<int:appointment_id>/waiting")
@clinician_required
def appointment_waiting(appointment_id: int):
    """The live fragment: polled by the join page, the room, the appointment and its calendar card."""
    appointment = _appointment_or_404(appointment_id)
    back = request.args.get("back") if request.args.get("back") in BACK else "join"
    response = make_response(render_template("clinic/_waiting.html", **waiting_context(appointment, back)))
    response.headers["Cache-Control"] = "no-store"
    return vary(response)


@bp.post("/appointments/<int:appointment_id>/let-in")
@clinician_required
def appointment_let_in(appointment_id: int):
    appointment = _appointment_or_404(appointment_id)
    form = LetInForm()
    if not form.validate_on_submit():
        return form_expired(gettext("Please reload the page and press Let in again."))
    let_in(appointment, by=signed_in_clinician(), ip=request.remote_addr)
    back = form.back.data if form.back.data in BACK else "join"
    if wants_fragment(f"let-in-{appointment.id}"):
        return vary(make_response(render_template("clinic/_waiting.html", **waiting_context(appointment, back))))
    return redirect_to(url_for(BACK[back], appointment_id=appointment.id))
