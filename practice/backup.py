"""Backups of a SQLite database through SQLite's online backup API: a consistent copy taken
while the portal runs (WAL readers do not block its writers). PostgreSQL has pg_dump."""
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from playhouse.db_url import parse

PG_BACKUP_ADVICE = """\
`python portal.py backup` copies SQLite databases only. On PostgreSQL use pg_dump, e.g.:

    pg_dump --format=custom --file=portico-$(date -u +%Y%m%d-%H%M%S).dump "$DATABASE_URL"

(pg_dump takes a postgresql:// URL; write a postgres+pool:// one as postgresql://)."""

PG_RESTORE_ADVICE = """\
`python portal.py restore` restores SQLite databases only. On PostgreSQL, with the web
processes and the worker stopped, use pg_restore, e.g.:

    pg_restore --clean --if-exists --no-owner --dbname="$DATABASE_URL" portico-YYYYMMDD-HHMMSS.dump

then `python portal.py init-db` (it upgrades a backup made by an older Portico)."""

COUNTED = ("client", "appointment", "email")


class BackupError(Exception):
    pass


def sqlite_file(database_url: str) -> Path | None:
    """The file behind a sqlite:/// DATABASE_URL; None for PostgreSQL."""
    if not database_url.startswith("sqlite"):
        return None
    name = parse(database_url)["database"]
    if not name or name == ":memory:":
        raise BackupError("An in-memory database cannot be backed up.")
    return Path(name)


def backups_dir(database: Path) -> Path:
    """backups/ beside the database file: instance/backups for the default database."""
    return database.parent / "backups"


def timestamped(directory: Path, label: str = "portico") -> Path:
    return directory / f"{label}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}Z.db"


def _open(path: Path, mode: str) -> sqlite3.Connection:
    """mode=ro or rw: never create an empty database where one was expected."""
    if not path.is_file():
        raise BackupError(f"There is no database at {path}.")
    try:
        connection = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode={mode}", uri=True, timeout=30)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a SQLite database ({error}).") from None
    return connection


def describe(connection: sqlite3.Connection) -> str:
    """'3 clients, 12 appointments, 40 emails': what a person checks a backup by."""
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    counts = [(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0], table)
              for table in COUNTED if table in tables]
    return ", ".join(f"{n} {table}{'' if n == 1 else 's'}" for n, table in counts) or "no Portico tables"


def schema_version(connection: sqlite3.Connection) -> int | None:
    try:
        return connection.execute("SELECT max(version) FROM schemaversion").fetchone()[0]
    except sqlite3.OperationalError:  # no such table: not a Portico database
        return None


def backup_sqlite(source: Path, destination: Path) -> str:
    """Copy `source` into the new file `destination` (owner-only: it holds client data) and
    check the copy; returns what it holds."""
    live = _open(source, "rw")  # rw: a WAL database's reader needs its -shm file
    destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.close(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        live.close()
        raise BackupError(f"{destination} already exists; choose another name.") from None
    copy = sqlite3.connect(destination)
    try:
        live.backup(copy)  # all pages in one step: a snapshot, however busy the portal is
        copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"The copy failed its integrity check: {check}")
        return describe(copy)
    except BaseException:
        copy.close()
        destination.unlink(missing_ok=True)
        raise
    finally:
        copy.close()
        live.close()


def check_backup(path: Path, newest_version: int) -> str:
    """Refuse anything that is not a sound Portico backup this Portico can run; describe it."""
    connection = _open(path, "ro")
    try:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{path} is damaged: {check}")
        version = schema_version(connection)
        if version is None:
            raise BackupError(f"{path} is not a Portico database.")
        if version > newest_version:
            raise BackupError(f"{path} was made by a newer Portico (schema version {version}).")
        return describe(connection)
    finally:
        connection.close()


def restore_sqlite(backup: Path, target: Path) -> None:
    """Write the backup over the database through the same backup API: one transaction, so
    any process still connected sees the old database or the restored one, never a mixture."""
    source = _open(backup, "ro")
    target.parent.mkdir(parents=True, exist_ok=True)
    live = sqlite3.connect(target, timeout=30)
    try:
        source.backup(live)
    finally:
        live.close()
        source.close()
