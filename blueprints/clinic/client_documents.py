"""Documents shared with a client: share one or several (one email, one link), resend what is
not complete (a fresh link; the previous one stops working), and unshare."""
from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext
from flask_wtf import FlaskForm

from practice.documents import DocumentError, document_panel, resend_share, share_documents, unshare
from practice.models import DocumentShare, Practice

from .._htmx import redirect_to
from . import bp
from ._access import client_or_404, clinician_required, signed_in_clinician


def _back_to(client):
    return redirect_to(url_for("clinic.client_view", client_id=client.id, _anchor="documents"))


def _share_or_404(client, share_id: int) -> DocumentShare:
    """The share, if it is this client's: any other id looks like one that does not exist."""
    share = DocumentShare.get_or_none((DocumentShare.id == share_id) & (DocumentShare.client == client))
    if share is None:
        abort(404)
    return share


@bp.route("/clients/<int:client_id>/documents/share", methods=["GET", "POST"])
@clinician_required
def client_documents_share(client_id):
    """The share form on a page of its own (the client page embeds it too); POST shares."""
    client = client_or_404(client_id)
    form = FlaskForm()
    chosen = request.form.getlist("template")
    error = None
    if form.validate_on_submit():
        try:
            shares = share_documents(client, chosen, by=signed_in_clinician())
        except DocumentError as problem:
            error = str(problem)
        else:
            titles = ", ".join(f"\u201c{share.version.title}\u201d" for share in shares)
            flash(gettext("Shared %(titles)s with %(name)s: one email with a link is on its way to %(email)s. "
                          "Any earlier link no longer works.", titles=titles, name=client.name, email=client.email),
                  "success")
            return _back_to(client)
    return render_template("clinic/document_share.html", client=client, practice=Practice.current(),
                           documents=document_panel(client), chosen=chosen, error=error), 422 if error else 200


@bp.post("/clients/<int:client_id>/documents/<int:share_id>/resend")
@clinician_required
def client_document_resend(client_id, share_id):
    client = client_or_404(client_id)
    share = _share_or_404(client, share_id)
    try:
        resend_share(share, by=signed_in_clinician())
    except DocumentError as error:
        flash(str(error), "error")
    else:
        flash(gettext("\u201c%(title)s\u201d sent again to %(email)s with a fresh link. The previous link no longer "
                      "works.", title=share.version.title, email=client.email), "success")
    return _back_to(client)


@bp.post("/clients/<int:client_id>/documents/<int:share_id>/unshare")
@clinician_required
def client_document_unshare(client_id, share_id):
    client = client_or_404(client_id)
    share = _share_or_404(client, share_id)
    try:
        unshare(share, by=signed_in_clinician())
    except DocumentError as error:
        flash(str(error), "error")
    else:
        flash(gettext("\u201c%(title)s\u201d is unshared: %(name)s no longer sees it.", title=share.version.title,
                      name=client.name), "success")
    return _back_to(client)
