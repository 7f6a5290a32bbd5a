"""What a clinician does for a client's access: sign out everywhere, send a sign-in link,
invite to the portal, switch off their calendar address, remove their passkeys, and the link history that explains
why a link did not work."""
from flask import flash, make_response, render_template, request, url_for
from flask_babel import gettext, ngettext

from practice.clients import ClientError, invite_client, send_sign_in_link, sign_out_everywhere
from practice.feeds import revoke_feed
from practice.history import link_history, other_mail, recent_events
from practice.i18n import N_
from practice.models import Practice
from practice.passkeys import remove_all

from .._htmx import page_or_fragment, redirect_to, vary, wants_fragment
from . import bp
from ._access import client_or_404, clinician_required, signed_in_clinician


def _back_to(client):
    return redirect_to(url_for("clinic.client_view", client_id=client.id))


@bp.post("/clients/<int:client_id>/sign-out")
@clinician_required
def client_sign_out_everywhere(client_id):
    client = client_or_404(client_id)
    ended = sign_out_everywhere(client, by=signed_in_clinician())
    flash(gettext("%(name)s is signed out everywhere.", name=client.name) if ended
          else gettext("%(name)s was not signed in anywhere.", name=client.name), "success" if ended else "info")
    return _back_to(client)


@bp.post("/clients/<int:client_id>/send-link")
@clinician_required
def client_send_link(client_id):
    return _mail_link(client_id, send_sign_in_link, N_("A sign-in link is on its way to %(email)s. "
                                                       "Any earlier link no longer works."))


@bp.post("/clients/<int:client_id>/invite")
@clinician_required
def client_invite(client_id):
    return _mail_link(client_id, invite_client, N_("The invitation is on its way to %(email)s."))


def _mail_link(client_id: int, send, sent_message: str):
    """Send the client a link (a sign-in link, an invitation) and say so, or say why not."""
    client = client_or_404(client_id)
    try:
        send(client, by=signed_in_clinician())
    except ClientError as error:
        flash(str(error), "error")
    else:
        flash(gettext(sent_message, email=client.email), "success")
    return _back_to(client)


@bp.post("/clients/<int:client_id>/feed/revoke")
@clinician_required
def client_feed_revoke(client_id):
    client = client_or_404(client_id)
    if revoke_feed(client, by=signed_in_clinician()):
        flash(gettext("%(name)s's calendar address no longer works. Their portal home shows a new one.",
                      name=client.name), "success")
    else:
        flash(gettext("%(name)s had no calendar address in use.", name=client.name), "info")
    return _back_to(client)


@bp.post("/clients/<int:client_id>/passkeys/remove-all")
@clinician_required
def client_passkeys_remove(client_id):
    """A lost phone: none of the client's passkeys signs anyone in from now on."""
    client = client_or_404(client_id)
    removed = remove_all(client, by=signed_in_clinician())
    flash(ngettext("Removed %(num)d passkey: %(name)s signs in with an email link until they add a new one.",
                   "Removed %(num)d passkeys: %(name)s signs in with an email link until they add a new one.",
                   removed, name=client.name)
          if removed else gettext("%(name)s had no passkeys.", name=client.name), "success" if removed else "info")
    return _back_to(client)


@bp.get("/clients/<int:client_id>/history")
@clinician_required
def client_history(client_id):
    """The history on its own page (`before`: the links numbered below it), just its section
    (the Refresh link), or the next page of rows ("Show older")."""
    client = client_or_404(client_id)
    before = request.args.get("before", type=int)
    before = before if before is not None and before > 0 else None
    history = link_history(client, before=before)
    if wants_fragment("history-older"):  # only the rows: the rest of the section is on the page already
        return vary(make_response(render_template("clinic/_link_rows.html", client=client, history=history)))
    return page_or_fragment("clinic/client_history.html", {"history-refresh": "clinic/_client_history.html"},
                            client=client, practice=Practice.current(), history=history,
                            before=before, other_mail=other_mail(client), events=recent_events(client))
