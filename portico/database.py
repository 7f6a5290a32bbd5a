"""The database for the app: bound in the factory, a connection per request (SQLite keeps
its own per thread), and the per-request memo the domain reads the practice row through."""
import os

from flask import g
from peewee import SqliteDatabase

from practice.models import create_schema, db, end_request_memo, is_sqlite, open_database, start_request_memo


def private_folder(path: str) -> None:
    """Make the folder readable by its owner only (0700), an existing one too."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    _owner_only(path, 0o700)


def _owner_only(path: str, mode: int) -> None:
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, mode)
    except OSError:  # not ours to change (a folder an operator made): leave it as they set it
        pass


def private_sqlite_file(database) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use 0644), and tighten an
    existing one: SQLite gives its -wal and -shm files the database file's permissions."""
    if not isinstance(database, SqliteDatabase) or database.database.startswith((":memory:", "file:")):
        return
    path = database.database
    if not os.path.isdir(os.path.dirname(path) or "."):
        return  # nothing to protect: opening it fails, and /healthz says so
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        return
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name):
            _owner_only(name, 0o600)


def init_app(app) -> None:
    db.initialize(open_database(app.config["DATABASE_URL"]))
    private_sqlite_file(db.obj)
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
