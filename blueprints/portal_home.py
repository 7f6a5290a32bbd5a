"""The client's portal home."""
from flask import Blueprint, current_app, render_template, url_for
from flask_login import current_user

from practice.appointments import KINDS
from practice.clock import format_local, utcnow
from practice.documents import portal_rows
from practice.feeds import feed_token
from practice.mail import external_url
from practice.models import Practice
from practice.telehealth import check_entry, span, telehealth_token, upcoming_for

from ._auth import client_required, session_check_in

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("")
@client_required
def home():
    now = utcnow()
    practice = Practice.current()
    feed = external_url("feed.calendar_feed", token=feed_token(current_user, current_app.config["SECRET_KEY"].encode()))
    return render_template("portal_home.html", practice=practice, client=current_user,
                           appointments=_appointments(current_user, practice, now), documents=portal_rows(current_user),
                           feed_url=feed, feed_subscribe_url="webcal://" + feed.split("://", 1)[1],
                           check_in=session_check_in())


def _appointments(client, practice, now) -> list[dict]:
    """Plain rows for the list: when, with whom, and the join link of a telehealth session."""
    zone = client.timezone or practice.timezone
    rows = []
    for appointment in upcoming_for(client, now):
        entry = check_entry(appointment, now, practice)
        telehealth = appointment.kind == "telehealth"
        token = telehealth_token(appointment, current_app.config["SECRET_KEY"]) if telehealth else None
        rows.append(dict(
            when=span(appointment.starts_at, appointment.ends_at, zone), clinician=appointment.clinician.name,
            kind=KINDS.get(appointment.kind, appointment.kind), is_open=entry.is_open,
            opens_at=format_local(entry.opens_at, zone),
            join_url=url_for("telehealth.join", token=token) if telehealth else None))
    return rows
