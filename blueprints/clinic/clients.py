"""Clients: list and live search, add, edit, archive and restore, and each client's page."""
from flask import flash, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from practice.clients import (ClientError, add_client, archive_client, find_clients, live_sessions, restore_client,
                              update_client)
from practice.client_overview import client_overview
from practice.documents import document_panel
from practice.i18n import LANGUAGES
from practice.history import link_history, other_mail, recent_events
from practice.models import Clinician, Passkey, Practice
from practice.zones import zone_choices, zone_label

from .._forms import at_most, plain_text
from .._htmx import page_or_fragment, redirect_to
from . import bp
from ._access import client_or_404, clinician_required, signed_in_clinician

SHOWN = 200  # a small practice's whole list; a search narrows anything longer


class ClientForm(FlaskForm):
    name = StringField(_l("Name"), validators=[
        DataRequired(_l("Enter the client's name.")), at_most(200, _l("Keep the name under 200 characters.")),
        plain_text()])
    email = EmailField(_l("Email"), validators=[
        DataRequired(_l("Enter the client's email address.")), at_most(254, _l("That address is too long.")),
        plain_text()])
    phone = StringField(_l("Phone (optional)"), validators=[
        Length(max=40, message=_l("Keep the phone number under 40 characters."))])
    timezone = SelectField(_l("Time zone (optional)"))
    language = SelectField(_l("Language"), choices=list(LANGUAGES.items()), default="en")
    clinician = SelectField(_l("Clinician"), coerce=int)


def _client_form(me: Clinician, **data) -> ClientForm:
    """The form with its choices; only an admin assigns a clinician."""
    form = ClientForm(data=data or None)
    form.timezone.choices = zone_choices(current=data.get("timezone"),
                                         first=("", gettext("The practice's (%(zone)s)",
                                                            zone=Practice.current().timezone)))
    if me.is_admin:
        form.clinician.choices = [(c.id, c.name) for c in Clinician.select().order_by(Clinician.name)]
    else:
        del form.clinician
    return form


def _assignee(form: ClientForm):
    return Clinician.get_by_id(form.clinician.data) if "clinician" in form else None


def _render_form(form, client=None):
    status = 422 if form.is_submitted() else 200
    return render_template("clinic/client_form.html", form=form, client=client, practice=Practice.current()), status


@bp.get("/clients")
@clinician_required
def clients_list():
    text = request.args.get("q", "").strip()
    archived = request.args.get("show") == "archived"
    clients = list(find_clients(signed_in_clinician(), text, archived=archived).limit(SHOWN + 1))
    return page_or_fragment("clinic/clients_list.html", {"client-search": "clinic/_client_results.html"},
                            clients=clients[:SHOWN], more=len(clients) > SHOWN, q=text, archived=archived,
                            practice=Practice.current())


@bp.route("/clients/new", methods=["GET", "POST"])
@clinician_required
def client_add():
    me = signed_in_clinician()
    form = _client_form(me, clinician=me.id)
    if form.validate_on_submit():
        try:
            client = add_client(form.email.data, form.name.data, form.timezone.data, phone=form.phone.data,
                                language=form.language.data, clinician=_assignee(form) or me, by=me)
        except ClientError as error:
            form[error.field or "name"].errors.append(str(error))
        else:
            flash(gettext("%(name)s added. Invite them to the portal when you are ready.", name=client.name), "success")
            return redirect_to(url_for("clinic.client_view", client_id=client.id))
    return _render_form(form)


@bp.get("/clients/<int:client_id>")
@clinician_required
def client_view(client_id):
    client = client_or_404(client_id)
    return render_template("clinic/client.html", client=client, practice=Practice.current(),
                           history=link_history(client), other_mail=other_mail(client), events=recent_events(client),
                           overview=client_overview(client), documents=document_panel(client),
                           passkey_count=Passkey.of(client).count())


@bp.app_template_global("zone_label")
def _zone_label(zone: str) -> str:
    """"Eastern Time — New York", for a page that names the practice's zone."""
    return zone_label(zone)


@bp.route("/clients/<int:client_id>/edit", methods=["GET", "POST"])
@clinician_required
def client_edit(client_id):
    me = signed_in_clinician()
    client = client_or_404(client_id)
    form = _client_form(me, name=client.name, email=client.email, phone=client.phone,
                        timezone=client.timezone or "", language=client.language,
                        clinician=client.clinician_id or me.id)
    if form.validate_on_submit():
        try:
            changed = update_client(client, email=form.email.data, name=form.name.data, phone=form.phone.data,
                                    zone=form.timezone.data, language=form.language.data,
                                    clinician=_assignee(form), by=me)
        except ClientError as error:
            form[error.field or "name"].errors.append(str(error))
        else:
            flash(gettext("Saved.") if changed else gettext("Nothing changed."), "success" if changed else "info")
            if "email" in changed:
                flash(gettext("The address changed, so earlier sign-in links no longer work."), "warning")
            return redirect_to(url_for("clinic.client_view", client_id=client.id))
    return _render_form(form, client)


@bp.route("/clients/<int:client_id>/archive", methods=["GET", "POST"])
@clinician_required
def client_archive(client_id):
    """GET asks for confirmation; POST archives."""
    client = client_or_404(client_id)
    if client.archived_at is not None:
        return redirect_to(url_for("clinic.client_view", client_id=client.id))
    form = FlaskForm()
    if form.validate_on_submit():
        archive_client(client, by=signed_in_clinician())
        flash(gettext("%(name)s is archived: signed out everywhere, and no link of theirs works.", name=client.name),
              "success")
        return redirect_to(url_for("clinic.client_view", client_id=client.id))
    return render_template("clinic/client_archive.html", client=client, form=form, practice=Practice.current(),
                           signed_in=live_sessions(client))


@bp.post("/clients/<int:client_id>/restore")
@clinician_required
def client_restore(client_id):
    client = client_or_404(client_id)
    if client.archived_at is not None:
        restore_client(client, by=signed_in_clinician())
        flash(gettext("%(name)s is active again. Their old links stay dead: send a new one.", name=client.name),
              "success")
    return redirect_to(url_for("clinic.client_view", client_id=client.id))
