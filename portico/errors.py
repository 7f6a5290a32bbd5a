"""Error pages: every failure a person can meet, in plain words, with its status."""
import logging

from flask import render_template
from flask_wtf.csrf import CSRFError
from peewee import OperationalError
from werkzeug.exceptions import SecurityError

from portico.hardening import FilePartRefused, UnreadableText

log = logging.getLogger("portal")

AGAIN = "Please go back, reload the page and try again."

# What went wrong -> (status, title, message).
PAGES = {
    CSRFError: (400, "This form has expired", AGAIN),
    400: (400, "That request could not be read", AGAIN),
    FilePartRefused: (400, "Files cannot be sent here", "This form takes no files. " + AGAIN),
    UnreadableText: (400, "That text could not be read", "Part of what was sent is not valid text. " + AGAIN),
    403: (403, "Not allowed", "You do not have access to this page."),
    404: (404, "Page not found", "There is no page at this address."),
    405: (405, "Not allowed", "That action is not available here."),
    415: (415, "That request could not be read", "This address takes a form, not JSON. " + AGAIN),
    413: (413, "That is too much to send",
          "What was sent is far larger than any form here takes. Please shorten it and try again."),
    429: (429, "Please wait a moment",
          "There have been too many attempts from your connection. Please wait a few minutes and try again."),
    500: (500, "Something went wrong", "Nothing you entered was lost. Please try again in a moment."),
    OperationalError: (503, "Temporarily unavailable",
                       "The portal cannot reach its database. Please try again shortly."),
}


def error_page(title: str, message: str, status: int):
    return render_template("error.html", title=title, message=message), status


def form_expired(advice: str = AGAIN):
    """A form whose CSRF token no longer holds, with what to do about it here."""
    return error_page("This form has expired", advice, 400)


def untrusted_host(error):
    """A Host that is not PORTAL_BASE_URL's (TRUSTED_HOSTS): nothing can be routed or linked
    for it (url_for has no adapter), so the answer is plain text, not the page template."""
    return "This address is not this portal's. Please use the address the practice gave you.", 400, {
        "Content-Type": "text/plain; charset=utf-8"}


def init_app(app) -> None:
    for cause, (status, title, message) in PAGES.items():
        app.register_error_handler(cause, _handler(cause, status, title, message))
    app.register_error_handler(SecurityError, untrusted_host)


def _handler(cause, status, title, message):
    def handle(error):
        if cause is OperationalError:
            log.error("database unavailable: %s", error)
        return error_page(title, message, status)
    return handle
