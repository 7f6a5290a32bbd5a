"""The calendar: day and week views, and appointment changes."""
from datetime import date, timedelta

from flask import abort, flash, make_response, render_template, request, url_for
from flask_babel import gettext

from practice.appointments import (AppointmentError, OverlapWarning, cancel_appointment, end_at_local_time,
                                   extend_appointment, local_date, local_day_bounds, move_appointment, next_free_start,
                                   overlapping, visible_appointment)
from practice.availability import clock_hours
from practice.clock import clock_time, format_local, to_local, utcnow
from practice.i18n import N_
from practice.models import Appointment, Practice
from practice.telehealth import check_entry, replace_join_link

from portico.errors import error_page, form_expired

from .._htmx import redirect_to, vary, wants_fragment
from . import bp
from ._access import clinician_required, signed_in_clinician
from ._appointment_forms import (AppointmentForm, EndForm, ExtendForm, NewJoinLinkForm, form_data_for, parse_date,
                                 parse_time, save_appointment)
from ._calendar_choice import UnknownChoice, choose, choose_after_change
from ._calendar_view import card, day_page, describe, week_page

VIEWS = {"day": day_page, "week": week_page}
NEW_LENGTH = timedelta(minutes=50)  # a new appointment's length until the clinician changes it
# What a change made from a card did, said on the card once it is done.
DONE = {"Extended": N_("Extended: %(name)s's appointment now ends at %(time)s."),
        "Shortened": N_("Shortened: %(name)s's appointment now ends at %(time)s.")}


@bp.get("/calendar")
@clinician_required
def calendar_day():
    return _calendar("day", _requested_day())


@bp.get("/calendar/week")
@clinician_required
def calendar_week():
    return _calendar("week", _requested_day())


def _today(practice: Practice) -> date:
    return local_date(utcnow(), practice.timezone)


def _requested_day() -> date | None:
    """?date=YYYY-MM-DD; anything else means today."""
    try:
        return parse_date(request.args.get("date"))
    except ValueError:
        return None


def _calendar(view: str, day: date | None, choice=None, replace=None, status: int = 200):
    """A calendar page, of the clinician `choice` names (else the one asked for, `?clinician=`);
    `replace` is a card to show instead of the stored one (with its problem)."""
    me = signed_in_clinician()
    if choice is None:
        try:
            choice = choose(me, request.args.get("clinician"))
        except UnknownChoice as unknown:
            return error_page(gettext("No such calendar"), str(unknown), 404,
                              back=(url_for(f"clinic.calendar_{view}"), gettext("Open the calendar")))
    practice, now = Practice.current(), utcnow()
    today = _today(practice)
    page = VIEWS[view](me, choice, day or today, practice, now, today, replace=replace)
    return render_template(f"clinic/calendar_{view}.html", practice=practice, **page), status


def _appointment_or_404(appointment_id: int) -> Appointment:
    """One this clinician may see; another clinician's looks exactly like one that does not exist."""
    appointment = visible_appointment(signed_in_clinician(), appointment_id)
    if appointment is None:
        abort(404)
    return appointment


def _day_url(appointment: Appointment, practice: Practice, view: str = "day", choice=None) -> str:
    """The calendar the appointment is on: `choice`'s, else its clinician's (an admin's own is
    their default, as they see clients)."""
    endpoint = "clinic.calendar_week" if view == "week" else "clinic.calendar_day"
    me = signed_in_clinician()
    whose = choice.value if choice else str(appointment.clinician_id) if appointment.clinician_id != me.id else None
    return url_for(endpoint, date=local_date(appointment.starts_at, practice.timezone).isoformat(), clinician=whose)


@bp.route("/appointments/new", methods=["GET", "POST"])
@clinician_required
def appointment_new():
    me, practice = signed_in_clinician(), Practice.current()
    form = AppointmentForm(me, data={**_first_free_time(me, practice, _requested_day()),
                                     "clinician": _requested_clinician(me), "kind": "telehealth"})
    return _appointment_form(form, me, practice, None)


def _requested_clinician(me) -> str:
    """An admin coming from a clinician's calendar books for that clinician (the form says whom)."""
    asked = request.args.get("clinician", "")
    return asked if me.is_admin and asked.isdigit() else str(me.id)


def _first_free_time(me, practice: Practice, requested: date | None) -> dict:
    """The form's date and times: the next free half hour in the clinician's working hours, from now (or
    from the start of the day asked for, if later; that day even at a weekend)."""
    now, zone = utcnow(), practice.timezone
    after = max(now, local_day_bounds(requested, zone)[0]) if requested else now
    start = next_free_start(me, zone, after=after, length=NEW_LENGTH, weekdays_only=requested is None,
                            hours=clock_hours(me))
    if start is None:  # two weeks without a free half hour: the day asked for at 9
        day = requested or _today(practice)
        return {"date": day.isoformat(), "start_time": "09:00", "end_time": "09:50"}
    local_start, local_end = to_local(start, zone), to_local(start + NEW_LENGTH, zone)
    return {"date": local_start.date().isoformat(), "start_time": f"{local_start:%H:%M}",
            "end_time": f"{local_end:%H:%M}"}


@bp.route("/appointments/<int:appointment_id>/edit", methods=["GET", "POST"])
@clinician_required
def appointment_edit(appointment_id: int):
    me, practice = signed_in_clinician(), Practice.current()
    appointment = _appointment_or_404(appointment_id)
    form = AppointmentForm(me, appointment, data=form_data_for(appointment, practice.timezone))
    return _appointment_form(form, me, practice, appointment)


def _appointment_form(form: AppointmentForm, me, practice: Practice, appointment: Appointment | None):
    problem, clashes, past = None, [], None
    if form.validate_on_submit():
        saved, problem, clashes, past = save_appointment(form, me, practice.timezone, appointment)
        if saved is not None:
            summary = describe(saved, practice)
            flash(gettext("Booked: %(appointment)s.", appointment=summary) if appointment is None
                  else gettext("Saved: %(appointment)s.", appointment=summary), "success")
            return redirect_to(_day_url(saved, practice))
    status = 422 if form.is_submitted() else 200
    back = _day_url(appointment, practice) if appointment else url_for("clinic.calendar_day")
    return render_template("clinic/calendar_appointment.html", form=form, appointment=appointment, problem=problem,
                           clashes=[describe(c, practice) for c in clashes], practice=practice,
                           past=format_local(past, practice.timezone) if past else None, back=back,
                           room_open=appointment is not None and check_entry(appointment).is_open), status


@bp.route("/appointments/<int:appointment_id>/cancel", methods=["GET", "POST"])
@clinician_required
def appointment_cancel(appointment_id: int):
    """GET asks "are you sure?"; POST cancels (the telehealth link dies with it)."""
    practice = Practice.current()
    appointment = _appointment_or_404(appointment_id)
    if request.method == "POST":
        cancel_appointment(appointment, by=signed_in_clinician())
        flash(gettext("Cancelled: %(appointment)s.", appointment=describe(appointment, practice)), "success")
        return redirect_to(_day_url(appointment, practice))
    return render_template("clinic/calendar_cancel.html", appointment=appointment, practice=practice,
                           summary=describe(appointment, practice), back=_day_url(appointment, practice))


@bp.post("/appointments/<int:appointment_id>/new-join-link")
@clinician_required
def appointment_new_join_link(appointment_id: int):
    """"New join link": the old one stops working (its page says so) and the client is emailed the new one."""
    appointment = _appointment_or_404(appointment_id)
    if not NewJoinLinkForm().validate_on_submit():
        return form_expired(gettext("Please open the appointment again and press New join link."))
    try:
        replace_join_link(appointment, by=signed_in_clinician())
    except AppointmentError as error:
        flash(str(error), "error")
    else:
        flash(gettext("New join link emailed to %(name)s. The old link no longer opens the session.",
                      name=appointment.client.name), "success")
    return redirect_to(url_for("clinic.appointment_edit", appointment_id=appointment.id))


@bp.post("/appointments/<int:appointment_id>/extend")
@clinician_required
def appointment_extend(appointment_id: int):
    """"+15 min" / "+30 min": the grid answers in place for htmx, else back to the calendar."""
    appointment = _appointment_or_404(appointment_id)
    form = ExtendForm()
    if not form.validate_on_submit():
        return _card_answer(appointment, form, problem=gettext("Extend by 15 or 30 minutes."))
    return _change_on_card(
        appointment, form,
        lambda: extend_appointment(appointment, form.minutes.data, by=signed_in_clinician(),
                                   allow_overlap=form.save_anyway.data),
        overlap={"message": gettext("+%(minutes)d min would overlap", minutes=form.minutes.data),
                 "label": gettext("Extend anyway"),
                 "endpoint": "clinic.appointment_extend", "values": {"minutes": form.minutes.data}},
        blame_field=False, done="Extended")


@bp.post("/appointments/<int:appointment_id>/end")
@clinician_required
def appointment_end(appointment_id: int):
    """An exact end time (local, on the day the appointment starts)."""
    practice = Practice.current()
    appointment = _appointment_or_404(appointment_id)
    form = EndForm()
    if not form.validate_on_submit():
        return _card_answer(appointment, form, problem=form.end_time.errors[0] if form.end_time.errors
                            else gettext("Enter a time."), problem_field="end_time")

    ends_before = appointment.ends_at

    def set_end():
        ends_at = end_at_local_time(appointment, parse_time(form.end_time.data), practice.timezone)
        move_appointment(appointment, starts_at=appointment.starts_at, ends_at=ends_at, by=signed_in_clinician(),
                         allow_overlap=form.save_anyway.data)
        return "Extended" if ends_at > ends_before else "Shortened"

    return _change_on_card(
        appointment, form, set_end,
        overlap={"message": gettext("Ending at %(time)s would overlap", time=form.end_time.data),
                 "label": gettext("Set end anyway"),
                 "endpoint": "clinic.appointment_end", "values": {"end_time": form.end_time.data}},
        blame_field=True)


def _change_on_card(appointment: Appointment, form, change, *, overlap: dict, blame_field: bool,
                    done: str | None = None):
    """Run a change made from the appointment's card and answer on the card: done (said in
    words: `done`, or what the change returns, a key of DONE), refused (beside the field to
    blame, when `blame_field`), or an overlap to confirm."""
    try:
        result = change()
        verb = result if isinstance(result, str) else done
    except OverlapWarning as warning:
        return _card_answer(appointment, form, confirm={**overlap, "overlaps": warning.appointments})
    except AppointmentError as error:
        return _card_answer(appointment, form, problem=str(error), problem_field=error.field if blame_field else None)
    return _card_answer(appointment, form, done=verb)


def _card_answer(appointment: Appointment, form, problem=None, problem_field=None, confirm=None, done=None):
    """The time grid the card sits on when one of its own forms asked (htmx): its new length,
    link window and lanes at once. Otherwise the calendar: a redirect after a change, the page
    with the card's problem beside it if refused. Either way the calendar the card was on (the
    form's `view` and `clinician`)."""
    practice, me = Practice.current(), signed_in_clinician()
    view = form.view.data if form.view.data in VIEWS else "day"
    choice = choose_after_change(me, form.clinician.data, appointment)
    appointment = Appointment.get_by_id(appointment.id)  # as stored, whatever was refused
    if done:
        done = gettext(DONE[done], name=appointment.client.name,
                       time=clock_time(appointment.ends_at, practice.timezone))
    others = overlapping(appointment.clinician, appointment.starts_at, appointment.ends_at, exclude=appointment) \
        if appointment.status == "scheduled" else []
    shown = card(appointment, practice, utcnow(), others, named=choice.names_clinicians)
    shown.problem, shown.problem_field, shown.done = problem, problem_field, done
    if confirm:
        confirm["overlaps"] = [describe(other, practice) for other in confirm["overlaps"]]
        shown.confirm = confirm
    status = 422 if problem or confirm else 200
    triggers = (f"extend-{appointment.id}", f"end-{appointment.id}", f"confirm-{appointment.id}")
    day = local_date(appointment.starts_at, practice.timezone)
    if any(wants_fragment(trigger) for trigger in triggers):
        page = VIEWS[view](me, choice, day, practice, utcnow(), _today(practice), replace=shown)
        return vary(make_response(render_template("clinic/_calendar_grid.html", practice=practice, **page), status))
    if status == 200:
        if done:
            flash(done, "success")
        return redirect_to(_day_url(appointment, practice, view, choice))
    return vary(make_response(_calendar(view, day, choice, replace=shown, status=status)))
