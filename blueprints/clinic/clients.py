"""Clients: list and search, add, edit, archive, links and their history."""
from flask import render_template

from practice.models import Practice

from . import bp
from ._access import clinician_required


@bp.get("/clients")
@clinician_required
def clients_list():
    return render_template("clinic/clients_list.html", practice=Practice.current())
