"""Flask-Babel: the catalogs under translations/, which language a page is in, and the
translator the domain composes client mail with (inside force_locale: the worker's mail is
in the client's language, not the request's or the server's)."""
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path

from flask import g, has_app_context, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, get_translations, gettext, ngettext, refresh
from flask_login import current_user

from practice.i18n import DEFAULT, LANGUAGES, current_language, known

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
LANGUAGE_COOKIE = "portico_language"  # the sign-in page's switch, before anyone is signed in
ENGLISH_ONLY = ("clinic", "devmail")  # the clinician side, and the developer's mailbox: not translated

babel = Babel()


def init_app(app) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=page_language)
    app.after_request(_vary_by_language)
    # {% trans %} blocks collapse their whitespace: msgids stay one line, however a template wraps.
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.jinja_env.globals.update(current_language=current_language, languages=LANGUAGES)


def page_language() -> str:
    """The clinician side is English. A signed-in client's pages are in their language; else
    the switch's cookie (this browser's own choice), else the language of the client a page is
    about (their link, their session that just ended), else the browser's Accept-Language."""
    if not has_request_context():  # mail composed outside in_language(): the source text
        return DEFAULT
    if (request.blueprint or "").startswith(ENGLISH_ONLY):
        return DEFAULT
    user = current_user
    if user.is_authenticated:  # a client in their own language; a clinician in English
        return known(getattr(user, "language", DEFAULT))
    cookie = request.cookies.get(LANGUAGE_COOKIE)
    if cookie in LANGUAGES:
        return cookie
    if g.get("client_language"):
        return known(g.client_language)
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT)


def speak_as(client) -> None:
    """This page is about `client` (their sign-in link): in their language."""
    g.client_language = client.language
    refresh()  # a locale already looked up in this request is looked up again


# The language in_language() put in force and its catalog, looked up once for all that is composed
# inside it: through Flask-Babel each word cost a lookup of the locale and catalog (7 µs, some
# thirty times per email).
_in_force: ContextVar[tuple | None] = ContextVar("portico_language_in_force", default=None)


class FlaskBabelTranslator:
    """The domain's translator (practice/runtime.py), on this app's catalogs."""

    def __init__(self, app):
        self.app = app

    def _forced(self):
        forced = _in_force.get()
        return forced if forced is not None and forced[0] is self else None

    def language(self) -> str:
        forced = self._forced()
        if forced is not None:
            return forced[1]
        locale = get_locale() if has_app_context() else None
        return locale.language if locale is not None else DEFAULT

    @contextmanager
    def using(self, language: str):
        # Flask-Babel keeps the locale on the app context's `g`; a script or a test may compose
        # mail outside one (the worker's ticks and requests are inside one already).
        with nullcontext() if has_app_context() else self.app.app_context(), force_locale(language):
            token = _in_force.set((self, get_locale().language, get_translations()))
            try:
                yield
            finally:
                _in_force.reset(token)

    def gettext(self, message: str, **variables) -> str:
        forced = self._forced()
        if forced is None:
            return gettext(message, **variables)
        text = forced[2].ugettext(message)  # as Flask-Babel's gettext does
        return text % variables if variables else text

    def ngettext(self, singular: str, plural: str, num: int, **variables) -> str:
        forced = self._forced()
        if forced is None:
            return ngettext(singular, plural, num, **variables)
        variables.setdefault("num", num)
        return forced[2].ungettext(singular, plural, num) % variables


def _vary_by_language(response):
    """A client page's language follows Accept-Language and the switch's cookie: caches must too."""
    if response.mimetype == "text/html" and not (request.blueprint or "").startswith(ENGLISH_ONLY):
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response
