"""Schema versions: the ordered steps that bring an older database up to this Portico.

`create_schema()` runs `upgrade()` on every start and on `python portal.py init-db`, in one
transaction under a lock (processes starting together take turns). A new database gets the
tables as the models define them and the current version. An older one gets every step
newer than its recorded version, in order, each recorded in SchemaVersion; a failing step
rolls the whole upgrade back, so a database is always at the version it records.

To change the schema: change the model, then append a Step with the next version. Spell
the fields out in the step (the model keeps changing after the step is written) and alter
tables with playhouse.migrate, e.g. `add_columns(migrator, "client", phone=CharField(default=""))`.
A new table or index needs no step: the models' missing tables and indexes are created after
the steps (and the client search's index by ensure_search_index()).
"""
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from peewee import (BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, InternalError,
                    OperationalError, ProgrammingError, TextField, fn)
from playhouse.migrate import SchemaMigrator, migrate

from .clock import utcnow
from .models import ALL_MODELS, Clinician, Practice, SchemaVersion, db, is_sqlite, write_transaction

BASE_VERSION = 1  # what a database with tables but no recorded version is taken to be
log = logging.getLogger(__name__)


class SchemaError(RuntimeError):
    pass


@dataclass(frozen=True)
class Step:
    version: int
    summary: str
    apply: Callable[[SchemaMigrator], None]


def add_columns(migrator: SchemaMigrator, table: str, **fields) -> None:
    """Add the columns `table` lacks. A step may meet some already there: version 1 was
    recorded by builds that had different subsets of them."""
    present = {column.name for column in db.get_columns(table)}
    migrate(*[migrator.add_column(table, name, field) for name, field in fields.items() if name not in present])


def _columns_of_early_version_1(migrator: SchemaMigrator) -> None:
    # Version 1 was recorded from the first build on, and the tables grew under it; these
    # are the columns an early version-1 database lacks (its missing tables come from the models).
    add_columns(migrator, "practice",
                clinician_idle_minutes=IntegerField(default=30),
                telehealth_grace_minutes=IntegerField(default=30),
                telehealth_early_minutes=IntegerField(default=15),
                quiet_hours_start=CharField(default="21:00"),
                quiet_hours_end=CharField(default="08:00"),
                reminder_offsets=CharField(default="72,24"),
                set_up_at=DateTimeField(null=True))
    add_columns(migrator, "client",
                phone=CharField(default=""),
                clinician_id=ForeignKeyField(Clinician, field=Clinician.id, null=True, on_delete="SET NULL"),
                feed_nonce=CharField(null=True))
    add_columns(migrator, "auditevent",
                clinician_id=ForeignKeyField(Clinician, field=Clinician.id, null=True, on_delete="SET NULL"))
    add_columns(migrator, "email", ics=TextField(null=True))


def _reminder_claim_lease(migrator: SchemaMigrator) -> None:
    # A database from before reminders has no reminder table yet: the models create it whole.
    if db.table_exists("reminder"):
        add_columns(migrator, "reminder", claimed_until=DateTimeField(null=True))


def _new_join_links_and_waiting_room(migrator: SchemaMigrator) -> None:
    # Practices from before the waiting room keep "both connect when both are there".
    add_columns(migrator, "practice", room_entry=CharField(default="together"))
    # Tables from before them are created whole by the models.
    if db.table_exists("joinlinknonce"):
        add_columns(migrator, "joinlinknonce", retired_at=DateTimeField(null=True),
                    retired_because=CharField(null=True))
    if db.table_exists("roomseat"):
        add_columns(migrator, "roomseat", waiting_since=DateTimeField(null=True), admitted_at=DateTimeField(null=True))


def _sealed_subjects(migrator: SchemaMigrator) -> None:
    # A sealed subject is longer than the 255 characters of the old column (PostgreSQL's
    # VARCHAR(255); SQLite does not enforce a length). Rows already there stay plaintext,
    # which unsealing reads as it is.
    if not is_sqlite():
        migrate(migrator.alter_column_type("email", "subject", TextField()))


def _practice_logo(migrator: SchemaMigrator) -> None:
    # The logo's own table comes from the models; the practice row names its version.
    add_columns(migrator, "practice", logo_version=CharField(default=""))


def _second_factor(migrator: SchemaMigrator) -> None:
    # An upgraded practice keeps signing in as it did: its admin turns the requirement on
    # (Settings) once clinicians know it is coming, rather than everyone being stopped at their
    # next sign-in by a setup nobody announced. New practices start with it on (the model's default).
    add_columns(migrator, "practice", require_second_factor=BooleanField(default=False))
    add_columns(migrator, "clinician",
                totp_secret=TextField(null=True),
                totp_confirmed_at=DateTimeField(null=True),
                totp_last_step=IntegerField(null=True))
    if db.table_exists("passkeychallenge"):  # older databases get the table whole from the models
        add_columns(migrator, "passkeychallenge",
                    clinician_id=ForeignKeyField(Clinician, field=Clinician.id, null=True, on_delete="CASCADE"))


def _online_change_settings(migrator: SchemaMigrator) -> None:
    # The working hours, dates off and online changes are new tables: the models create them.
    add_columns(migrator, "practice",
                phone=CharField(default=""),
                online_change_hours=IntegerField(default=24),
                online_change_weeks=IntegerField(default=8),
                online_change_approval=BooleanField(default=False),
                buffer_minutes=IntegerField(default=0))


def _client_language(migrator: SchemaMigrator) -> None:
    add_columns(migrator, "client", language=CharField(default="en"))


MIGRATIONS = [
    Step(2, "columns that early version-1 databases lack", _columns_of_early_version_1),
    Step(3, "a lease on claimed reminders, so that two workers split them", _reminder_claim_lease),
    Step(4, "retired join-link nonces (\"New join link\") and the video waiting room",
         _new_join_links_and_waiting_room),
    Step(5, "email subjects sealed (sign-in mail carries its code there)", _sealed_subjects),
    Step(6, "the practice's logo (its version on the practice row)", _practice_logo),
    Step(7, "a second factor for clinicians (the authenticator app's columns, the practice's requirement)",
         _second_factor),
    Step(8, "the practice's rules for clients' online changes, and its phone", _online_change_settings),
    Step(9, "each client's language, for their pages, emails and calendar entries", _client_language),
]
SCHEMA_VERSION = MIGRATIONS[-1].version


# Client search ("contains", in name, email or phone, any case) on an index: on SQLite an FTS5
# table of trigrams kept in step with the client table by triggers; on PostgreSQL pg_trgm's GIN
# indexes, which ILIKE '%...%' uses. Both answer only for three characters or more (a trigram);
# shorter text is looked for by a scan, which for so broad a search costs no more.
SQLITE_SEARCH = [
    """CREATE VIRTUAL TABLE IF NOT EXISTS client_search USING fts5(
           name, email, phone, content='client', content_rowid='id', tokenize='trigram')""",
    """CREATE TRIGGER IF NOT EXISTS client_search_insert AFTER INSERT ON client BEGIN
           INSERT INTO client_search (rowid, name, email, phone) VALUES (new.id, new.name, new.email, new.phone);
       END""",
    """CREATE TRIGGER IF NOT EXISTS client_search_delete AFTER DELETE ON client BEGIN
           INSERT INTO client_search (client_search, rowid, name, email, phone)
           VALUES ('delete', old.id, old.name, old.email, old.phone);
       END""",
    """CREATE TRIGGER IF NOT EXISTS client_search_update AFTER UPDATE OF name, email, phone ON client BEGIN
           INSERT INTO client_search (client_search, rowid, name, email, phone)
           VALUES ('delete', old.id, old.name, old.email, old.phone);
           INSERT INTO client_search (rowid, name, email, phone) VALUES (new.id, new.name, new.email, new.phone);
       END""",
]
# Without fastupdate: GIN's default keeps new entries in an unsorted pending list until a VACUUM,
# every search reads all of it, and the planner, counting that in, scanned the whole client
# table instead (5,000 clients imported: 6-18 ms a search, against 0.05 ms on the index).
# Clients are added a few a day and searched all day: each insert updates the index itself.
POSTGRES_SEARCH_INDEXES = [f"client_{column}_trigrams" for column in ("name", "email", "phone")]
POSTGRES_SEARCH = [f'CREATE INDEX IF NOT EXISTS {index} ON client USING gin ("{column}" gin_trgm_ops) '
                   "WITH (fastupdate = off)" for index, column in zip(POSTGRES_SEARCH_INDEXES, ("name", "email", "phone"))]


def ensure_search_index() -> None:
    """The client search's index, made (and filled from the clients there are) when missing."""
    if is_sqlite():
        filled = db.table_exists("client_search")
        for statement in SQLITE_SEARCH:
            db.execute_sql(statement)
        if not filled:
            db.execute_sql("INSERT INTO client_search (client_search) VALUES ('rebuild')")
        return
    try:
        with db.atomic():  # a savepoint: without the extension, the upgrade goes on
            db.execute_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except (ProgrammingError, OperationalError, InternalError) as error:
        # Not installed, or not ours to create (pg_trgm is a trusted extension from PostgreSQL
        # 13: a database owner may). Search then scans, as before.
        log.warning("client search without an index: pg_trgm is not available (%s)", str(error).strip())
        return
    for statement in POSTGRES_SEARCH:
        db.execute_sql(statement)
    # An index made before fastupdate was turned off: off now, and what is pending moved in.
    for (index,) in db.execute_sql(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND NOT coalesce(reloptions, '{}') @> %s",
            [POSTGRES_SEARCH_INDEXES, ["fastupdate=off"]]).fetchall():
        db.execute_sql(f"ALTER INDEX {index} SET (fastupdate = off)")
        db.execute_sql("SELECT gin_clean_pending_list(%s::regclass)", [index])


def recorded_version() -> int | None:
    if not SchemaVersion.table_exists():
        return None
    return SchemaVersion.select(fn.MAX(SchemaVersion.version)).scalar()


@contextmanager
def schema_transaction():
    """The write transaction an upgrade runs in, with the lock that makes processes take turns.

    On SQLite, altering a column rebuilds its table, and dropping the old table with foreign
    keys enforced would cascade-delete the rows that point at it: so, as SQLite's manual
    prescribes, foreign keys are off around the transaction and checked before it commits."""
    sqlite = is_sqlite()
    if sqlite:
        db.execute_sql("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set it first
    try:
        with write_transaction():  # SQLite: the write lock up front
            if not sqlite:
                db.execute_sql("SELECT pg_advisory_xact_lock(20261126)")
            yield
    finally:
        if sqlite:
            db.execute_sql("PRAGMA foreign_keys = ON")


def upgrade() -> list[int]:
    """Bring the database to SCHEMA_VERSION inside schema_transaction(); returns the versions
    applied (the current one alone for a new database, nothing when it is up to date)."""
    version = recorded_version()
    if version is None and not Practice.table_exists():
        db.create_tables(ALL_MODELS)
        ensure_search_index()
        SchemaVersion.create(version=SCHEMA_VERSION, applied_at=utcnow())
        return [SCHEMA_VERSION]
    if version is not None and version > SCHEMA_VERSION:
        raise SchemaError(f"The database is at schema version {version}, newer than this Portico's "
                          f"{SCHEMA_VERSION}: run the newer Portico (or restore a backup made for this one).")
    db.create_tables([SchemaVersion])
    migrator = SchemaMigrator.from_database(db.obj)
    applied = []
    for step in MIGRATIONS:
        if step.version > (version or BASE_VERSION):
            step.apply(migrator)
            SchemaVersion.create(version=step.version, applied_at=utcnow())
            applied.append(step.version)
    if applied and is_sqlite() and db.execute_sql("PRAGMA foreign_key_check").fetchone():
        raise SchemaError("The upgrade would leave rows pointing at rows that do not exist; nothing was changed.")
    # Tables added since the database was made, and indexes, now that their columns exist.
    db.create_tables(ALL_MODELS)
    ensure_search_index()
    return applied
