"""The client's portal home."""
from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from practice.appointments import KINDS
from practice.clock import format_local, span, utcnow
from practice.documents import portal_rows
from practice.feeds import feed_url
from practice.models import Practice
from practice.online_changes import change_token, changes_allowed
from practice.passkeys import passkeys_possible
from practice.telehealth import check_entry, join_token, upcoming_for

from ._auth import client_required, session_check_in
from .passkeys import offer_passkey

bp = Blueprint("portal", __name__, url_prefix="/portal")
SHOWN = 10  # the next ten; "Show all" lists the rest (a weekly client has a year booked)


@bp.get("")
@client_required
def home():
    now = utcnow()
    practice = Practice.current()
    feed = feed_url(current_user)
    show_all = request.args.get("appointments") == "all"
    appointments = _appointments(current_user, practice, now, None if show_all else SHOWN + 1)
    return render_template("portal_home.html", practice=practice, client=current_user,
                           appointments=appointments[:None if show_all else SHOWN], show_all=show_all, shown=SHOWN,
                           more=not show_all and len(appointments) > SHOWN, documents=portal_rows(current_user),
                           feed_url=feed, feed_subscribe_url="webcal://" + feed.split("://", 1)[1],
                           passkey_offer=offer_passkey(), passkeys=passkeys_possible(), check_in=session_check_in())


def _appointments(client, practice, now, limit) -> list[dict]:
    """Plain rows for the list: when, with whom, and the join link of a telehealth session."""
    zone = client.zone(practice)
    rows = []
    for appointment in upcoming_for(client, now, limit):
        entry = check_entry(appointment, now, practice)
        telehealth = appointment.kind == "telehealth"
        rows.append(dict(
            when=span(appointment.starts_at, appointment.ends_at, zone), clinician=appointment.clinician.name,
            kind=gettext(KINDS.get(appointment.kind, appointment.kind)), is_open=entry.is_open,
            opens_at=format_local(entry.opens_at, zone),
            join_url=url_for("telehealth.join", token=join_token(appointment)) if telehealth else None,
            # The same link as in the emails; it says why when changes have closed.
            change_url=url_for("changes.appointment_page", token=change_token(appointment), via="portal")
            if changes_allowed(practice) and appointment.starts_at > now else None))
    return rows
