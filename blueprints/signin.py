"""Client sign-in: ask for a link, open it, continue, or type the code; sign out; stay signed in."""
from datetime import timedelta

from flask import Blueprint, g, make_response, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, StringField
from wtforms.validators import DataRequired, Email, Length, Regexp

from practice.clock import clock_time, format_local, utcnow
from practice.links import CodeRejected, LinkRejected, open_link, redeem_code, redeem_link
from practice.mail import describe_duration
from practice.models import Client, Practice
from practice.passkeys import has_passkey, passkeys_possible
from practice.sessions import WARN_BEFORE_IDLE, check_session, end_session, idle_deadline
from practice.sign_in import MAILS_PER_ADDRESS_PER_HOUR, request_sign_in_link
from portico.errors import form_expired
from portico.extensions import login_manager, rate_limit
from portico.i18n import speak_as

from ._auth import (client_required, cookie_name, current_session, ended_session, forget_cookie, init_login,
                    no_store_when_signed_in, session_check_in, sign_in, signed_out, stale_cookie)
from ._forms import at_most
from ._htmx import page_or_fragment, redirect_to, wants_fragment

bp = Blueprint("signin", __name__)

ENDED_REASONS = {
    "idle": _l("You were signed out after a period of inactivity, to protect your privacy."),
    "absolute": _l("You were signed out because you had been signed in for a long time."),
    "signed_out": _l("You have signed out."),
    "archived": _l("Your access to the portal has ended. Please contact the practice."),
    "ended_by_clinician": _l("Your session was ended by the practice. Please sign in again."),
}


# The dead-link page's "Send me a new link" form (link_dead.html).
NEW_LINK_FORM = "new-link-form"
NEW_LINK_FORM_CONTEXT = dict(form_id=NEW_LINK_FORM, hx_target="#dead-link", button=_l("Send me a new link"))
CODE_FORM_FRAGMENTS = {"code-form": "_sign_in_sent.html"}
CODE_PAGE_FRAGMENTS = {"code-entry-form": "_sign_in_code_form.html"}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class SignInForm(FlaskForm):
    email = EmailField(_l("Email address"), filters=[_strip], validators=[
        DataRequired(_l("Please enter your email address.")),
        at_most(254, _l("That email address is too long.")),
        Email(_l("That does not look like an email address. Please check it and try again.")),
    ])


class CodeForm(FlaskForm):
    email = HiddenField(validators=[DataRequired(), Length(max=254)])
    code = StringField(_l("Code from the email"), validators=[
        DataRequired(_l("Please enter the 6-digit code.")),
        Regexp(r"^\s*\d{6}\s*$", message=_l("The code is 6 digits, like 123456.")),
    ])


class CodeEntryForm(CodeForm):
    """The code typed on the page of its own (/sign-in/code), by someone who did not ask for
    the link on this device: the address is typed too."""
    email = EmailField(_l("Email address"), filters=[_strip], validators=[
        DataRequired(_l("Please enter the email address the code was sent to.")),
        at_most(254, _l("That email address is too long.")),
    ])


class ContinueForm(FlaskForm):
    """Only the CSRF token: pressing the button is the whole input."""


def init_app(app):
    init_login(login_manager)
    app.after_request(no_store_when_signed_in)


def _lifetime(practice) -> str:
    return describe_duration(timedelta(minutes=practice.sign_in_link_minutes))


@bp.route("/sign-in", methods=["GET", "POST"])
@rate_limit("SIGN_IN_IP_LIMIT", methods=["POST"])
def sign_in_page():
    practice = Practice.current()
    form = SignInForm()
    if request.method == "GET":
        has_session_cookie = cookie_name() in request.cookies  # a first visit has no session to look up
        if has_session_cookie and current_user_is_client():
            return redirect_to(url_for("portal.home"))
        ended = ended_session()
        notice = ENDED_REASONS.get(ended.end_reason) if ended else None
        if ended is not None and ended.client_id:
            speak_as(ended.client)  # "You have signed out" in their language
            if not form.email.data:
                form.email.data = ended.client.email
        # Back after a timeout (or a sign-out) with a passkey: the passkey comes first.
        passkey_first = ended is not None and has_passkey(ended.client)
        response = make_response(render_template("sign_in.html", form=form, practice=practice, notice=notice,
                                                 passkeys=passkeys_possible(), passkey_first=passkey_first))
        return forget_cookie(response) if stale_cookie() else response
    if not form.validate_on_submit():
        if wants_fragment(NEW_LINK_FORM):
            return _new_link_form_again(form, practice)
        return page_or_fragment("sign_in.html", {"sign-in-form": "_sign_in_form.html"}, 422, form=form, practice=practice,
                                passkeys=passkeys_possible(), passkey_autofill=passkeys_possible())
    again_at = request_sign_in_link(form.email.data, ip=request.remote_addr)
    # From the dead-link page the answer replaces its heading too, not only the form.
    return page_or_fragment("sign_in_sent.html", {"sign-in-form": "_sign_in_sent.html", NEW_LINK_FORM: "_check_your_email.html"},
                   200, practice=practice, email=form.email.data.strip(), code_form=None,
                   code_email=form.email.data.strip().lower(), lifetime=_lifetime(practice),
                   limit=MAILS_PER_ADDRESS_PER_HOUR, again_at=_minute_after(again_at, practice))


def _minute_after(moment, practice) -> str:
    """'3:43 PM': the first whole minute at or after `moment`, so asking then does send."""
    if moment is None:
        return ""
    whole = moment.replace(second=0, microsecond=0)
    return clock_time(whole if whole == moment else whole + timedelta(minutes=1), practice.timezone)


def _new_link_form_again(form, practice):
    """The dead-link page's form targets its whole block; an invalid address re-renders the
    form alone, in place, and the page's heading and reason stay."""
    response = page_or_fragment("sign_in.html", {NEW_LINK_FORM: "_sign_in_form.html"}, 422, form=form, practice=practice,
                       **NEW_LINK_FORM_CONTEXT)
    response.headers["HX-Retarget"] = f"#{NEW_LINK_FORM}"
    response.headers["HX-Reswap"] = "outerHTML"
    return response


def _signed_in_at_target(link):
    """Run inside the transaction that uses the link up: its session commits with it."""
    return sign_in(redirect_to(link.target), client=link.client)


@bp.get("/sign-in/code")
def code_page():
    """Where a code from any of our emails signs in a device that did not ask for the link."""
    return render_template("sign_in_code.html", practice=Practice.current(), form=CodeEntryForm())


@bp.post("/sign-in/code")
@rate_limit("CODE_IP_LIMIT")
def code_enter():
    practice = Practice.current()
    if request.form.get("entry") == "page":  # from /sign-in/code: answers stay on that page
        form = CodeEntryForm()
        page, fragments, context = "sign_in_code.html", CODE_PAGE_FRAGMENTS, dict(practice=practice, form=form)
    else:  # from "Check your email", right after asking for the link
        form = CodeForm()
        page, fragments = "sign_in_sent.html", CODE_FORM_FRAGMENTS
        context = dict(practice=practice, email=form.email.data or "", code_form=form, lifetime=_lifetime(practice))
    if not form.validate_on_submit():
        return page_or_fragment(page, fragments, 422, **context)
    try:
        return redeem_code(form.email.data, form.code.data, ip=request.remote_addr,
                           then=_signed_in_at_target)
    except CodeRejected as rejected:
        status = 422
        if rejected.from_source:
            form.code.errors.append(gettext("Too many wrong codes from your network. Please use the link in the "
                                            "email, or try a code again in an hour."))
            status = 429
        elif rejected.locked:
            form.code.errors.append(gettext("Too many wrong codes: the code from that email no longer works. "
                                            "The link in the same email still does; or ask for a new link."))
            context.update(killed=True, sign_in_form=SignInForm(email=form.email.data, formdata=None))
        else:
            form.code.errors.append(gettext("That code is not right, or it is no longer valid. "
                                            "Check the newest email from us and try again."))
        return page_or_fragment(page, fragments, status, **context)


@bp.route("/s/<token>", methods=["GET", "HEAD", "POST"])
@rate_limit("SIGN_IN_IP_LIMIT", methods=["POST"])
def link_open(token):
    try:
        if request.method == "POST":
            # CSRFProtect has checked this POST's token before the view (g.csrf_valid); the form,
            # which would skip its own check then, is only built where that did not happen:
            # building it signs a fresh token, for a page this answer never shows.
            if not (g.get("csrf_valid") or ContinueForm().validate_on_submit()):
                return form_expired(gettext("Please open the link from your email again."))
            return redeem_link(token, ip=request.remote_addr, then=_signed_in_at_target)
        link = open_link(token, method=request.method, ip=request.remote_addr, agent=request.user_agent.string)
    except LinkRejected as rejected:
        return _dead_link(rejected, Practice.current())
    speak_as(link.client)  # the page their email's link opens, in their language
    return render_template("link_continue.html", practice=Practice.current(), form=ContinueForm(), token=token)


def _dead_link(rejected: LinkRejected, practice):
    link = rejected.link
    if link is not None:
        speak_as(link.client)
    zone = link.client.zone(practice) if link else practice.timezone
    form = SignInForm(email=rejected.email, formdata=None)
    status = 404 if rejected.reason == "not_recognised" else 410
    return render_template(
        "link_dead.html", practice=practice, reason=rejected.reason, form=form, new_link_form=NEW_LINK_FORM_CONTEXT,
        when=format_local(rejected.when, zone), expires=format_local(link.expires_at, zone) if link else "",
        lifetime=describe_duration(link.expires_at - link.issued_at) if link else "",
    ), status


@bp.post("/sign-out")
def sign_out():
    session = current_session()
    if session is not None:
        end_session(session, "signed_out")
    # The ended session is worthless, but a cookie left behind would still name it.
    return signed_out(redirect_to(url_for("signin.sign_in_page")), session)


@bp.get("/session/warning")
@client_required
def session_warning():
    """Polled (without counting as activity): nothing yet, the warning, or off to sign-in."""
    deadline = idle_deadline(g.portal_session)
    remaining = (deadline - utcnow()).total_seconds()
    return render_template("_session_warning.html", remaining=max(int(remaining), 0),
                           warn=remaining <= WARN_BEFORE_IDLE.total_seconds(),
                           check_in=session_check_in(g.portal_session))


@bp.post("/session/keep-alive")
@client_required
def session_keep_alive():
    session = check_session(request.cookies.get(cookie_name()), touch="always")
    if wants_fragment("stay-signed-in"):
        g.portal_session = session
        return session_warning()
    return redirect_to(url_for("portal.home"))


def current_user_is_client() -> bool:
    return current_user.is_authenticated and isinstance(current_user, Client)
