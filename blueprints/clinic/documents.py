"""Document templates: every clinician sees and shares them; admins write and edit them
(each saved edit is a new version, so what clients already answered never changes)."""
from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FieldList, Form, FormField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from practice.document_fields import FIELD_TYPES, FieldsInvalid
from practice.documents import (KINDS, DocumentError, create_template, current_version, fields_of, paragraphs,
                                set_archived, template_rows, update_template)
from practice.models import DocumentTemplate, Practice

from .._forms import plain_text
from .._htmx import redirect_to
from . import bp
from ._access import admin_required, clinician_required, signed_in_clinician


class QuestionForm(Form):
    """One question of an intake form, as the editor shows it (no CSRF of its own)."""
    key = HiddenField()
    question = StringField(_l("Question"))
    answer_type = SelectField(_l("Kind of answer"), choices=[(key, _l(label)) for key, label in FIELD_TYPES.items()])
    required = BooleanField(_l("The client must answer this"))
    choices = TextAreaField(_l("Choices, one per line (single and multiple choice only)"))
    remove = BooleanField(_l("Remove this question"))


class TemplateForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(_l("Give the document a title.")),
                                                 Length(max=120, message=_l("Keep the title under 120 characters.")),
                                                 plain_text()])
    kind = SelectField(_l("Kind"), choices=list(KINDS.items()))
    body = TextAreaField(_l("Text"), validators=[
        Length(max=20000, message=_l("Keep the text under 20,000 characters."))])
    questions = FieldList(FormField(QuestionForm))


def _template_or_404(template_id: int) -> DocumentTemplate:
    template = DocumentTemplate.get_or_none(DocumentTemplate.id == template_id)
    if template is None:
        abort(404)
    return template


def _rows(form: TemplateForm) -> list[tuple]:
    """(editor entry, the domain's row) for each question not marked for removal."""
    return [(entry, {"key": entry.key.data, "label": entry.question.data, "type": entry.answer_type.data,
                     "required": entry.required.data, "options": entry.choices.data})
            for entry in form.questions if not entry.remove.data]


def _render(form, template=None, status=200, problem=None):
    return render_template("clinic/document_form.html", form=form, template=template, problem=problem,
                           practice=Practice.current()), status


def _save(form: TemplateForm, template: DocumentTemplate | None, me):
    """Validate and save; on a problem, put the message beside its field and re-render (422)."""
    if "add_question" in request.form:
        form.questions.append_entry()
        return _render(form, template)
    if not form.validate_on_submit():
        return _render(form, template, 422 if form.is_submitted() else 200)
    rows = _rows(form)
    try:
        if template is None:
            template = create_template(title=form.title.data, kind=form.kind.data, body=form.body.data,
                                       rows=[row for _, row in rows], by=me)
            flash(gettext("\u201c%(title)s\u201d is saved and ready to share.", title=template.title), "success")
        elif update_template(template, title=form.title.data, body=form.body.data, rows=[row for _, row in rows],
                             by=me):
            flash(gettext("Saved as version %(version)s. Documents already shared keep the version they were sent.",
                          version=template.version), "success")
        else:
            flash(gettext("Nothing changed."), "info")
    except DocumentError as error:
        if error.field in form:
            form[error.field].errors.append(str(error))
            return _render(form, template, 422)
        return _render(form, template, 422, problem=str(error))
    except FieldsInvalid as invalid:
        if invalid.row is None:
            return _render(form, template, 422, problem=str(invalid))
        rows[invalid.row][0].question.errors.append(str(invalid))
        return _render(form, template, 422, problem=gettext("Please check the question marked below."))
    return redirect_to(url_for("clinic.document_template_view", template_id=template.id))


@bp.get("/documents")
@clinician_required
def document_templates_list():
    return render_template("clinic/documents.html", templates=template_rows(), practice=Practice.current())


@bp.route("/documents/new", methods=["GET", "POST"])
@admin_required
def document_template_new():
    form = TemplateForm()
    if request.method == "GET":
        form.questions.append_entry()
    return _save(form, None, signed_in_clinician())


@bp.get("/documents/<int:template_id>")
@clinician_required
def document_template_view(template_id):
    template = _template_or_404(template_id)
    version = current_version(template)
    return render_template("clinic/document.html", template=template, version=version, fields=fields_of(version),
                           paragraphs=paragraphs(version.body), kinds=KINDS, field_types=FIELD_TYPES,
                           practice=Practice.current())


@bp.route("/documents/<int:template_id>/edit", methods=["GET", "POST"])
@admin_required
def document_template_edit(template_id):
    template = _template_or_404(template_id)
    version = current_version(template)
    questions = [{"key": f["key"], "question": f["label"], "answer_type": f["type"], "required": f["required"],
                  "choices": "\n".join(f["options"])} for f in fields_of(version)] if template.kind == "form" else []
    form = TemplateForm(data={"title": version.title, "body": version.body, "questions": questions})
    del form.kind  # chosen when the template was made
    return _save(form, template, signed_in_clinician())


@bp.post("/documents/<int:template_id>/archive")
@admin_required
def document_template_archive(template_id):
    """Archive, or restore an archived template (one button that says which)."""
    template = _template_or_404(template_id)
    archived = template.archived_at is None
    set_archived(template, archived, by=signed_in_clinician())
    flash(gettext("\u201c%(title)s\u201d is archived: no longer offered for sharing. What was shared stays.",
                  title=template.title) if archived
          else gettext("\u201c%(title)s\u201d can be shared again.", title=template.title), "success")
    return redirect_to(url_for("clinic.document_template_view", template_id=template.id))
