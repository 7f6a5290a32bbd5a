"""Who is signed in: flask-login reads our server-side session cookie (never Flask's own
signed-cookie session, which a replayed cookie would keep alive after sign-out)."""
from datetime import timedelta
from functools import wraps

from flask import abort, current_app, g, request, session as signed_cookie, url_for
from flask_login import current_user

from practice.models import Client, Practice, Session
from practice.clock import utcnow
from practice.sessions import (WARN_BEFORE_IDLE, SessionEnded, check_session, end_session, find_session,
                               idle_deadline, start_session)

from ._htmx import redirect_to

# The session-warning poll must not count as activity, or an open tab would never time out.
PASSIVE_ENDPOINTS = {"signin.session_warning"}


def init_login(login_manager) -> None:
    login_manager.request_loader(_load_principal)
    login_manager.unauthorized_handler(_unauthorized)


def cookie_name() -> str:
    return current_app.config["PORTAL_SESSION_COOKIE"]


def _load_principal(req):
    raw_id = req.cookies.get(cookie_name())
    if not raw_id:
        return None
    try:
        session = check_session(raw_id, touch=req.endpoint not in PASSIVE_ENDPOINTS)
    except SessionEnded as ended:
        g.session_ended = ended
        return None
    g.portal_session = session
    return session.client or session.clinician


def _unauthorized():
    return redirect_to(url_for("signin.sign_in_page"))


def client_required(view):
    """Only a signed-in client; anyone else goes to the sign-in page (htmx: HX-Redirect)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated:
            return _unauthorized()
        if not isinstance(current_user, Client):  # the proxy answers for what it stands for
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def sign_in(response, *, client=None, clinician=None):
    """Start a fresh session (new id at every sign-in) and put its id in the cookie."""
    previous = current_session()
    if previous is not None:
        end_session(previous, "replaced")
    raw_id, _ = start_session(client=client, clinician=clinician, ip=request.remote_addr,
                              user_agent=request.user_agent.string)
    response.set_cookie(
        cookie_name(), raw_id, httponly=True, samesite="Lax", path="/",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
    return response


def forget_cookie(response):
    response.delete_cookie(cookie_name(), path="/", secure=current_app.config["SESSION_COOKIE_SECURE"],
                           httponly=True, samesite="Lax")
    return response


def current_session():
    """The live session row for this request, or None (reads the cookie via flask-login)."""
    return g.get("portal_session") if current_user.is_authenticated else None


def signed_in_user():
    """Whoever this request's session signs in, as the Client or Clinician itself (not
    flask-login's proxy for it), or None: the same object the loader gave flask-login."""
    session = current_session()
    return None if session is None else session.client or session.clinician


def session_check_in(session=None) -> int:
    """Seconds until a page's session-timeout warning (_session_warning.html) asks again."""
    remaining = (idle_deadline(session or current_session()) - utcnow()).total_seconds()
    return max(int(remaining - WARN_BEFORE_IDLE.total_seconds()), 1)


def ended_session():
    """The session this browser's cookie names if it ended recently (to say why, prefill email).

    Only within the practice's absolute session limit: an old cookie replayed months later
    must not tell who once used this browser."""
    current_user.is_authenticated  # make flask-login run the loader
    ended = g.get("session_ended")
    session = ended.session if ended is not None else find_session(request.cookies.get(cookie_name()))
    signed_out = signed_cookie.pop("signed_out", None)  # once, on the page right after signing out
    if session is None and isinstance(signed_out, int):
        session = Session.get_or_none(Session.id == signed_out)
    if session is None or session.ended_at is None:
        return None
    if utcnow() - session.ended_at > timedelta(hours=Practice.current().client_absolute_hours):
        return None
    return session


def signed_out(response, session):
    """Clear the session cookie, and let the sign-in page that follows (once) say why and fill
    in the address: Flask's signed cookie carries the ended row's id, nothing that names anyone."""
    if session is not None:
        signed_cookie["signed_out"] = session.id
    return forget_cookie(response)


def stale_cookie() -> bool:
    """The browser holds our session cookie, but it signs nobody in: the page clears it."""
    return cookie_name() in request.cookies and not current_user.is_authenticated


def no_store_when_signed_in(response):
    """Any page answered to a live session may show client data: no browser or proxy keeps it.
    One after_request rather than one line per view, so a new page cannot forget it."""
    if request.endpoint != "static" and cookie_name() in request.cookies and current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"
    return response
