"""Telehealth: the join page (/t/<token> for the client, /clinic/appointments/<id>/join for the
clinician), the video room, and its signalling: short POSTs and a bounded long-poll."""
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Blueprint, abort, current_app, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import HiddenField

from practice.appointments import visible_appointment
from practice.clock import describe_when, format_local, span, utcnow
from practice.models import Appointment, Practice
from practice.telehealth import (BadSignal, EntryRefused, NotInRoom, check_admission, check_entry, describe_wait,
                                 enter_room, is_waiting, join_url, leave_room, look_up_join_link, new_seat_key,
                                 peer_in_room, room_ice_servers, send_signal, speaking_seat, wait_for_signals)

from portico.errors import form_expired
from portico.hardening import UnreadableText, takes_json
from portico.i18n import speak_as

from ._htmx import page_or_fragment, vary, wants_fragment
from ._json import posted_json
from .clinic._access import clinician_required, signed_in_clinician

bp = Blueprint("telehealth", __name__)

GONE = {
    "left": lazy_gettext("You have left this session."),
    "elsewhere": lazy_gettext("This session continues in another window or on another device, so this window has stopped."),
    "cancelled": lazy_gettext("This appointment was cancelled."),
    "archived": lazy_gettext("Your access to the portal has ended. Please contact the practice."),
    "replaced": lazy_gettext("This link was replaced by a newer one. Use the link in the newest email from the practice."),
}
ENDED_FOR_GOOD = ("cancelled", "archived")  # nothing will let this page in again


class JoinForm(FlaskForm):
    """Only the CSRF token: pressing Join is the whole input."""


class LeaveForm(FlaskForm):
    connection = HiddenField()
    how = HiddenField()  # "page_closed" from the page's own goodbye; the Leave button sends none


def seat_cookie(appointment_id: int, role: str) -> str:
    """The cookie that says which browser holds the seat: a reload or the same link again
    finds its place."""
    return f"{current_app.config['PORTAL_SESSION_COOKIE']}_seat_{appointment_id}_{role}"


@dataclass
class Place:
    """Which appointment this request is about, as whom, and where its pages are."""
    appointment: Appointment
    role: str  # client (with the link) or clinician (signed in)
    values: dict = field(default_factory=dict)
    retired: bool = False  # a link from before the appointment was cancelled

    def url(self, name: str, **extra) -> str:
        prefix = "telehealth." if self.role == "client" else "telehealth.clinician_"
        return url_for(prefix + name, **self.values, **extra)

    @property
    def cookie(self) -> str:
        return seat_cookie(self.appointment.id, self.role)

    @property
    def seat_key(self) -> str | None:
        return request.cookies.get(self.cookie)


def _client_place(token: str, as_json: bool = False) -> Place:
    link = look_up_join_link(token)
    if link is None:
        abort(make_response(jsonify(gone="unknown"), 404) if as_json else _unknown_link())
    speak_as(link.appointment.client)
    if link.replaced_at is not None:
        abort(make_response(_gone("replaced")) if as_json else _replaced_link(link))
    return Place(link.appointment, "client", {"token": token}, retired=link.retired)


def _clinician_place(appointment_id: int) -> Place:
    """The clinician's own appointment, or any for an admin; another looks like none at all."""
    appointment = visible_appointment(signed_in_clinician(), appointment_id)
    if appointment is None:
        abort(404)
    return Place(appointment, "clinician", {"appointment_id": appointment_id})


# ---- the join page ------------------------------------------------------------------------

@bp.route("/t/<token>", methods=["GET", "POST"])
def join(token):
    if wants_fragment("join-status"):  # an open join page learns that its link died
        link = look_up_join_link(token)
        if link is not None:
            speak_as(link.appointment.client)
        if link is None or link.replaced_at is not None:
            return vary(make_response(render_template(
                "telehealth/_join_status.html", unknown=link is None, practice=Practice.current(),
                replaced_at=link and _replaced_when(link))))
    return _join(_client_place(token))


@bp.route("/clinic/appointments/<int:appointment_id>/join", methods=["GET", "POST"])
@clinician_required
def clinician_join(appointment_id):
    return _join(_clinician_place(appointment_id))


def _join(place: Place):
    if request.method == "POST":
        return _press_join(place)
    entry = check_entry(place.appointment, role=place.role)
    return page_or_fragment("telehealth/join.html", {"join-status": "telehealth/_join_status.html"},
                            **_join_context(place, entry))


def _press_join(place: Place):
    if not JoinForm().validate_on_submit():
        return form_expired(gettext("Please open the link again and press Join."))
    key = place.seat_key or new_seat_key()
    try:
        check_admission(place.appointment, place.role, key, ip=request.remote_addr)
    except EntryRefused as refused:
        return _refused(place, refused)
    response = redirect(place.url("room"), 303)
    response.set_cookie(place.cookie, key, httponly=True, samesite="Lax", path="/",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _refused(place: Place, refused: EntryRefused):
    if refused.reason == "full":
        return render_template("telehealth/full.html", practice=Practice.current(), join_url=place.url("join"),
                               role=place.role), 409
    entry = refused.entry or check_entry(place.appointment, role=place.role)
    return render_template("telehealth/join.html", **_join_context(place, entry)), \
        403 if entry.state == "archived" else 409


def _join_context(place: Place, entry, now=None) -> dict:
    now = now or utcnow()
    practice = Practice.current()
    appointment = place.appointment
    zone = (appointment.client.timezone if place.role == "client" else None) or practice.timezone
    archived = place.role == "clinician" and appointment.client.archived_at is not None
    return dict(
        practice=practice, entry=entry, role=place.role, join_url=place.url("join"), **_layout(place),
        appointment_id=appointment.id,
        other_name=appointment.clinician.name if place.role == "client" else appointment.client.name,
        when=span(appointment.starts_at, appointment.ends_at, zone),
        opens_at=format_local(entry.opens_at, zone), closes_at=format_local(entry.closes_at, zone),
        ended_at=format_local(appointment.ends_at, zone),
        wait=describe_wait((entry.opens_at - now).total_seconds()),
        poll_in=_poll_in(entry, now), left=request.args.get("left") == "1",
        client_archived=archived,
        client_link=join_url(appointment) if place.role == "clinician" and entry.state != "cancelled"
        and not archived else None,
    )


def _layout(place: Place) -> dict:
    if place.role == "clinician":
        return dict(layout="clinic/base.html", me=signed_in_clinician())
    return dict(layout="base.html")


def _poll_in(entry, now) -> int | None:
    """Seconds until the join status should look again: when entry opens or closes (at most
    every 30 s), every 30 s after it closed (an extension reopens it), never once cancelled."""
    if entry.state == "not_yet":
        return min(30, max(1, math.ceil((entry.opens_at - now).total_seconds())))
    if entry.state == "open":
        return min(60, max(1, math.ceil((entry.closes_at - now).total_seconds())))
    return None if entry.state in ENDED_FOR_GOOD else 30


def _replaced_when(link) -> str:
    """'Tue 1 Dec at 3:02 PM', in the client's zone."""
    return describe_when(link.replaced_at, link.appointment.client.zone(Practice.current()))


def _replaced_link(link):
    """Never a bare "invalid": the old link's page says it was replaced, and when."""
    response = make_response(render_template("telehealth/replaced.html", practice=Practice.current(),
                                             replaced_at=_replaced_when(link)), 410)
    response.headers["Cache-Control"] = "no-store"
    return response


def _unknown_link():
    return make_response(render_template("telehealth/unknown.html", practice=Practice.current()), 404)


# ---- the room ---------------------------------------------------------------------------

@bp.get("/t/<token>/room")
def room(token):
    return _room(_client_place(token))


@bp.get("/clinic/appointments/<int:appointment_id>/room")
@clinician_required
def clinician_room(appointment_id):
    return _room(_clinician_place(appointment_id))


def _room(place: Place):
    """Entering happens here, for a browser that pressed Join (it has the seat cookie): a
    reload or the link again puts the person back in the same room."""
    key = place.seat_key
    if place.retired or not key:
        return redirect(place.url("join"), 303)
    try:
        seat = enter_room(place.appointment, place.role, key, ip=request.remote_addr,
                          by=signed_in_clinician() if place.role == "clinician" else None)
    except EntryRefused as refused:
        return _refused(place, refused)
    appointment = place.appointment
    response = make_response(render_template(
        "telehealth/room.html", practice=Practice.current(), connection=seat.connection, role=place.role,
        **_layout(place),
        other_name=appointment.clinician.name if place.role == "client" else appointment.client.name,
        is_open=check_entry(appointment).is_open, ice_servers=room_ice_servers(seat),
        in_waiting_room=is_waiting(seat), appointment_id=appointment.id,
        ice_transport_policy=current_app.config["TELEHEALTH_ICE_TRANSPORT_POLICY"],
        signals_url=place.url("signals"), leave_url=place.url("leave"), join_url=place.url("join")))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/t/<token>/signals", methods=["GET", "POST"])
@takes_json
def signals(token):
    return _signals(_client_place(token, as_json=True))


@bp.route("/clinic/appointments/<int:appointment_id>/signals", methods=["GET", "POST"])
@takes_json
@clinician_required
def clinician_signals(appointment_id):
    return _signals(_clinician_place(appointment_id))


def _signals(place: Place):
    """POST passes one message to the other side; GET waits (bounded) for messages to this page."""
    try:
        data = posted_json() if request.method == "POST" else request.args
    except UnreadableText:
        return jsonify(error="the JSON holds text that is not valid Unicode"), 400
    if not isinstance(data, Mapping):
        return jsonify(error="expected a JSON object"), 400
    connection = data.get("connection")
    if place.retired:
        return _gone("cancelled")
    try:
        if request.method == "POST":
            seat = speaking_seat(place.appointment, place.role, place.seat_key, connection)
            if is_waiting(seat):  # its page sends nothing before it is let in
                return jsonify(error="still in the waiting room", waiting=True), 403
            send_signal(seat, data.get("kind"), data.get("body", ""), data.get("to"))
            return "", 204
        seat, messages, waiting = wait_for_signals(place.appointment, place.role, place.seat_key, connection)
    except NotInRoom as gone:
        return _gone(gone.reason)
    except BadSignal as bad:
        return jsonify(error=str(bad)), 400
    response = jsonify(messages=messages, peer=peer_in_room(seat), open=check_entry(place.appointment).is_open,
                       waiting=waiting)
    response.headers["Cache-Control"] = "no-store"
    return response


def _gone(reason: str):
    return jsonify(gone=reason, message=str(GONE.get(reason, GONE["left"]))), \
        410 if reason in ENDED_FOR_GOOD or reason == "replaced" else 409


@bp.post("/t/<token>/leave")
def leave(token):
    return _leave(_client_place(token))


@bp.post("/clinic/appointments/<int:appointment_id>/leave")
@clinician_required
def clinician_leave(appointment_id):
    return _leave(_clinician_place(appointment_id))


def _leave(place: Place):
    """The Leave button (back to the join page), or the page's goodbye as it closes (204)."""
    form = LeaveForm()
    if not form.validate_on_submit():
        return form_expired(gettext("Please reload the page and try again."))
    leave_room(place.appointment, place.role, place.seat_key, form.connection.data, how=form.how.data or "left",
               ip=request.remote_addr)
    if form.how.data == "page_closed":
        return "", 204
    return redirect(place.url("join", left=1), 303)
