"""Portico: create_app(), and the command line (`python portal.py [serve|worker|init-db|...]`).

Each concern has a module of its own in portico/: configuration, extensions, hardening,
error pages, the database, the domain's runtime, the scheduler and the commands.
"""
from flask import Flask

from portico import config, database, domain, errors, extensions, hardening, i18n
from portico.commands import build_cli


def create_app(test_config: dict | None = None) -> Flask:
    test_config = dict(test_config or {})
    app = Flask(__name__, instance_relative_config=True, instance_path=test_config.pop("INSTANCE_PATH", None))
    database.private_folder(app.instance_path)  # it holds the secret key and, by default, the database
    config.load(app, test_config)
    hardening.init_app(app)  # before any blueprint adds its rules: ids in URLs are range-checked
    database.init_app(app)
    extensions.init_app(app)
    i18n.init_app(app)

    from blueprints import (changes, clinic, devmail, documents, feed, language, meta, passkeys, portal_home, signin,
                            telehealth)
    for blueprint in (meta, feed, clinic, signin, language, passkeys, portal_home, documents, telehealth, changes):
        app.register_blueprint(blueprint.bp)
    if not app.config["MAIL_SERVER"]:
        app.register_blueprint(devmail.bp)
    signin.init_app(app)
    extensions.apply_rate_limits(app)
    errors.init_app(app)
    domain.init_app(app)
    return app


cli = build_cli(create_app)

if __name__ == "__main__":
    cli()
