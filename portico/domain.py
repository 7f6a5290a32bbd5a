"""The domain's runtime for one app: its settings from app.config, emails rendered by the
app's Jinja templates with links on PORTAL_BASE_URL, sent with Flask-Mail, and the mail job
woken through the scheduler."""
from datetime import timedelta
from urllib.parse import urlsplit

from flask import appcontext_pushed, g
from flask_babel import get_translations
from jinja2 import pass_context
from markupsafe import Markup

from practice import runtime
from practice.runtime import Runtime, Settings
from practice.turn import TurnSettings
from practice.wiring import build_domain

from .i18n import FlaskBabelTranslator
from .mailer import FlaskMailer
from .scheduler import wake_mail_job


class JinjaEmailRenderer:
    """Email templates need no request: rendered straight from the app's Jinja environment
    (autoescaped by name, as Flask's own), links built on the configured base URL only."""

    def __init__(self, app):
        base = urlsplit(app.config["PORTAL_BASE_URL"])
        self.jinja = app.jinja_env
        self.urls = app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)

    def render(self, template: str, **context) -> str:
        # The catalog of the language in force, looked up once per email rather than for each
        # of its thirty-odd words (the app's gettext asks Flask-Babel every time); the same
        # newstyle gettext the i18n extension documents: it escapes where autoescape is on and
        # always formats.
        words = get_translations()

        @pass_context
        def gettext(jinja_context, message, **variables):
            return _formatted(jinja_context, words.ugettext(message), variables)

        @pass_context
        def ngettext(jinja_context, singular, plural, num, **variables):
            variables.setdefault("num", num)
            return _formatted(jinja_context, words.ungettext(singular, plural, num), variables)

        return self.jinja.get_template(template).render(gettext=gettext, ngettext=ngettext, **context)

    def url(self, endpoint: str, **values) -> str:
        return self.urls.build(endpoint, values, force_external=True)


def _formatted(jinja_context, text: str, variables: dict) -> str:
    if jinja_context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


def settings_from(config) -> Settings:
    return Settings(
        base_url=config["PORTAL_BASE_URL"],
        secret_key=config["SECRET_KEY"],
        mail_sender=config.get("MAIL_DEFAULT_SENDER") or "portal@localhost",
        dev_mailbox=not config.get("MAIL_SERVER"),
        lease=timedelta(seconds=config.get("MAIL_LEASE_SECONDS") or 120),
        signal_wait_seconds=config.get("TELEHEALTH_POLL_SECONDS", 20),
        retention=retention(config.get("PORTAL_RETENTION_DAYS", 90)),
        turn=TurnSettings(turn_urls=tuple(config.get("PORTAL_TURN_URLS", ())),
                          secret=config.get("PORTAL_TURN_SECRET") or "",
                          ttl=timedelta(seconds=config.get("PORTAL_TURN_TTL", 7200)),
                          stun_urls=tuple(config.get("PORTAL_STUN_URLS", ())),
                          static_servers=tuple(config.get("PORTAL_ICE_SERVERS", ()))),
    )


def retention(days) -> timedelta:
    """PORTAL_RETENTION_DAYS as a period; under a week would prune the email of a link that
    still works (an invitation lives 72 hours, and a practice may lengthen that)."""
    if float(days) < 7:
        raise ValueError(f"PORTAL_RETENTION_DAYS is {days}: keep sign-in requests and sent mail at least 7 days.")
    return timedelta(days=float(days))


def init_app(app) -> Runtime:
    """After the blueprints are registered (emailed links name their endpoints)."""
    settings = settings_from(app.config)
    mailer = None if settings.dev_mailbox else FlaskMailer(app)
    domain = build_domain(settings, JinjaEmailRenderer(app), mailer=mailer, wake_mail=wake_mail_job,
                          translator=FlaskBabelTranslator(app))
    app.extensions["portico.runtime"] = domain
    app.teardown_appcontext(_leave_runtime)
    return domain


def _enter_runtime(app, **_) -> None:
    """Inside an app's context the domain works with that app's runtime (tests build several)."""
    domain = app.extensions.get("portico.runtime")
    if domain is not None:
        g.portico_runtime_token = runtime.push(domain)


def _leave_runtime(exc) -> None:
    token = g.pop("portico_runtime_token", None)
    if token is not None:
        runtime.pop(token)


appcontext_pushed.connect(_enter_runtime)
