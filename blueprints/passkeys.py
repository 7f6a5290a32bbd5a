"""Client passkeys over HTTP: the two ceremonies (JSON, for static/passkeys.js), the list of
a client's passkeys with Remove, and the offer's "Not now"."""

from flask import Blueprint, current_app, flash, g, jsonify, make_response, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from practice import passkeys
from practice.clock import format_local
from practice.models import Passkey, Practice
from portico.extensions import rate_limit
from portico.hardening import takes_json

from ._auth import client_required, session_check_in, sign_in
from ._htmx import redirect_to, wants_fragment
from ._json import posted_credential

bp = Blueprint("passkeys", __name__)

# On this device the offer has been answered: "registered" or "dismissed". A device cookie,
# not a setting of the client's, since the offer is about this phone or laptop.
OFFER_COOKIE = "portico_passkey_offer"
OFFER_COOKIE_DAYS = 400  # browsers cap a cookie's life at about this


def offer_passkey() -> bool:
    """Whether the portal home asks "Sign in faster next time" (the script still checks that
    the browser can make a passkey before showing it)."""
    return passkeys.passkeys_possible() and request.cookies.get(OFFER_COOKIE) is None


def _offer_answered(response, value: str):
    response.set_cookie(OFFER_COOKIE, value, max_age=OFFER_COOKIE_DAYS * 86400, httponly=True, samesite="Lax",
                        path="/", secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _refused(status: int = 400):
    return jsonify(error=gettext(passkeys.REFUSED)), status


def _not_here():
    return jsonify(error=gettext("Passkeys cannot be used at this portal's address.")), 404


def _options(json_text: str):
    response = make_response(json_text, 200)
    response.headers["Content-Type"] = "application/json"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/sign-in/passkey/options")
@takes_json
@rate_limit("PASSKEY_IP_LIMIT")
def sign_in_options():
    if not passkeys.passkeys_possible():
        return _not_here()
    return _options(passkeys.sign_in_options())


@bp.post("/sign-in/passkey")
@takes_json
@rate_limit("PASSKEY_IP_LIMIT")
def sign_in_finish():
    """The same session as a link's, landing where a link lands (the portal home)."""
    credential = posted_credential()
    if credential is None or not passkeys.passkeys_possible():
        return _refused()
    try:
        client = passkeys.sign_in(credential, ip=request.remote_addr)
    except passkeys.PasskeyRefused:
        return _refused()  # the same words for every reason: nothing learnt about who has one
    target = url_for("portal.home")
    return _offer_answered(sign_in(jsonify(redirect=target), client=client), "registered")


@bp.post("/portal/passkeys/options")
@takes_json
@client_required
def register_options():
    if not passkeys.passkeys_possible():
        return _not_here()
    return _options(passkeys.registration_options(g.portal_session.client))


@bp.post("/portal/passkeys")
@takes_json
@rate_limit("PASSKEY_IP_LIMIT")
@client_required
def register_finish():
    credential = posted_credential()
    if credential is None or not passkeys.passkeys_possible():
        return jsonify(error=gettext("That passkey could not be saved. Please try again.")), 400
    try:
        passkey = passkeys.register(g.portal_session.client, credential, user_agent=request.user_agent.string,
                                    ip=request.remote_addr)
    except passkeys.PasskeyRefused:
        return jsonify(error=gettext("That passkey could not be saved. Please try again.")), 400
    body = jsonify(message=gettext("Passkey saved (%(device)s). Next time, sign in with it: no email needed.",
                                   device=passkey.device),
                   list=url_for("passkeys.passkey_list"))
    return _offer_answered(make_response(body, 201), "registered")


@bp.get("/portal/passkeys")
@client_required
def passkey_list():
    client = g.portal_session.client
    practice = Practice.current()
    zone = client.zone(practice)
    rows = [dict(id=p.id, device=p.device, created=format_local(p.created_at, zone),
                 last_used=format_local(p.last_used_at, zone) if p.last_used_at else gettext("Not yet"))
            for p in Passkey.of(client)]
    return render_template("passkeys.html", practice=practice, client=current_user, passkeys=rows,
                           possible=passkeys.passkeys_possible(), check_in=session_check_in())


@bp.post("/portal/passkeys/<int:passkey_id>/remove")
@client_required
def passkey_remove(passkey_id):
    if passkeys.remove(g.portal_session.client, passkey_id, ip=request.remote_addr):
        flash(gettext("Passkey removed: it no longer signs you in. You can also delete it from the device's settings."),
              "success")
    return redirect_to(url_for("passkeys.passkey_list"))


@bp.post("/portal/passkeys/offer/dismiss")
@client_required
def offer_dismiss():
    """"Not now": this device is not asked again (the passkeys page can still add one)."""
    if wants_fragment("passkey-offer-dismiss"):
        return _offer_answered(make_response("", 200), "dismissed")
    return _offer_answered(redirect_to(url_for("portal.home")), "dismissed")
