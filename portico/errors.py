"""Error pages: every failure a person can meet, in plain words, with its status."""
import logging

from flask import render_template
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from peewee import OperationalError
from werkzeug.exceptions import SecurityError

from portico.hardening import FilePartRefused, UnreadableText

log = logging.getLogger("portal")

AGAIN = _l("Please go back, reload the page and try again.")

# What went wrong -> (status, title, message): in the page's language when it is shown.
PAGES = {
    CSRFError: (400, _l("This form has expired"), AGAIN),
    400: (400, _l("That request could not be read"), AGAIN),
    FilePartRefused: (400, _l("Files cannot be sent here"),
                      _l("This form takes no files. Please go back, reload the page and try again.")),
    UnreadableText: (400, _l("That text could not be read"),
                     _l("Part of what was sent is not valid text. Please go back, reload the page and try again.")),
    403: (403, _l("Not allowed"), _l("You do not have access to this page.")),
    404: (404, _l("Page not found"), _l("There is no page at this address.")),
    405: (405, _l("Not allowed"), _l("That action is not available here.")),
    415: (415, _l("That request could not be read"),
          _l("This address takes a form, not JSON. Please go back, reload the page and try again.")),
    413: (413, _l("That is too much to send"),
          _l("What was sent is far larger than any form here takes. Please shorten it and try again.")),
    429: (429, _l("Please wait a moment"),
          _l("There have been too many attempts from your connection. Please wait a few minutes and try again.")),
    500: (500, _l("Something went wrong"), _l("Nothing you entered was lost. Please try again in a moment.")),
    OperationalError: (503, _l("Temporarily unavailable"),
                       _l("The portal cannot reach its database. Please try again shortly.")),
}


def error_page(title, message, status: int, back: tuple[str, str] | None = None):
    """`back`: (URL, words) of the way on, when there is a better one than the sign-in page."""
    return render_template("error.html", title=str(title), message=str(message), back=back), status


def form_expired(advice=AGAIN):
    """A form whose CSRF token no longer holds, with what to do about it here."""
    return error_page(_l("This form has expired"), advice, 400)


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
