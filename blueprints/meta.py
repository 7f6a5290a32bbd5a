"""Health check and the front door."""
from flask import Blueprint, redirect, url_for
from flask_login import current_user

from practice.models import db

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
