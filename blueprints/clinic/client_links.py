"""What a clinician does for a client's access: sign out everywhere, send a sign-in link,
invite to the portal, switch off their calendar address, and the link history that explains
why a link did not work."""
from flask import current_app, flash, make_response, render_template, url_for

from portal import wake_mail_job
from practice.clients import ClientError, invite_client, send_sign_in_link, sign_out_everywhere
from practice.feeds import revoke_feed
from practice.history import link_history, other_mail, recent_events
from practice.models import Practice

from .._htmx import redirect_to, vary, wants_fragment
from . import bp
from ._access import client_or_404, clinician_required, signed_in_clinician


def _code_key() -> bytes:
    return current_app.config["SECRET_KEY"].encode()


def _back_to(client):
    return redirect_to(url_for("clinic.client_view", client_id=client.id))


@bp.post("/clients/<int:client_id>/sign-out")
@clinician_required
def client_sign_out_everywhere(client_id):
    client = client_or_404(client_id)
    ended = sign_out_everywhere(client, by=signed_in_clinician())
    flash(f"{client.name} is signed out everywhere." if ended else f"{client.name} was not signed in anywhere.")
    return _back_to(client)


@bp.post("/clients/<int:client_id>/send-link")
@clinician_required
def client_send_link(client_id):
    client = client_or_404(client_id)
    try:
        send_sign_in_link(client, by=signed_in_clinician(), code_key=_code_key())
    except ClientError as error:
        flash(str(error))
        return _back_to(client)
    wake_mail_job()
    flash(f"A sign-in link is on its way to {client.email}. Any earlier link no longer works.")
    return _back_to(client)


@bp.post("/clients/<int:client_id>/invite")
@clinician_required
def client_invite(client_id):
    client = client_or_404(client_id)
    try:
        invite_client(client, by=signed_in_clinician(), code_key=_code_key())
    except ClientError as error:
        flash(str(error))
        return _back_to(client)
    wake_mail_job()
    flash(f"The invitation is on its way to {client.email}.")
    return _back_to(client)


@bp.post("/clients/<int:client_id>/feed/revoke")
@clinician_required
def client_feed_revoke(client_id):
    client = client_or_404(client_id)
    if revoke_feed(client, by=signed_in_clinician()):
        flash(f"{client.name}'s calendar address no longer works. Their portal home shows a new one.")
    else:
        flash(f"{client.name} had no calendar address in use.")
    return _back_to(client)


@bp.get("/clients/<int:client_id>/history")
@clinician_required
def client_history(client_id):
    """The history on its own page, or (for the Refresh link) just its section."""
    client = client_or_404(client_id)
    template = "clinic/_client_history.html" if wants_fragment("history-refresh") else "clinic/client_history.html"
    return vary(make_response(render_template(template, client=client, practice=Practice.current(),
                                              history=link_history(client), other_mail=other_mail(client),
                                              events=recent_events(client))))
