"""The client's documents, under /portal/documents (where a sign-in link may land): the list,
a document to fill in with drafts saved as they type, and what they submitted."""
from functools import wraps

from flask import Blueprint, abort, flash, make_response, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from practice.clock import clock_time, format_local, local_date, plain_date, utcnow
from practice.documents import (AnswersInvalid, DocumentError, answer_rows, draft_keeper, draft_of,
                                fields_of, mark_opened, paragraphs, portal_rows, save_draft, share_of, submit_answers)
from practice.models import Practice

from ._auth import client_required, ended_session, session_check_in
from ._htmx import redirect_to, vary, wants_fragment

bp = Blueprint("documents", __name__, url_prefix="/portal/documents")

FORM_ID = "document-form"  # the form whose typing posts drafts (its htmx trigger)


def _posted() -> dict:
    return request.form.to_dict(flat=False)


def _own_share(share_id: int):
    share = share_of(current_user, share_id)
    if share is None:
        abort(404)
    return share


def keeping_drafts(view):
    """client_required for the form's POSTs, except that the browser whose session timed out
    while the client was typing (minutes ago, not later: see draft_keeper) still has what it
    sent kept as the draft, then goes to sign in: after signing in again, the answers are there."""

    @wraps(view)
    def wrapped(share_id):
        if not current_user.is_authenticated:
            keeper = draft_keeper(ended_session(), request.user_agent.string)
            share = share_of(keeper, share_id) if keeper is not None else None
            if share is not None:
                try:
                    save_draft(share, _posted())
                except DocumentError:
                    pass  # submitted or withdrawn meanwhile: nothing to keep
                else:
                    flash(gettext("Your answers to \u201c%(title)s\u201d were saved. You can finish them now.",
                                  title=share.version.title), "success")
            return redirect_to(url_for("signin.sign_in_page"))
        return client_required(view)(share_id)

    return wrapped


def _page(template: str, status: int = 200, **context):
    return render_template(template, practice=Practice.current(), client=current_user, check_in=session_check_in(),
                           **context), status


@bp.get("")
@client_required
def documents_list():
    return _page("documents/list.html", documents=portal_rows(current_user))


@bp.get("/<int:share_id>")
@client_required
def document_view(share_id):
    share = _own_share(share_id)
    if share.unshared_at is not None:
        return _page("documents/withdrawn.html", 410, title=share.version.title)
    mark_opened(share)
    if share.completed_at is not None:
        zone = current_user.zone()
        return _page("documents/submitted.html", share=share, version=share.version,
                     paragraphs=paragraphs(share.version.body), answers=answer_rows(share),
                     completed=format_local(share.completed_at, zone))
    status = ""
    if share.draft_saved_at:
        status = gettext("Draft saved %(when)s.", when=format_local(share.draft_saved_at, current_user.zone()))
    return _form(share, draft_of(share), {}, status=status)


def _form(share, values: dict, errors: dict, *, status: str = "", code: int = 200):
    today = plain_date(local_date(utcnow(), current_user.zone()))
    return _page("documents/document.html", code, share=share, version=share.version,
                 fields=fields_of(share.version), paragraphs=paragraphs(share.version.body),
                 values=values, errors=errors, today=today, draft_status=status)


@bp.post("/<int:share_id>")
@keeping_drafts
def document_submit(share_id):
    share = _own_share(share_id)
    try:
        submit_answers(share, _posted())
    except AnswersInvalid as invalid:
        return _form(share, invalid.values, invalid.errors, status=gettext("Your answers so far are saved as a draft."),
                     code=422)
    except DocumentError as error:
        flash(str(error), "error")
    else:
        flash(gettext("Thank you: your answers are submitted. This is what you sent."), "success")
    return redirect_to(url_for(".document_view", share_id=share.id))


@bp.post("/<int:share_id>/draft")
@keeping_drafts
def document_draft(share_id):
    """Typing (htmx) gets a small status back; the "Save and finish later" button a page."""
    share = _own_share(share_id)
    fragment = wants_fragment(FORM_ID)
    try:
        saved = save_draft(share, _posted())
    except DocumentError as error:
        if fragment:
            return vary(make_response(render_template("documents/_draft_status.html", error=str(error)), 422))
        flash(str(error), "error")
        return redirect_to(url_for(".document_view", share_id=share.id))
    if fragment:
        at = clock_time(saved, current_user.zone(), seconds=True)
        return vary(make_response(render_template("documents/_draft_status.html",
                                                  status=gettext("Saved at %(time)s.", time=at))))
    flash(gettext("Your answers are saved. You can come back and finish any time."), "success")
    return redirect_to(url_for(".document_view", share_id=share.id))
