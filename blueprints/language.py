"""The language switch: a plain form (it works without JavaScript), remembered in a cookie;
for a signed-in client it is also their own setting, which their emails follow."""
from flask import Blueprint, abort, current_app, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from practice.clients import set_language
from practice.i18n import LANGUAGES
from portico.errors import form_expired
from portico.i18n import LANGUAGE_COOKIE

from ._htmx import redirect_to

bp = Blueprint("language", __name__)
YEAR = 365 * 24 * 3600


def _back(target: str | None) -> str:
    """Only a path on this portal (never //elsewhere), else the sign-in page."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return url_for("signin.sign_in_page")


@bp.post("/language")
def language_choose():
    language = request.form.get("language")
    if language not in LANGUAGES:
        abort(400)
    if not FlaskForm().validate_on_submit():
        return form_expired()
    if current_user.is_authenticated and hasattr(current_user, "language"):
        set_language(current_user, language)
    response = redirect_to(_back(request.form.get("next")))
    response.set_cookie(LANGUAGE_COOKIE, language, max_age=YEAR, samesite="Lax", httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response
