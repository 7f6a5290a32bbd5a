"""The practice's clinicians (admins only): who has an account, when each last signed in, their
second factor (with a reset for a lost phone), and the trail of second-factor changes."""
from flask import abort, flash, render_template, request, url_for
from flask_babel import gettext

from practice import second_factor
from practice.clinicians import clinician_rows
from practice.clock import format_local
from practice.models import Clinician, Practice

from .._htmx import redirect_to
from . import bp
from ._access import admin_required, signed_in_clinician


@bp.get("/clinicians")
@admin_required
def clinicians_list():
    practice = Practice.current()
    rows = [dict(row.__dict__, last_sign_in=format_local(row.last_sign_in, practice.timezone)
                 if row.last_sign_in else gettext("Never")) for row in clinician_rows()]
    events = [dict(at=format_local(event.at, practice.timezone), who=event.clinician.name,
                   what=gettext(second_factor.EVENT_WORDS.get(event.kind, event.kind)), detail=event.detail,
                   ip=event.ip or "")
              for event in second_factor.recent_events()]
    return render_template("clinic/clinicians.html", practice=practice, clinicians=rows, events=events,
                           me_id=signed_in_clinician().id)


@bp.post("/clinicians/<int:clinician_id>/reset-second-factor")
@admin_required
def clinician_reset_second_factor(clinician_id):
    clinician = Clinician.get_or_none(Clinician.id == clinician_id)
    if clinician is None:
        abort(404)
    try:
        second_factor.reset(clinician, by=signed_in_clinician(), ip=request.remote_addr)
    except second_factor.SecondFactorError as error:
        flash(str(error), "error")
    else:
        flash(gettext("%(name)s's second factor is reset and their sessions ended: they set up a new one at their "
                      "next sign-in.", name=clinician.name), "success")
    return redirect_to(url_for("clinic.clinicians_list"))
