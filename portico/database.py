"""The database for the app: bound in the factory, a connection per request (SQLite keeps
its own per thread), and the per-request memo the domain reads the practice row through."""
from flask import g

from practice.models import create_schema, db, end_request_memo, is_sqlite, open_database, start_request_memo


def init_app(app) -> None:
    db.initialize(open_database(app.config["DATABASE_URL"]))
    if app.config.get("PORTAL_CREATE_SCHEMA", True):
        with db.connection_context():
            create_schema()
    app.before_request(_connect)
    app.teardown_request(_close)


def _connect() -> None:
    db.connect(reuse_if_open=True)
    g.request_memo = start_request_memo()


def _close(exc) -> None:
    if "request_memo" in g:
        end_request_memo(g.pop("request_memo"))
    # SQLite keeps its connection (one per thread): opening one cost more than most
    # requests (pragmas, and a WAL checkpoint at the last close). Pools take theirs back.
    if not is_sqlite() and not db.is_closed():
        db.close()
