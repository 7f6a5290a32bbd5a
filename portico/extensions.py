"""Flask extensions, one object each, wired to an app with init_app (see create_app), and the
rate limits views declare with @rate_limit."""
from functools import wraps

from flask import request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_mail import Mail
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx

login_manager = LoginManager()
mail = Mail()
csrf = CSRFProtect()
htmx = Htmx()

RATE_LIMITS = "portico_rate_limits"


def init_app(app) -> None:
    app.session_interface = SigningOnceSessionInterface()
    # flask-login's own context processor loads the user for every template rendered, whether
    # it shows them or not; the proxy gives templates the same `current_user`, loaded lazily.
    login_manager.init_app(app, add_context_processor=False)
    login_manager.session_protection = None  # the server-side session row is the protection
    app.context_processor(lambda: {"current_user": current_user})
    mail.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)


class SigningOnceSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session (it holds only the CSRF token), with its signer built
    once per key rather than twice per request."""

    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = app.extensions.get("portico_session_signer")
        if cached is None or cached[0] != keys:
            cached = app.extensions["portico_session_signer"] = (keys, super().get_signing_serializer(app))
        return cached[1]


def rate_limit(config_name: str, **options):
    """Declares a limit, read from app.config[config_name], for the view it decorates.

    Each app gets its own Limiter (apply_rate_limits): flask-limiter keeps storage, key
    prefix and on/off on the Limiter itself, so one module-level Limiter would carry those
    from one app to the next (several apps per test run, or per embedding process).
    """
    def declare(view):
        view.__dict__.setdefault(RATE_LIMITS, []).append((config_name, options))
        return view
    return declare


def apply_rate_limits(app) -> None:
    """After the blueprints are registered: each declared limit, on this app's Limiter."""
    app_limiter = Limiter(key_func=get_remote_address, default_limits=[])
    app_limiter.init_app(app)
    if not app_limiter.enabled:  # RATELIMIT_ENABLED=False
        return
    # The limits hold their Limiter weakly; the app must keep it alive.
    app.extensions["portico_limiter"] = app_limiter
    for endpoint, view in list(app.view_functions.items()):
        declared = getattr(view, RATE_LIMITS, ())
        if not declared:
            continue
        limited = view
        for config_name, options in declared:
            limited = app_limiter.limit(lambda name=config_name: app.config[name], **options)(limited)
        methods = _limited_methods(declared)
        app.view_functions[endpoint] = limited if methods is None else _limit_only(methods, view, limited)


def _limited_methods(declared) -> frozenset | None:
    """The methods some declared limit covers, or None when one covers every method."""
    methods = set()
    for _, options in declared:
        if not options.get("methods"):
            return None
        methods.update(method.upper() for method in options["methods"])
    return frozenset(methods)


def _limit_only(methods: frozenset, view, limited):
    """A GET of a page whose limits are for its POST skips flask-limiter altogether."""
    @wraps(view)  # the same qualified name: flask-limiter finds its limits by it
    def dispatch(*args, **kwargs):
        return (limited if request.method in methods else view)(*args, **kwargs)
    return dispatch
