"""The dev mailbox: with no MAIL_SERVER set, every queued email is readable here."""
import ipaddress

from flask import Blueprint, abort, render_template, request

from practice.models import Email

bp = Blueprint("devmail", __name__, url_prefix="/dev/mailbox")


@bp.before_request
def only_from_this_machine():
    # The mailbox holds live sign-in links: a portal left without MAIL_SERVER on a network
    # must not hand them to whoever asks.
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        abort(404)


@bp.get("")
def mailbox():
    return render_template("dev_mailbox.html", emails=Email.newest_first().limit(100))


@bp.get("/<int:email_id>")
def message(email_id):
    email = Email.get_or_none(Email.id == email_id)
    if email is None:
        abort(404)
    return render_template("dev_message.html", email=email)
