"""The dev mailbox: with no MAIL_SERVER set, every queued email is readable here, as it would
be sent: its headers, its HTML part as a mail app shows it, its text part and its attachments."""
import email
import email.policy
import ipaddress

from flask import Blueprint, abort, current_app, make_response, render_template, request

from portico.mailer import as_message
from practice.clock import format_local
from practice.models import Email

bp = Blueprint("devmail", __name__, url_prefix="/dev/mailbox")

HEADERS = ("From", "To", "Reply-To", "Subject", "Date", "Message-ID")
# The HTML part is the email's, not ours: no script runs (the iframe's sandbox and this CSP both
# say so), it reaches nothing but its own inline styles and data: images, and only our own
# message page may frame it.
HTML_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox")


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


def _email_or_404(email_id: int) -> Email:
    row = Email.get_or_none(Email.id == email_id)
    if row is None:
        abort(404)
    return row


def _as_sent(row: Email) -> email.message.EmailMessage:
    """The message the mailer would put on the wire, read back with the email package."""
    wire = as_message(row, current_app.config.get("MAIL_DEFAULT_SENDER")).as_bytes()
    return email.message_from_bytes(wire, policy=email.policy.default)


@bp.get("")
def mailbox():
    return render_template("dev_mailbox.html", emails=Email.newest_first().limit(100))


@bp.get("/<int:email_id>")
def message(email_id):
    row = _email_or_404(email_id)
    sent = _as_sent(row)
    attachments = [(index, part.get_filename() or f"attachment-{index + 1}", part.get_content_type(),
                    len(part.get_payload(decode=True) or b""))
                   for index, part in enumerate(sent.iter_attachments())]
    return render_template("dev_message.html", email=row, headers=[(name, sent[name]) for name in HEADERS if sent[name]],
                           attachments=attachments, queued=format_local(row.queued_at, "UTC"))


@bp.get("/<int:email_id>/html")
def message_html(email_id):
    """The HTML part on its own, for the message page's sandboxed iframe."""
    part = _as_sent(_email_or_404(email_id)).get_body(preferencelist=("html",))
    if part is None:
        abort(404)
    # Links open in a new tab: inside the frame they would open our own pages, which refuse framing.
    html = part.get_content()
    response = make_response('<base target="_blank">' + html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = HTML_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<int:email_id>/attachments/<int:index>")
def message_attachment(email_id, index):
    """An attachment (the .ics), downloaded as the mail app would save it."""
    parts = list(_as_sent(_email_or_404(email_id)).iter_attachments())
    if index >= len(parts):
        abort(404)
    part = parts[index]
    response = make_response(part.get_payload(decode=True))
    response.headers["Content-Type"] = part.get_content_type()
    response.headers["Content-Disposition"] = f'attachment; filename="{part.get_filename() or "attachment"}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "no-store"
    return response
