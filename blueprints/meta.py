"""Health check and the front door."""
from flask import Blueprint, abort, make_response, redirect, url_for
from flask_login import current_user

from practice.logo import current_logo
from practice.models import Practice, db

bp = Blueprint("meta", __name__)


@bp.get("/healthz")
def healthz():
    db.execute_sql("SELECT 1")
    return {"status": "ok"}, 200


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("portal.home"))
    return redirect(url_for("signin.sign_in_page"))


@bp.get("/logo/<int:version>")
def logo(version):
    """The practice's logo, for every page's header (no sign-in: the sign-in page shows it too).
    Its URL names its version, so it is cached for good; an SVG is an image, never a page."""
    stored = current_logo()
    if stored is None:
        abort(404)
    if str(version) != Practice.current().logo_version:
        return redirect(url_for("meta.logo", version=Practice.current().logo_version))
    response = make_response(bytes(stored.data))
    response.headers["Content-Type"] = stored.content_type
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    # Opened on its own, an SVG runs nothing and loads nothing.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response
