"""The dev mailbox: with no MAIL_SERVER set, every queued email is readable here."""
from flask import Blueprint, abort, render_template

from practice.models import Email

bp = Blueprint("devmail", __name__, url_prefix="/dev/mailbox")


@bp.get("")
def mailbox():
    return render_template("dev_mailbox.html", emails=Email.newest_first().limit(100))


@bp.get("/<int:email_id>")
def message(email_id):
    email = Email.get_or_none(Email.id == email_id)
    if email is None:
        abort(404)
    return render_template("dev_message.html", email=email)
