"""The clinician side, under /clinic/: sign-in and first run, calendar, clients, settings, clinicians."""
from flask import Blueprint

bp = Blueprint("clinic", __name__, url_prefix="/clinic")

from . import (auth, calendar, client_documents, clinicians, client_links, clients, documents,  # noqa: E402,F401
               online_changes, second_factor, settings, waiting)  # (views register on bp)
