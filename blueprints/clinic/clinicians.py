"""The practice's clinicians (admins only): who has an account, and when each last signed in."""
from flask import render_template

from practice.clinicians import clinician_rows
from practice.clock import format_local
from practice.models import Practice

from . import bp
from ._access import admin_required


@bp.get("/clinicians")
@admin_required
def clinicians_list():
    practice = Practice.current()
    rows = [dict(row.__dict__, last_sign_in=format_local(row.last_sign_in, practice.timezone)
                 if row.last_sign_in else "Never") for row in clinician_rows()]
    return render_template("clinic/clinicians.html", practice=practice, clinicians=rows)
