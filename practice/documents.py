"""Shared documents and intake paperwork: templates and their versions, sharing with a client
(one email, one sign-in link), drafts, submitted answers, resend and unshare.

A share points at the template version it was shared with, and the answers name it too:
editing a template later makes a new version and never changes what a client was asked or
what they answered. To give a client the new wording, unshare and share again.
"""
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from peewee import fn

from . import audit
from .clock import format_local, to_local, utcnow
from .document_fields import (ACKNOWLEDGE_FIELDS, AnswersInvalid, clean_fields, display, draft_values,  # noqa: F401
                              validate_answers)  # AnswersInvalid: raised by submit_answers, caught by callers
from .links import issue_link
from .i18n import N_, clinic_gettext, gettext as _, in_language, ngettext
from .mail import describe_duration, external_url, queue_email, unique_subject
from .models import (Client, Clinician, DocumentShare, DocumentTemplate, DocumentVersion, Link, Practice, Session,
                     write_transaction)
from .sessions import idle_deadline
from .text import CONTROL_MESSAGE, has_control_characters

KINDS = {"form": N_("Form to fill in"), "acknowledge": N_("Read and acknowledge")}
# A draft posted by the browser whose session has just timed out is still kept for this
# long after the timeout (see draft_keeper); a cookie replayed later saves nothing.
DRAFT_GRACE = timedelta(minutes=10)
TIMED_OUT = ("idle", "absolute")


class DocumentError(ValueError):
    """Something a clinician or client asked that cannot be done; the message is for them.
    `field` names the form field it belongs beside, when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# ---- templates and versions ----------------------------------------------------------------

def fields_of(version: DocumentVersion) -> list[dict]:
    """The version's questions. A read-and-acknowledge document's two are Portico's words, not
    the practice's: shown in the reader's language."""
    fields = json.loads(version.fields_json or "[]")
    if version.kind == "acknowledge":
        built_in = {f["key"]: f["label"] for f in ACKNOWLEDGE_FIELDS}
        for f in fields:
            if built_in.get(f["key"]) == f["label"]:
                f["label"] = _(f["label"])
    return fields


def current_version(template: DocumentTemplate) -> DocumentVersion:
    return DocumentVersion.get((DocumentVersion.template == template) & (DocumentVersion.number == template.version))


def _clean_template(title: str, body: str, kind: str, rows: list[dict], existing_keys: set) -> tuple:
    if has_control_characters(title):  # a title goes into the email's subject
        raise DocumentError(CONTROL_MESSAGE, "title")
    title = " ".join((title or "").split())
    if not title:
        raise DocumentError(clinic_gettext("Give the document a title."), "title")
    if len(title) > 120:
        raise DocumentError(clinic_gettext("Keep the title under 120 characters."), "title")
    if kind not in KINDS:
        raise DocumentError(clinic_gettext("Choose what kind of document this is."), "kind")
    body = (body or "").replace("\r\n", "\n").strip()
    if len(body) > 20000:
        raise DocumentError(clinic_gettext("Keep the text under 20,000 characters."), "body")
    if kind == "acknowledge":
        if not body:
            raise DocumentError(clinic_gettext("Write the text the client is to read."), "body")
        return title, body, ACKNOWLEDGE_FIELDS
    return title, body, clean_fields(rows, existing_keys)


def create_template(*, title: str, kind: str, body: str = "", rows: list[dict] = (), by: Clinician | None = None,
                    now: datetime | None = None) -> DocumentTemplate:
    """A new template at version 1. Raises DocumentError or FieldsInvalid."""
    now = now or utcnow()
    title, body, fields = _clean_template(title, body, kind, list(rows), set())
    with write_transaction():
        template = DocumentTemplate.create(title=title, kind=kind, version=1, created_at=now, updated_at=now)
        DocumentVersion.create(template=template, number=1, title=title, kind=kind, body=body,
                               fields_json=json.dumps(fields), created_at=now, created_by=by)
        if by is not None:
            audit.record("document_template_created", clinician=by, detail=title, at=now)
    return template


def update_template(template: DocumentTemplate, *, title: str, body: str = "", rows: list[dict] = (),
                    by: Clinician | None = None, now: datetime | None = None) -> bool:
    """Save an edit as a new version (earlier shares keep theirs); False when nothing changed."""
    now = now or utcnow()
    keys = {f["key"] for v in template.versions for f in fields_of(v)}
    title, body, fields = _clean_template(title, body, template.kind, list(rows), keys)
    latest = current_version(template)
    if (title, body, fields) == (latest.title, latest.body, fields_of(latest)):
        return False
    with write_transaction():
        number = template.version + 1
        DocumentVersion.create(template=template, number=number, title=title, kind=template.kind, body=body,
                               fields_json=json.dumps(fields), created_at=now, created_by=by)
        DocumentTemplate.update(title=title, version=number, updated_at=now).where(
            DocumentTemplate.id == template.id).execute()
        template.title, template.version = title, number
        if by is not None:
            audit.record("document_template_edited", clinician=by, detail=f"{title} (version {number})", at=now)
    return True


def set_archived(template: DocumentTemplate, archived: bool, *, by: Clinician | None = None) -> None:
    """Archived templates are no longer offered for sharing; what was shared stays."""
    now = utcnow()
    with write_transaction():
        DocumentTemplate.update(archived_at=now if archived else None).where(
            DocumentTemplate.id == template.id).execute()
        audit.record("document_template_archived" if archived else "document_template_restored", clinician=by,
                     detail=template.title, at=now)
    template.archived_at = now if archived else None


def template_rows() -> list[dict]:
    """The template list: plain values, with how often each was shared and completed."""
    counts = {row.template_id: (row.shared, row.done) for row in DocumentShare.select(
        DocumentShare.template, fn.COUNT(DocumentShare.id).alias("shared"),
        fn.COUNT(DocumentShare.completed_at).alias("done")).where(DocumentShare.unshared_at.is_null()).group_by(
        DocumentShare.template)}
    zone = Practice.current().timezone
    return [dict(id=t.id, title=t.title, kind=KINDS[t.kind], version=t.version, archived=t.archived_at is not None,
                 updated=format_local(t.updated_at, zone), shared=counts.get(t.id, (0, 0))[0],
                 completed=counts.get(t.id, (0, 0))[1]) for t in DocumentTemplate.listed()]


# ---- sharing -------------------------------------------------------------------------------

def _must_be_active(client: Client) -> None:
    if client.archived_at is not None:
        raise DocumentError(clinic_gettext("%(name)s is archived and cannot sign in. Restore them first.",
                                           name=client.name))


def target_for(shares: list[DocumentShare]) -> str:
    """Where the emailed link lands after sign-in: the document itself, or the list of them."""
    return f"/portal/documents/{shares[0].id}" if len(shares) == 1 else "/portal/documents"


def share_documents(client: Client, template_ids: list, *, by: Clinician,
                    now: datetime | None = None) -> list[DocumentShare]:
    """Share one or several templates: one email, one sign-in link that lands on them. A
    template the client still has to do is not shared twice; its share is sent again."""
    _must_be_active(client)
    now = now or utcnow()
    wanted = []
    for raw in template_ids:
        try:
            template_id = int(raw)
        except (TypeError, ValueError):
            template_id = None
        if template_id is None or not 0 < template_id < 2**31:  # past any id column's range: no such document
            raise DocumentError(clinic_gettext("That document is not available to share."), "templates")
        if template_id not in wanted:
            wanted.append(template_id)
    if not wanted:
        raise DocumentError(clinic_gettext("Choose at least one document to share."), "templates")
    templates = list(DocumentTemplate.shareable().where(DocumentTemplate.id.in_(wanted)))
    if len(templates) != len(wanted):
        raise DocumentError(clinic_gettext("One of those documents is no longer available to share. Please choose "
                                           "again."), "templates")
    with write_transaction():
        # Two clinicians sharing at once: the second waits here until the first commits, then
        # finds its share open and sends that again instead of making another. (Locking first
        # also keeps the two from deadlocking when issue_link locks the row below. SQLite's
        # IMMEDIATE transaction already lets one writer in at a time.)
        client.lock()
        shares = []
        for template in templates:
            share = _outstanding(client, template) or DocumentShare.create(
                client=client, template=template, version=current_version(template), shared_at=now, shared_by=by)
            shares.append(share)
        link = _send(client, shares, by=by, now=now)
        audit.record("documents_shared", client=client, clinician=by, link=link, at=now,
                     detail=", ".join(s.version.title for s in shares))
    return shares


def _outstanding(client: Client, template: DocumentTemplate) -> DocumentShare | None:
    return DocumentShare.select().where(
        (DocumentShare.client == client) & (DocumentShare.template == template)
        & DocumentShare.completed_at.is_null() & DocumentShare.unshared_at.is_null()).first()


def _send(client: Client, shares: list[DocumentShare], *, by: Clinician, now: datetime,
          resent: bool = False) -> Link:
    """Issue the link (replacing earlier ones, as always) and queue the one email."""
    practice = Practice.current()
    issued = issue_link(client, "document_share", target=target_for(shares), now=now)
    ids = [s.id for s in shares]
    others = [s.version.title for s in DocumentShare.for_client(client).where(
        DocumentShare.completed_at.is_null() & DocumentShare.id.not_in(ids))]
    titles = [s.version.title for s in shares]
    with in_language(client.language):
        _queue_documents_email(client, issued, practice, titles, others, by=by, now=now, resent=resent)
    DocumentShare.update(link=issued.link).where(DocumentShare.id.in_(ids)).execute()
    return issued.link


def _queue_documents_email(client, issued, practice, titles, others, *, by, now, resent) -> None:
    """The share's email, in the client's language (the titles are the practice's own words)."""
    what = titles[0] if len(titles) == 1 else ngettext("%(num)d document", "%(num)d documents", len(titles))
    sent = format_local(now, practice.timezone)
    if resent:
        subject = _("Reminder: %(what)s to complete for %(practice)s (sent %(sent)s)",
                    what=what, practice=practice.name, sent=sent)
    else:
        subject = _("%(what)s to complete for %(practice)s (sent %(sent)s)", what=what, practice=practice.name, sent=sent)
    queue_email(
        to=client.email,
        subject=unique_subject(client, subject[:245], now),
        template="documents", kind="document_share", client=client, link=issued.link, now=now,
        client_name=client.name, sender=by.name if by else practice.name, titles=titles, others=others,
        resent=resent, url=external_url("signin.link_open", token=issued.token),
        sign_in_url=external_url("signin.sign_in_page"), code=issued.code,
        lifetime=describe_duration(issued.link.expires_at - issued.link.issued_at),
        expires=format_local(issued.link.expires_at, client.zone(practice)),
    )


def resend_share(share: DocumentShare, *, by: Clinician, now: datetime | None = None) -> Link:
    """A fresh link for a document not yet complete; the previous link stops working."""
    _must_be_active(share.client)
    if share.unshared_at is not None:
        raise DocumentError(clinic_gettext("\u201c%(title)s\u201d was unshared; share it again instead.",
                                           title=share.version.title))
    if share.completed_at is not None:
        raise DocumentError(clinic_gettext("\u201c%(title)s\u201d is already complete: nothing to resend.",
                                           title=share.version.title))
    now = now or utcnow()
    with write_transaction():
        link = _send(share.client, [share], by=by, now=now, resent=True)
        audit.record("document_resent", client=share.client, clinician=by, link=link, detail=share.version.title,
                     at=now)
    return link


def unshare(share: DocumentShare, *, by: Clinician, now: datetime | None = None) -> None:
    """Withdraw a document the client has not completed; a completed one stays on record."""
    now = now or utcnow()
    with write_transaction():
        done = DocumentShare.update(unshared_at=now, unshared_by=by).where(
            (DocumentShare.id == share.id) & DocumentShare.completed_at.is_null()
            & DocumentShare.unshared_at.is_null()).execute()
        if not done:
            fresh = DocumentShare.get_by_id(share.id)
            if fresh.completed_at is not None:
                raise DocumentError(clinic_gettext("\u201c%(title)s\u201d is already complete and stays on record.",
                                                   title=share.version.title))
            return  # already unshared: nothing more to do
        audit.record("document_unshared", client=share.client, clinician=by, detail=share.version.title, at=now)


# ---- the client's side ---------------------------------------------------------------------

def share_of(client: Client, share_id: int) -> DocumentShare | None:
    """The client's own share with this id (withdrawn ones too), or None: another client's
    share looks exactly like one that does not exist."""
    return DocumentShare.select().where((DocumentShare.id == share_id) & (DocumentShare.client == client)).first()


def mark_opened(share: DocumentShare, now: datetime | None = None) -> None:
    if share.opened_at is None:
        now = now or utcnow()
        DocumentShare.update(opened_at=now).where(
            (DocumentShare.id == share.id) & DocumentShare.opened_at.is_null()).execute()
        share.opened_at = now


def _must_be_open(share: DocumentShare) -> None:
    if share.unshared_at is not None:
        raise DocumentError(_("The practice has withdrawn this document: there is nothing more to do."))
    if share.completed_at is not None:
        raise DocumentError(_("You have already submitted this document."))


def draft_of(share: DocumentShare) -> dict:
    return json.loads(share.draft_json) if share.draft_json else {}


def save_draft(share: DocumentShare, posted: dict, now: datetime | None = None) -> datetime:
    """Keep what the client has typed so far (not validated); returns when it was saved."""
    _must_be_open(share)
    now = now or utcnow()
    values = draft_values(fields_of(share.version), posted)
    saved = DocumentShare.update(draft_json=json.dumps(values), draft_saved_at=now).where(
        (DocumentShare.id == share.id) & DocumentShare.completed_at.is_null()
        & DocumentShare.unshared_at.is_null()).execute()
    if not saved:
        raise DocumentError(_("You have already submitted this document."))
    share.draft_json, share.draft_saved_at = json.dumps(values), now
    return now


def submit_answers(share: DocumentShare, posted: dict, now: datetime | None = None) -> dict:
    """Validate and store the answers as JSON naming the template and version, or raise
    AnswersInvalid (the posted values are kept as the draft, so nothing is lost)."""
    _must_be_open(share)
    now = now or utcnow()
    zone = share.client.timezone or Practice.current().timezone
    try:
        answers = validate_answers(fields_of(share.version), posted, today=to_local(now, zone).date())
    except AnswersInvalid:
        save_draft(share, posted, now)
        raise
    record = {"template": share.template_id, "version": share.version.number, "title": share.version.title,
              "submitted_at": now.isoformat() + "Z", "answers": answers}
    with write_transaction():
        done = DocumentShare.update(answers_json=json.dumps(record), completed_at=now, draft_json=None).where(
            (DocumentShare.id == share.id) & DocumentShare.completed_at.is_null()
            & DocumentShare.unshared_at.is_null()).execute()
        if not done:
            raise DocumentError(_("You have already submitted this document."))
        audit.record("document_submitted", client=share.client, detail=share.version.title, at=now)
    share.answers_json, share.completed_at = json.dumps(record), now
    return record


def draft_keeper(session: Session | None, user_agent: str | None, now: datetime | None = None) -> Client | None:
    """Whose draft a POST from this ended session may still save. A browser whose session
    timed out while the client was typing sends the draft anyway; refusing it would throw
    away what they typed. Only a timeout counts (not signing out, archiving or an ended
    session), only within DRAFT_GRACE of the moment it timed out, only from the browser the
    session was started in (its user agent), and it only writes: the answer shows nothing of
    the client's. A copied cookie replayed later changes nothing."""
    now = now or utcnow()
    if session is None or session.client_id is None or session.end_reason not in TIMED_OUT:
        return None
    if now > idle_deadline(session) + DRAFT_GRACE or session.client.archived_at is not None:
        return None
    if (user_agent or "")[:255] != (session.user_agent or ""):
        return None
    return session.client


@dataclass
class AnswerRow:
    label: str
    text: str
    kind: str


@dataclass
class ShareRow:
    """A share as plain values, for the client's portal and the clinician's client page."""
    id: int
    title: str
    kind: str
    version: int
    state: str  # to_do, in_progress, complete, unshared
    state_text: str
    shared: str
    shared_by: str
    opened: str
    completed: str
    unshared: str
    is_new: bool
    answers: list[AnswerRow] = field(default_factory=list)


STATES = {"to_do": N_("To do"), "in_progress": N_("Started, not submitted"), "complete": N_("Completed"),
          "unshared": N_("Unshared")}


def answer_rows(share: DocumentShare) -> list[AnswerRow]:
    """Each question with the answer given, read against the version the client answered."""
    if not share.answers_json:
        return []
    answers = json.loads(share.answers_json)["answers"]
    return [AnswerRow(label=f["label"], text=display(f, answers.get(f["key"])), kind=f["type"])
            for f in fields_of(share.version)]


def share_row(share: DocumentShare, zone: str, *, with_answers: bool = False) -> ShareRow:
    if share.unshared_at is not None:
        state = "unshared"
    elif share.completed_at is not None:
        state = "complete"
    else:
        state = "in_progress" if share.draft_saved_at else "to_do"
    when = lambda moment: format_local(moment, zone)  # noqa: E731
    text = _(STATES[state])
    if state == "complete":
        text = _("Completed %(when)s", when=when(share.completed_at))
    elif state == "in_progress":
        text = _("Started, not submitted (last saved %(when)s)", when=when(share.draft_saved_at))
    return ShareRow(
        id=share.id, title=share.version.title, kind=_(KINDS[share.version.kind]), version=share.version.number,
        state=state, state_text=text, shared=when(share.shared_at),
        shared_by=share.shared_by.name if share.shared_by else "", opened=when(share.opened_at),
        completed=when(share.completed_at), unshared=when(share.unshared_at),
        is_new=share.opened_at is None and state == "to_do",
        answers=answer_rows(share) if with_answers else [])


def portal_rows(client: Client) -> list[ShareRow]:
    """Every document shared with the client (withdrawn ones aside): to do first."""
    zone = client.zone()
    return [share_row(s, zone) for s in DocumentShare.for_client(client)]


def clinic_rows(client: Client) -> list[ShareRow]:
    """Every share, withdrawn ones included, with the answers, in the practice's time zone."""
    zone = Practice.current().timezone
    return [share_row(s, zone, with_answers=True) for s in DocumentShare.history_for(client)]


def document_panel(client: Client) -> dict:
    """What the clinician's client page shows: each share, and what can be shared."""
    return {"shares": clinic_rows(client),
            "templates": [dict(id=t.id, title=t.title, kind=KINDS[t.kind]) for t in DocumentTemplate.shareable()]}


def paragraphs(body: str) -> list[str]:
    """A document's text as paragraphs: a blank line starts a new one."""
    return [p.strip() for p in (body or "").replace("\r\n", "\n").split("\n\n") if p.strip()]


# ---- the two examples a practice starts with ----------------------------------------------

INTAKE_FIELDS = [
    {"key": "f1", "type": "short_text", "label": "Full name", "required": True, "options": []},
    {"key": "f2", "type": "date", "label": "Date of birth", "required": True, "options": []},
    {"key": "f3", "type": "short_text", "label": "Pronouns", "required": False, "options": []},
    {"key": "f4", "type": "short_text", "label": "Emergency contact (name and phone number)", "required": True,
     "options": []},
    {"key": "f5", "type": "long_text", "label": "What brings you to therapy now?", "required": True, "options": []},
    {"key": "f6", "type": "single_choice", "label": "Have you had counselling or therapy before?", "required": True,
     "options": ["Yes", "No", "Not sure"]},
    {"key": "f7", "type": "multiple_choice", "label": "How may we contact you?", "required": False,
     "options": ["Email", "Phone call", "Text message"]},
    {"key": "f8", "type": "long_text", "label": "Anything else you would like us to know", "required": False,
     "options": []},
    {"key": "f9", "type": "signature", "label": "Type your full name to sign", "required": True, "options": []},
]

INTAKE_BODY = ("Please fill this in before your first session. It helps us prepare, and it stays "
               "between you and the practice.")

CONSENT_BODY = """\
This form explains how therapy with our practice works. Please read it before your first session.

Confidentiality. What you say in sessions stays private. We may share information only with your written \
permission, or where the law requires it: a serious risk of harm to you or to someone else, or a court order.

Sessions. Sessions last 50 minutes, in person or by secure video. If you cannot attend, please tell us at least \
24 hours before.

Records. We keep brief notes of each session, stored securely, and you may ask to see them.

Your choice. Taking part is voluntary. You may ask questions, or stop therapy, at any time.

By signing below you confirm that you have read and understood this information and agree to take part."""


def seed_example_documents() -> None:
    """The two examples every practice starts with (called once, when no template exists)."""
    create_template(title="Intake questionnaire", kind="form", body=INTAKE_BODY,
                    rows=[dict(f, options="\n".join(f["options"])) for f in INTAKE_FIELDS])
    create_template(title="Informed consent", kind="acknowledge", body=CONSENT_BODY)
