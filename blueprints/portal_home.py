"""The client's portal home."""
from flask import Blueprint, render_template
from flask_login import current_user

from practice.models import Practice

from ._auth import client_required, current_session
from practice.sessions import WARN_BEFORE_IDLE, idle_deadline
from practice.clock import utcnow

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("")
@client_required
def home():
    remaining = (idle_deadline(current_session()) - utcnow()).total_seconds()
    return render_template("portal_home.html", practice=Practice.current(), client=current_user,
                           appointments=[], documents=[],
                           check_in=max(int(remaining - WARN_BEFORE_IDLE.total_seconds()), 1))
