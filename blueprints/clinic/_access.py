"""Who may see what on the clinician side."""
from functools import wraps

from flask import abort, url_for
from flask_login import current_user

from practice.models import Client, Clinician
from practice.second_factor import must_set_up

from .._auth import signed_in_user
from .._htmx import redirect_to


def signed_in_clinician() -> Clinician | None:
    user = signed_in_user()
    return user if isinstance(user, Clinician) else None


def clinician_required(view):
    """A signed-in clinician only. A client session is refused (403), never shown clinic data;
    nobody signed in goes to the clinician sign-in page (htmx: HX-Redirect). A clinician without
    a second factor at a practice that requires one (turned on, or reset, since they signed in)
    sees nothing of the clinic before setting one up."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        clinician = signed_in_clinician()
        if clinician is None:
            if current_user.is_authenticated:
                abort(403)
            return redirect_to(url_for("clinic.sign_in"))
        if must_set_up(clinician):
            return redirect_to(url_for("clinic.second_factor_setup"))
        return view(*args, **kwargs)

    return wrapped


def admin_required(view):
    @wraps(view)
    @clinician_required
    def wrapped(*args, **kwargs):
        if not signed_in_clinician().is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def client_or_404(client_id: int) -> Client:
    """A client this clinician may see; any other id looks exactly like one that does not exist."""
    client = Client.visible_to(signed_in_clinician()).where(Client.id == client_id).first()
    if client is None:
        abort(404)
    return client
