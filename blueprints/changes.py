"""The client's own changes: /a/<token>, from every reminder and booking email (and the
portal), to choose another time or cancel, within the practice's rules."""
import re
from datetime import date, datetime, timedelta

from flask import Blueprint, abort, make_response, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField

from practice.appointments import KINDS, local_day_bounds, week_start
from practice.availability import earliest_start, is_open_slot, latest_start, open_slots
from practice.clock import clock_time, day_month, format_local, local_date, long_date, plain_date, span, to_local, utcnow
from practice.models import Appointment, Practice
from practice.online_changes import MAX_REASON, VIA, ChangeRefused, cancel, find_change_link, reschedule, standing

from portico.errors import form_expired
from portico.i18n import speak_as

from ._htmx import page_or_fragment, redirect_to, vary

bp = Blueprint("changes", __name__)
MOMENT = re.compile(r"(\d{8}T\d{4})\Z")  # a slot's start in URLs: naive UTC, YYYYMMDDTHHMM


class MoveForm(FlaskForm):
    start = HiddenField()
    sequence = HiddenField()


class CancelForm(FlaskForm):
    sequence = HiddenField()
    reason = TextAreaField(_l("Reason (optional)"))


def _moment(text: str | None) -> datetime | None:
    if not isinstance(text, str) or not MOMENT.match(text):
        return None
    try:
        moment = datetime.strptime(text, "%Y%m%dT%H%M")
    except ValueError:
        return None
    # Far outside any horizon, and at the edges of what the time zones can convert: no time to offer.
    return moment if 2000 <= moment.year <= 2200 else None


def _sequence(text) -> int | None:
    return int(text) if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) < 9 else None


class Visit:
    """The appointment this link opens, seen from the client's side."""

    def __init__(self, token: str):
        link = find_change_link(token)
        if link is None:
            abort(make_response(render_template("changes/unknown.html", practice=Practice.current()), 404))
        self.token, self.appointment, self.retired = token, link.appointment, link.retired
        speak_as(self.appointment.client)  # the client's pages: in their language
        self.practice, self.now = Practice.current(), utcnow()
        self.zone = self.appointment.client.zone(self.practice)
        self.via = request.values.get("via") if request.values.get("via") in VIA else None
        self.standing = standing(self.appointment, self.now, self.practice)

    def url(self, endpoint: str, **values) -> str:
        return url_for(endpoint, token=self.token, **({"via": self.via} if self.via else {}), **values)

    def context(self, **extra) -> dict:
        """What every page of the link shows: the appointment (client's zone, clinician's name,
        nothing clinical) and where it stands."""
        a, change, zone = self.appointment, self.standing.change, self.zone
        return dict(practice=self.practice, visit=self, standing=self.standing,
                    when=span(a.starts_at, a.ends_at, zone), clinician_name=a.clinician.name,
                    kind_text=gettext(KINDS.get(a.kind, a.kind)), closes_at=format_local(self.standing.closes_at, zone),
                    change=change, change_made_at=format_local(change.made_at, zone) if change else "",
                    asked_for=span(change.new_starts_at, change.new_ends_at, zone)
                    if change and change.new_starts_at else "",
                    **extra)

    def closed_page(self):
        """The page when no change can be made any more: it says why and how to reach the practice."""
        return render_template("changes/appointment.html", **self.context())


@bp.get("/a/<token>")
def appointment_page(token):
    visit = Visit(token)
    done = request.args.get("done")
    return render_template("changes/appointment.html", **visit.context(done=done if done in ("moved", "asked")
                                                                                      else None))


def _week(visit: Visit, requested: date | None):
    """The week (Monday, in the client's zone) to show, and its neighbours worth paging to."""
    first = local_date(earliest_start(visit.now, visit.practice), visit.zone)
    last = local_date(latest_start(visit.now, visit.practice), visit.zone)
    monday = week_start(requested if requested and first <= requested <= last else first)
    return (monday, monday - timedelta(days=7) if monday > first else None,
            monday + timedelta(days=7) if monday + timedelta(days=7) <= last else None)


def _slots_context(visit: Visit, requested: date | None, problem: str | None = None) -> dict:
    monday, previous, following = _week(visit, requested)
    start = local_day_bounds(monday, visit.zone)[0]
    end = local_day_bounds(monday + timedelta(days=6), visit.zone)[1]
    days = {}
    for slot in open_slots(visit.appointment, start, end, visit.now, visit.practice):
        local = to_local(slot.starts_at, visit.zone)
        days.setdefault(local.date(), []).append(dict(label=clock_time(slot.starts_at, visit.zone),
                                                      start=f"{slot.starts_at:%Y%m%dT%H%M}"))
    sunday = monday + timedelta(days=6)
    return visit.context(
        days=[dict(title=long_date(day), slots=slots) for day, slots in sorted(days.items())],
        week_title=gettext("%(first)s to %(last)s", first=day_month(monday), last=plain_date(sunday)), zone_name=visit.zone,
        previous=previous.isoformat() if previous else None, following=following.isoformat() if following else None,
        problem=problem, length=int((visit.appointment.ends_at - visit.appointment.starts_at).total_seconds() // 60))


def _requested_week() -> date | None:
    text = request.args.get("week", "")
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


@bp.get("/a/<token>/times")
def change_times(token):
    """Open times a week at a time; the paging links swap only the week (htmx) or load the page."""
    visit = Visit(token)
    if not visit.standing.can_change:
        return visit.closed_page()
    return page_or_fragment("changes/times.html", {"times-previous": "changes/_week.html",
                                                   "times-next": "changes/_week.html"},
                            **_slots_context(visit, _requested_week()))


@bp.get("/a/<token>/times/confirm")
def change_confirm(token):
    """Asks "move to this time?"; the button posts."""
    visit = Visit(token)
    if not visit.standing.can_change:
        return visit.closed_page()
    starts_at = _moment(request.args.get("start"))
    if starts_at is None:
        return render_template("changes/times.html", **_slots_context(
            visit, None, problem=gettext("Please choose one of the times below."))), 400
    if not is_open_slot(visit.appointment, starts_at, visit.now, visit.practice):
        return render_template("changes/times.html", **_slots_context(
            visit, week_start(local_date(starts_at, visit.zone)),
            problem=gettext("Sorry, that time is no longer open. Please choose another one."))), 409
    length = visit.appointment.ends_at - visit.appointment.starts_at
    form = MoveForm(data={"start": f"{starts_at:%Y%m%dT%H%M}", "sequence": str(visit.appointment.sequence)})
    return render_template("changes/confirm.html", **visit.context(
        form=form, new_when=span(starts_at, starts_at + length, visit.zone),
        back=visit.url("changes.change_times", week=week_start(local_date(starts_at, visit.zone)).isoformat())))


@bp.post("/a/<token>/times")
def change_move(token):
    visit = Visit(token)
    form = MoveForm()
    if not form.validate_on_submit():
        return form_expired(gettext("Please open the link from your email again and choose the time again."))
    starts_at = _moment(form.start.data)
    if starts_at is None:
        return render_template("changes/times.html", **_slots_context(
            visit, None, problem=gettext("Please choose one of the times below."))), 400
    try:
        change = reschedule(visit.appointment, starts_at, sequence=_sequence(form.sequence.data), via=visit.via or "")
    except ChangeRefused as refused:
        return _refused(visit, refused, starts_at)
    return redirect_to(visit.url("changes.appointment_page", done="asked" if change.kind == "request" else "moved"))


def _refused(visit: Visit, refused: ChangeRefused, starts_at: datetime | None = None):
    visit.appointment = Appointment.get_by_id(visit.appointment.id)
    visit.standing = standing(visit.appointment, utcnow(), visit.practice)
    if refused.reason == "taken" and visit.standing.can_change:
        week = week_start(local_date(starts_at, visit.zone)) if starts_at else None
        return vary(make_response(render_template("changes/times.html", **_slots_context(
            visit, week, problem=gettext("Sorry, that time was just taken. Please choose another one."))), 409))
    if refused.reason == "moved" and visit.standing.can_change:
        return vary(make_response(render_template("changes/appointment.html", **visit.context(
            problem="moved")), 409))
    return vary(make_response(visit.closed_page(), 409))


@bp.route("/a/<token>/cancel", methods=["GET", "POST"])
def change_cancel(token):
    """GET asks "cancel this appointment?", with room for a reason; POST cancels."""
    visit = Visit(token)
    if not visit.standing.can_change and request.method == "GET":
        return visit.closed_page()
    form = CancelForm(data={"sequence": str(visit.appointment.sequence)} if request.method == "GET" else None)
    if request.method == "POST":
        if not form.validate_on_submit():
            return form_expired(gettext("Please open the link from your email again."))
        reason = form.reason.data or ""
        if len(reason) > MAX_REASON:
            form.reason.errors = [gettext("Please keep the reason under %(max)s characters.", max=MAX_REASON)]
            return render_template("changes/cancel.html", **visit.context(form=form)), 422
        try:
            cancel(visit.appointment, reason=reason, sequence=_sequence(form.sequence.data), via=visit.via or "")
        except ChangeRefused as refused:
            return _refused(visit, refused)
        return redirect_to(visit.url("changes.appointment_page"))
    return render_template("changes/cancel.html", **visit.context(form=form))
