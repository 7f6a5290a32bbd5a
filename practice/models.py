"""The tables, bound to one database proxy that create_app() points at a real database."""
import select
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from peewee import (
    BlobField,
    BooleanField,
    CharField,
    DatabaseError,
    DatabaseProxy,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    InterfaceError,
    Model,
    SqliteDatabase,
    TextField,
)
from playhouse.db_url import connect, register_database
from playhouse.pool import PooledPostgresqlDatabase

from .clock import utcnow
from .sealed import SealedTextField

db = DatabaseProxy()


class CheckedPostgresqlPool(PooledPostgresqlDatabase):
    """A pool that checks a connection as it hands it out. After a database restart or a
    closed connection every pooled connection is dead, and without the check each would fail
    one request (a 503) after the database is back."""

    def connect(self, reuse_if_open=False):
        opened = super().connect(reuse_if_open)
        if opened and server_hung_up(self.connection()):
            # The others went with it (a restart ends them all): drop this one (peewee's
            # manual_close, for a connection in a bad state) and the idle ones, then open anew.
            # A false alarm costs only new connections.
            self.manual_close()
            self.close_idle()
            opened = super().connect(reuse_if_open)
        return opened


def server_hung_up(conn) -> bool:
    """An idle connection has nothing to read unless the server has said goodbye (a restart
    sends a termination notice, a closed socket reads as the end): a poll, where a "SELECT 1"
    cost a round trip per request."""
    if conn.closed:
        return True
    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


# "postgresql://" in DATABASE_URL gets a connection pool: web processes and the worker
# open and close a connection per request or tick.
register_database(CheckedPostgresqlPool, "postgres", "postgresql", "postgres+pool")

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


def open_database(url: str):
    """A peewee database for a db_url, with the SQLite pragmas two processes need."""
    if url.startswith("sqlite"):
        return connect(url, pragmas=SQLITE_PRAGMAS, timeout=10)
    return connect(url, max_connections=20, stale_timeout=300)


def is_sqlite() -> bool:
    return isinstance(db.obj, SqliteDatabase)


_after_commit: ContextVar[tuple | None] = ContextVar("portico_after_commit", default=None)


@contextmanager
def write_transaction():
    """A write transaction that takes SQLite's write lock up front (no 'database is locked'
    half-way through), or a plain transaction elsewhere. What after_commit() was given inside
    runs once the outermost one has committed."""
    outermost = not db.in_transaction()
    token = _after_commit.set(()) if outermost else None
    try:
        with db.atomic(**({"lock_type": "IMMEDIATE"} if is_sqlite() else {})) as txn:
            yield txn
        callbacks = _after_commit.get() if outermost else ()
    finally:
        if outermost:
            _after_commit.reset(token)
    for callback in callbacks:
        callback()


@contextmanager
def commits_not_waiting_for_disk():
    """On PostgreSQL, this connection's commits inside return once the server has the change,
    before its log reaches the disk (synchronous_commit off, for these commits only). A crash of
    the database server, not of this process, can then lose its last fraction of a second of
    them, and corrupts nothing: only for what is safe to do again."""
    if is_sqlite():
        yield
        return
    db.execute_sql("SET synchronous_commit TO off")
    try:
        yield
    finally:
        try:
            db.execute_sql("RESET synchronous_commit")
        except (DatabaseError, InterfaceError):
            pass  # the connection broke: the error that broke it is the one to raise, and the pool drops it


def after_commit(callback) -> None:
    """Call `callback` once this write transaction has committed (at once outside one), so
    that whoever it tells can see what the transaction wrote. Given twice, called once."""
    pending = _after_commit.get()
    if pending is None or not db.in_transaction():
        callback()
    elif callback not in pending:
        _after_commit.set(pending + (callback,))


class BaseModel(Model):
    class Meta:
        database = db


_CURRENT_PRACTICE_SQL = {}
# Within one request the practice row is read once, however many rules consult it.
_request_memo: ContextVar[dict | None] = ContextVar("portico_request_memo", default=None)


def start_request_memo():
    """Open a scope for per-request memos; the web layer does this around each request."""
    return _request_memo.set({})


def end_request_memo(token) -> None:
    _request_memo.reset(token)


def value_from_db(field, value):
    """A column's value as its field gives it; SQLite's "YYYY-MM-DD HH:MM:SS" text parsed by
    fromisoformat, which is several times quicker than the strptime formats peewee tries."""
    if isinstance(value, str) and isinstance(field, DateTimeField):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    return field.python_value(value)


class UtcDateTimeField(DateTimeField):
    """A DateTimeField that reads SQLite's "YYYY-MM-DD HH:MM:SS" text with fromisoformat,
    several times quicker than the strptime formats peewee tries one after another (each
    reminder the tick loads carries a dozen timestamps). PostgreSQL gives datetimes as they are."""

    def python_value(self, value):
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        return super().python_value(value)


class Practice(BaseModel):
    """The single row of practice settings (id 1). The rules' tunable defaults live here."""

    name = CharField(default="Portico")
    timezone = CharField(default="UTC")
    contact_email = CharField(default="")
    sign_in_link_minutes = IntegerField(default=24 * 60)
    invitation_link_hours = IntegerField(default=72)
    client_idle_minutes = IntegerField(default=15)
    client_absolute_hours = IntegerField(default=12)
    clinician_idle_minutes = IntegerField(default=30)
    telehealth_grace_minutes = IntegerField(default=30)
    telehealth_early_minutes = IntegerField(default=15)
    quiet_hours_start = CharField(default="21:00")  # local "HH:MM" in the client's zone
    quiet_hours_end = CharField(default="08:00")
    reminder_offsets = CharField(default="72,24")  # hours before the start, comma-separated
    # On for a new practice; an upgraded one starts with it off (practice/migrations.py, step 7).
    require_second_factor = BooleanField(default=True)
    set_up_at = UtcDateTimeField(null=True)  # when the first-run setup named the practice
    # Video sessions: "together" (both connect when both are there) or "waiting_room" (the
    # clinician lets the client in). "together" for new practices too: each room belongs to one
    # appointment, so nobody walks into another client's session, and a waiting room nobody
    # watches leaves a client stuck outside; an admin turns it on once clinicians know it.
    room_entry = CharField(default="together")
    logo_version = CharField(default="")  # the logo's URL names it (cached for good); "" for no logo
    created_at = UtcDateTimeField(default=utcnow)
    # Online changes from the client's link (practice/online_changes.py).
    phone = CharField(default="")  # shown to a client who can no longer change online
    online_change_hours = IntegerField(default=24)  # changes close this long before the start; 0: off
    online_change_weeks = IntegerField(default=8)  # how far ahead a new time may be
    online_change_approval = BooleanField(default=False)  # a new time waits for the clinician
    buffer_minutes = IntegerField(default=0)  # kept free between a clinician's appointments

    @property
    def reminder_offset_hours(self) -> list[int]:
        return sorted({int(h) for h in self.reminder_offsets.split(",") if h.strip()}, reverse=True)

    @classmethod
    def current(cls) -> "Practice":
        # Read on nearly every request: building this query's SQL for 17 columns cost more
        # than running it, so the SQL is built once per kind of database (peewee's public
        # sql() and execute_sql()).
        memo = _request_memo.get()
        if memo is not None and "practice" in memo:
            return memo["practice"]
        # The row is made here too: peewee's general row reader cost as much as the query.
        key = type(db.obj)
        if key not in _CURRENT_PRACTICE_SQL:
            query = cls.select().where(cls.id == 1)
            _CURRENT_PRACTICE_SQL[key] = (*query.sql(), list(query.selected_columns))
        sql, params, fields = _CURRENT_PRACTICE_SQL[key]
        cursor = db.execute_sql(sql, params)
        row = cursor.fetchone()
        cursor.close()  # an unfinished SQLite statement would hold its read snapshot open
        if row is None:
            practice = cls(id=1)
        else:
            practice = cls(**{field.name: value_from_db(field, value) for field, value in zip(fields, row)})
        if memo is not None:
            memo["practice"] = practice
        return practice


class Clinician(BaseModel):
    email = CharField(unique=True)
    name = CharField()
    password_hash = CharField()
    is_admin = BooleanField(default=False)
    created_at = UtcDateTimeField(default=utcnow)
    # The authenticator app's secret: it cannot be hashed (the server must compute codes from
    # it), so it is sealed at rest. Set when the setup starts, in use once confirmed.
    totp_secret = SealedTextField(null=True)
    totp_confirmed_at = UtcDateTimeField(null=True)
    totp_last_step = IntegerField(null=True)  # the newest 30 s step a code was accepted for: no replays

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"clinician:{self.id}"

    def lock(self) -> None:
        """Inside a write transaction: whoever else locks this clinician (a client taking one
        of their open times) waits until this transaction ends. SQLite's IMMEDIATE
        transaction already lets one writer in at a time."""
        if not is_sqlite():
            Clinician.select(Clinician.id).where(Clinician.id == self.id).for_update().execute()


class Client(BaseModel):
    email = CharField(unique=True)  # stored lower-cased: addresses compare case-insensitively
    name = CharField()
    phone = CharField(default="")
    timezone = CharField(null=True)
    clinician = ForeignKeyField(Clinician, null=True, backref="clients", on_delete="SET NULL")
    feed_nonce = CharField(null=True)  # the calendar feed URL's secret; rotating it revokes the URL
    language = CharField(default="en")  # of their pages, emails and calendar entries (practice/i18n.py)
    created_at = UtcDateTimeField(default=utcnow)
    archived_at = UtcDateTimeField(null=True)

    def zone(self, practice: "Practice | None" = None) -> str:
        """The client's own time zone, else the practice's."""
        return self.timezone or (practice or Practice.current()).timezone

    @classmethod
    def by_email(cls, email: str):
        return cls.get_or_none(cls.email == cls.lookup_key(email))

    @staticmethod
    def lookup_key(email: str) -> str:
        """An address as the client table keeps it, to look it up by."""
        return email.strip().lower()

    @classmethod
    def active(cls):
        return cls.select().where(cls.archived_at.is_null())

    @classmethod
    def visible_to(cls, clinician):
        """An admin sees every client; a clinician only those assigned to them."""
        query = cls.select()
        return query if clinician.is_admin else query.where(cls.clinician == clinician)

    def lock(self) -> None:
        """Inside a write transaction: whoever else locks this client (issuing a link, sharing
        documents) waits until this transaction ends, so each sees the other's rows.
        SQLite's IMMEDIATE transaction already lets one writer in at a time."""
        if not is_sqlite():
            Client.select(Client.id).where(Client.id == self.id).for_update().execute()

    # flask-login reads these; a Client is what a client session signs in.
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        return f"client:{self.id}"


MAX_APPOINTMENT_LENGTH = timedelta(hours=12)


class Appointment(BaseModel):
    """Start and end in UTC. `nonce` is the telehealth link's secret: rotating it revokes it."""

    clinician = ForeignKeyField(Clinician, backref="appointments", on_delete="CASCADE")
    client = ForeignKeyField(Client, backref="appointments", on_delete="CASCADE")
    starts_at = UtcDateTimeField(index=True)
    ends_at = UtcDateTimeField()
    kind = CharField(default="telehealth")  # telehealth, in_person
    status = CharField(default="scheduled")  # scheduled, cancelled
    nonce = CharField(max_length=64)
    sequence = IntegerField(default=0)  # bumped on every move, for calendar invitations
    created_at = UtcDateTimeField(default=utcnow)
    updated_at = UtcDateTimeField(default=utcnow)
    cancelled_at = UtcDateTimeField(null=True)

    class Meta:
        indexes = ((("client", "starts_at"), False),  # a client's next appointments, in order
                   (("clinician", "starts_at"), False))  # one clinician's calendar, a day or week of it

    @classmethod
    def between(cls, start, end):
        return cls.select().where((cls.starts_at < end) & (cls.ends_at > start)).order_by(cls.starts_at)

    @classmethod
    def upcoming_for(cls, client, now, grace=timedelta(0)):
        """Scheduled and not over, or telehealth whose join link still lets people back in
        (ends_at within `grace` before now); each row with its clinician, in one query."""
        return (cls.select(cls, Clinician).join(Clinician).where(
            (cls.client == client) & (cls.status == "scheduled")
            # Implied by the end's bound (no appointment is longer); it lets the index start here.
            & (cls.starts_at > now - grace - MAX_APPOINTMENT_LENGTH)
            & ((cls.ends_at > now) | ((cls.kind == "telehealth") & (cls.ends_at > now - grace)))
        ).order_by(cls.starts_at, cls.id))

    @classmethod
    def in_feed_for(cls, client, now):
        """Not over yet, cancelled ones included: a calendar feed shows those as cancelled."""
        return cls.select().where((cls.client == client) & (cls.ends_at > now)).order_by(cls.starts_at, cls.id)


class Link(BaseModel):
    """A one-time sign-in link. Only the SHA-256 of its token is kept."""

    client = ForeignKeyField(Client, backref="links", on_delete="CASCADE")
    token_hash = CharField(unique=True, max_length=64)
    code_hash = CharField(max_length=64)
    code_attempts = IntegerField(default=0)
    reason = CharField()  # client_request, clinician, invitation, document_share, reminder
    target = CharField(default="/portal")
    issued_at = UtcDateTimeField()
    expires_at = UtcDateTimeField()
    used_at = UtcDateTimeField(null=True)
    used_by = CharField(null=True)  # "link" or "code"
    revoked_at = UtcDateTimeField(null=True)
    revoked_reason = CharField(null=True)  # replaced, too_many_codes, archived
    replaced_by = ForeignKeyField("self", null=True, backref="replaced", on_delete="SET NULL")
    first_opened_at = UtcDateTimeField(null=True)
    first_opened_method = CharField(null=True)
    first_opened_ip = CharField(null=True)
    first_opened_agent = CharField(null=True)

    class Meta:
        # A client's history page by page, newest first, and the links' numbers, from the index.
        indexes = ((("client", "issued_at", "id"), False),)

    @classmethod
    def live_for(cls, client, now):
        return cls.select().where(
            (cls.client == client)
            & cls.used_at.is_null()
            & cls.revoked_at.is_null()
            & (cls.expires_at > now)
        )

    @classmethod
    def history_for(cls, client):
        return cls.select().where(cls.client == client).order_by(cls.issued_at.desc(), cls.id.desc())


class SignInRequest(BaseModel):
    """What POST /sign-in writes: the same single row for a client and a stranger, so the
    answer takes the same time. The mail job decides what, if anything, to send."""

    email = CharField()
    requested_at = UtcDateTimeField()
    ip = CharField(null=True)
    processed_at = UtcDateTimeField(null=True)
    outcome = CharField(null=True)  # issued, unknown, throttled
    link = ForeignKeyField(Link, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("email", "processed_at"), False),)  # an address's recent requests

    @classmethod
    def pending(cls):
        """Not yet answered, oldest first: read through the partial index below, which holds
        only these few rows, however many answered ones the table keeps."""
        return cls.select().where(cls.processed_at.is_null()).order_by(cls.id)


class WrongCode(BaseModel):
    """A code typed on a sign-in page that signed nobody in, whoever's address it was for
    (a client's or not: both are counted alike, so the answers cannot tell them apart)."""

    address_hash = CharField(max_length=64)  # HMAC of the address as typed, lower-cased
    link = ForeignKeyField(Link, null=True, on_delete="SET NULL")  # the client's live link then, if any
    ip = CharField(null=True)
    at = UtcDateTimeField()

    class Meta:
        indexes = ((("address_hash", "at"), False), (("ip", "at"), False))

    @classmethod
    def for_address(cls, address_hash, since):
        return cls.select().where((cls.address_hash == address_hash) & (cls.at >= since))

    @classmethod
    def from_source(cls, ip, since):
        return cls.select().where((cls.ip == ip) & (cls.at > since))


class Email(BaseModel):
    """The outbox. Requests only insert rows; the mail job claims and sends them."""

    to_addr = CharField()
    # Sealed (practice/sealed.py): every email carries a link, and sign-in mail a code (its
    # subject too: "482913 is your sign-in code for ...", masked once sent).
    subject = SealedTextField()
    text_body = SealedTextField()
    html_body = SealedTextField()
    reply_to = CharField(null=True)
    message_id = CharField(unique=True)
    # sign_in, invitation, reminder, appointment_confirmed, _moved, _updated, _cancelled, join_link_replaced,
    # change_declined; to the clinician: online_moved, online_request, online_cancelled
    kind = CharField()
    client = ForeignKeyField(Client, null=True, backref="emails", on_delete="SET NULL")
    link = ForeignKeyField(Link, null=True, backref="emails", on_delete="SET NULL")
    ics = SealedTextField(null=True)  # a calendar attachment (text/calendar, with the join link), for appointment mail
    status = CharField(default="queued")  # queued, sending, sent, failed
    queued_at = UtcDateTimeField()
    next_attempt_at = UtcDateTimeField()
    lease_until = UtcDateTimeField(null=True)
    attempts = IntegerField(default=0)
    last_error = TextField(null=True)
    sent_at = UtcDateTimeField(null=True)
    transport = CharField(null=True)  # smtp or dev-mailbox

    class Meta:
        # Each claim query reads its own index in its own order: the planner, once ANALYZE
        # has seen an outbox of mostly sent rows, would otherwise scan it all for ORDER BY id.
        indexes = ((("status", "next_attempt_at"), False), (("status", "lease_until"), False),
                   (("status", "kind", "next_attempt_at"), False))  # sign-in mail first

    @classmethod
    def due(cls, now):
        """Queued mail whose time has come, in order (the index's order: nothing to sort)."""
        return cls.select().where((cls.status == "queued") & (cls.next_attempt_at <= now)).order_by(
            cls.next_attempt_at, cls.id)

    @classmethod
    def abandoned(cls, now):
        """Mail whose sender died mid-send: its lease is over (oldest lease first, the index's order)."""
        return cls.select().where((cls.status == "sending") & (cls.lease_until < now)).order_by(
            cls.lease_until, cls.id)

    @classmethod
    def newest_first(cls):
        return cls.select().order_by(cls.queued_at.desc(), cls.id.desc())


class Reminder(BaseModel):
    """One reminder per appointment and offset. The row is the truth; the scheduler only ticks."""

    appointment = ForeignKeyField(Appointment, backref="reminders", on_delete="CASCADE")
    offset_hours = IntegerField()
    due_at = UtcDateTimeField()  # start - offset, moved out of the client's quiet hours; UTC
    status = CharField(default="pending")  # pending, queued, cancelled, missed
    email = ForeignKeyField(Email, null=True, on_delete="SET NULL")
    created_at = UtcDateTimeField()
    done_at = UtcDateTimeField(null=True)
    claimed_until = UtcDateTimeField(null=True)  # a reminder tick's lease: other ticks skip the row until then

    class Meta:
        indexes = ((("status", "due_at"), False),)

    @classmethod
    def due(cls, now):
        """Pending reminders whose time has come and that no live tick holds (or whose tick died)."""
        return cls.select().where(
            (cls.status == "pending") & (cls.due_at <= now)
            & (cls.claimed_until.is_null() | (cls.claimed_until < now))
        ).order_by(cls.due_at, cls.id)

    @classmethod
    def pending_for(cls, appointment):
        return cls.select().where((cls.appointment == appointment) & (cls.status == "pending"))


class Session(BaseModel):
    """A server-side session. The cookie holds a random id; only its SHA-256 is here."""

    id_hash = CharField(unique=True, max_length=64)
    client = ForeignKeyField(Client, null=True, backref="sessions", on_delete="CASCADE")
    clinician = ForeignKeyField(Clinician, null=True, backref="sessions", on_delete="CASCADE")
    created_at = UtcDateTimeField()
    last_seen_at = UtcDateTimeField()
    ended_at = UtcDateTimeField(null=True)
    end_reason = CharField(null=True)  # signed_out, idle, absolute, archived, ended_by_clinician, replaced
    ip = CharField(null=True)
    user_agent = CharField(null=True)

    @classmethod
    def open_for_client(cls, client):
        return cls.select().where((cls.client == client) & cls.ended_at.is_null())


class ClinicianSignInFailure(BaseModel):
    """A wrong password on the clinician sign-in page, for an account or for an address that
    has none (counted alike, so that the answers tell nobody which addresses have accounts):
    what slows down a guesser, and what the clinician is shown at their next sign-in."""

    email = CharField(max_length=254)  # the address tried, lower-cased
    clinician = ForeignKeyField(Clinician, null=True, backref="sign_in_failures", on_delete="CASCADE")
    ip = CharField(null=True)
    at = UtcDateTimeField()

    class Meta:
        indexes = ((("email", "at"), False),)

    @classmethod
    def recent_for(cls, email, since):
        return cls.select().where((cls.email == email) & (cls.at > since))


class AuditEvent(BaseModel):
    at = UtcDateTimeField()
    kind = CharField()  # link_issued, link_opened, link_redeemed, link_rejected, ...
    client = ForeignKeyField(Client, null=True, backref="audit", on_delete="CASCADE")
    clinician = ForeignKeyField(Clinician, null=True, on_delete="SET NULL")
    link = ForeignKeyField(Link, null=True, on_delete="SET NULL")
    detail = CharField(default="")
    ip = CharField(null=True)

    class Meta:
        indexes = ((("client", "at", "id"), False),)  # a client's latest events without sorting them all

    @classmethod
    def recent_for(cls, client, limit=50):
        return cls.select().where(cls.client == client).order_by(cls.at.desc(), cls.id.desc()).limit(limit)


SignInRequest.add_index(SignInRequest.index(SignInRequest.id, where=SignInRequest.processed_at.is_null(),
                                            name="signinrequest_pending"))
# A client's latest emails without a link (reminders, notices: the client page's "Other emails").
Email.add_index(Email.client, Email.link, Email.queued_at)


class JoinLinkNonce(BaseModel):
    """Every nonce an appointment's join link has been derived from (recorded when the
    appointment changes), so that a link from before a cancellation can still be told
    "cancelled" rather than "not recognised"."""

    appointment = ForeignKeyField(Appointment, backref="join_nonces", on_delete="CASCADE")
    nonce = CharField(max_length=64)
    recorded_at = UtcDateTimeField()
    retired_at = UtcDateTimeField(null=True)  # when a newer nonce took its place
    retired_because = CharField(null=True)  # new_join_link, cancelled

    class Meta:
        indexes = ((("appointment", "nonce"), True),)


class RoomSeat(BaseModel):
    """A place in an appointment's video room: one row per appointment and role (clinician,
    client). The browser holding it has the seat cookie whose SHA-256 is `key_hash`; the room
    page speaking for it right now is `connection` (a new one at every page load)."""

    appointment = ForeignKeyField(Appointment, backref="seats", on_delete="CASCADE")
    role = CharField()  # clinician, client
    key_hash = CharField(max_length=64)
    connection = CharField(max_length=64)
    entered_at = UtcDateTimeField()
    last_seen_at = UtcDateTimeField()  # every signalling request touches it
    left_at = UtcDateTimeField(null=True)
    left_reason = CharField(null=True)  # left (the Leave button), page_closed (reload, closed tab)
    # The client's seat under a waiting room: since when they have been waiting, and when the
    # clinician let them in (kept for the appointment, so a rejoin does not wait again).
    waiting_since = UtcDateTimeField(null=True)
    admitted_at = UtcDateTimeField(null=True)

    class Meta:
        indexes = ((("appointment", "role"), True),)


class RoomSignal(BaseModel):
    """A WebRTC signalling message (hello, offer, answer, candidate, bye) waiting for the
    other side of the room; deleted when delivered."""

    appointment = ForeignKeyField(Appointment, backref="signals", on_delete="CASCADE")
    recipient = CharField()  # the role it is for
    sender_connection = CharField(max_length=64)
    recipient_connection = CharField(max_length=64, null=True)  # None: whoever is in that seat
    kind = CharField()
    body = TextField(default="")
    created_at = UtcDateTimeField()

    class Meta:
        indexes = ((("appointment", "recipient"), False),)


class DocumentTemplate(BaseModel):
    """Paperwork the practice shares: a text to read and acknowledge, or an intake form of
    fields. What it says lives in its versions; `version` is the newest one's number."""

    title = CharField()
    kind = CharField()  # acknowledge, form (chosen when created, never changed)
    version = IntegerField(default=1)
    created_at = UtcDateTimeField(default=utcnow)
    updated_at = UtcDateTimeField(default=utcnow)
    archived_at = UtcDateTimeField(null=True)  # no longer offered for sharing; shares keep working

    @classmethod
    def shareable(cls):
        return cls.select().where(cls.archived_at.is_null()).order_by(cls.title, cls.id)

    @classmethod
    def listed(cls):
        return cls.select().order_by(cls.archived_at.is_null(False), cls.title, cls.id)


class DocumentVersion(BaseModel):
    """What a template said at one version, never changed afterwards: a share points at the
    version it was shared with, so answers are always read against the questions asked."""

    template = ForeignKeyField(DocumentTemplate, backref="versions", on_delete="CASCADE")
    number = IntegerField()
    title = CharField()
    kind = CharField()
    body = TextField(default="")
    fields_json = TextField(default="[]")  # [{"key", "type", "label", "required", "options"}]
    created_at = UtcDateTimeField(default=utcnow)
    created_by = ForeignKeyField(Clinician, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("template", "number"), True),)


class DocumentShare(BaseModel):
    """One document shared with one client: opened, drafted, completed or unshared. The
    client's answers are JSON (never HTML) that names the template and version answered."""

    client = ForeignKeyField(Client, backref="document_shares", on_delete="CASCADE")
    template = ForeignKeyField(DocumentTemplate, backref="shares", on_delete="CASCADE")
    version = ForeignKeyField(DocumentVersion, backref="shares", on_delete="CASCADE")
    shared_at = UtcDateTimeField()
    shared_by = ForeignKeyField(Clinician, null=True, on_delete="SET NULL")
    link = ForeignKeyField(Link, null=True, on_delete="SET NULL")  # the newest link mailed for it
    opened_at = UtcDateTimeField(null=True)  # the client first saw it in the portal
    draft_json = TextField(null=True)
    draft_saved_at = UtcDateTimeField(null=True)
    answers_json = TextField(null=True)
    completed_at = UtcDateTimeField(null=True)
    unshared_at = UtcDateTimeField(null=True)
    unshared_by = ForeignKeyField(Clinician, null=True, on_delete="SET NULL")

    @classmethod
    def for_client(cls, client):
        """What the client sees: every share not withdrawn, to do first, newest first."""
        return cls.select().where((cls.client == client) & cls.unshared_at.is_null()).order_by(
            cls.completed_at.is_null(False), cls.shared_at.desc(), cls.id.desc())

    @classmethod
    def history_for(cls, client):
        """What the clinician sees: every share, withdrawn ones included, newest first."""
        return cls.select().where(cls.client == client).order_by(cls.shared_at.desc(), cls.id.desc())


class Passkey(BaseModel):
    """A client's passkey (a discoverable WebAuthn credential): only its public key is here;
    the private key never leaves the client's device."""

    client = ForeignKeyField(Client, backref="passkeys", on_delete="CASCADE")
    credential_id = CharField(unique=True, max_length=1400)  # base64url of the raw id (up to 1023 bytes)
    public_key = TextField()  # base64url of the COSE public key
    sign_count = IntegerField(default=0)
    transports = CharField(default="")  # comma-separated hints for the browser
    device = CharField(default="")  # "Chrome on Android", from the user agent at registration
    created_at = UtcDateTimeField()
    last_used_at = UtcDateTimeField(null=True)

    @classmethod
    def of(cls, client):
        return cls.select().where(cls.client == client).order_by(cls.created_at.desc(), cls.id.desc())


class PasskeyChallenge(BaseModel):
    """A WebAuthn challenge we issued: single-use, short-lived, and kept only as its SHA-256
    (the browser sends the challenge back inside clientDataJSON, which is how it is found)."""

    challenge_hash = CharField(unique=True, max_length=64)
    purpose = CharField()  # register, sign_in, clinician_register, clinician_verify
    client = ForeignKeyField(Client, null=True, on_delete="CASCADE")  # who registers; None for a sign-in
    clinician = ForeignKeyField(Clinician, null=True, on_delete="CASCADE")  # a clinician's second factor
    created_at = UtcDateTimeField()
    expires_at = UtcDateTimeField(index=True)
    used_at = UtcDateTimeField(null=True)


class PracticeLogo(BaseModel):
    """The practice's logo (one row, id 1), shown beside its name in every page's header."""

    content_type = CharField()  # image/png, image/jpeg, image/svg+xml
    data = BlobField()
    updated_at = UtcDateTimeField()


class ClinicianPasskey(BaseModel):
    """A clinician's passkey, used as the second factor after the password (the ceremonies are
    the client passkeys' own, practice/passkeys.py)."""

    clinician = ForeignKeyField(Clinician, backref="passkeys", on_delete="CASCADE")
    credential_id = CharField(unique=True, max_length=1400)
    public_key = TextField()
    sign_count = IntegerField(default=0)
    transports = CharField(default="")
    device = CharField(default="")
    created_at = UtcDateTimeField()
    last_used_at = UtcDateTimeField(null=True)

    @classmethod
    def of(cls, clinician):
        return cls.select().where(cls.clinician == clinician).order_by(cls.created_at.desc(), cls.id.desc())


class RecoveryCode(BaseModel):
    """One of a clinician's ten one-time recovery codes, kept only as its SHA-256."""

    clinician = ForeignKeyField(Clinician, backref="recovery_codes", on_delete="CASCADE")
    code_hash = CharField(max_length=64)
    created_at = UtcDateTimeField()
    used_at = UtcDateTimeField(null=True)

    @classmethod
    def unused_of(cls, clinician):
        return cls.select().where((cls.clinician == clinician) & cls.used_at.is_null())


class PendingSignIn(BaseModel):
    """A clinician who gave the right password and has yet to give the second factor (or set
    one up). Not a session: nothing of the clinic opens for it. The cookie holds a random id,
    only its SHA-256 is here."""

    id_hash = CharField(unique=True, max_length=64)
    clinician = ForeignKeyField(Clinician, on_delete="CASCADE")
    created_at = UtcDateTimeField()
    expires_at = UtcDateTimeField(index=True)
    ip = CharField(null=True)


class SecondFactorFailure(BaseModel):
    """A wrong code (or recovery code) at the second step: counted per clinician and per
    network address to slow a guesser down."""

    clinician = ForeignKeyField(Clinician, on_delete="CASCADE")
    ip = CharField(null=True)
    at = UtcDateTimeField(index=True)


class WorkingHours(BaseModel):
    """One range of a clinician's weekly hours, on the practice's wall clock; a day may have several."""

    clinician = ForeignKeyField(Clinician, backref="working_hours", on_delete="CASCADE")
    weekday = IntegerField()  # 0 Monday .. 6 Sunday
    starts = CharField(max_length=5)  # "HH:MM"
    ends = CharField(max_length=5)

    @classmethod
    def of(cls, clinician):
        return cls.select().where(cls.clinician == clinician).order_by(cls.weekday, cls.starts)


class DayOff(BaseModel):
    """A date (the practice's) on which a clinician takes no appointments online."""

    clinician = ForeignKeyField(Clinician, backref="days_off", on_delete="CASCADE")
    day = DateField()

    class Meta:
        indexes = ((("clinician", "day"), True),)

    @classmethod
    def of(cls, clinician):
        return cls.select().where(cls.clinician == clinician).order_by(cls.day)


class OnlineChange(BaseModel):
    """A change a client made (or asked for) from their appointment's /a/ link."""

    appointment = ForeignKeyField(Appointment, backref="online_changes", on_delete="CASCADE")
    client = ForeignKeyField(Client, backref="online_changes", on_delete="CASCADE")
    kind = CharField()  # moved, cancelled, request
    status = CharField(default="done")  # done; for a request: pending, approved, declined, withdrawn, lapsed
    old_starts_at = UtcDateTimeField()
    old_ends_at = UtcDateTimeField()
    new_starts_at = UtcDateTimeField(null=True)
    new_ends_at = UtcDateTimeField(null=True)
    reason = SealedTextField(null=True)  # a cancellation's optional reason, in the client's words
    via = CharField(default="")  # which email (or the portal) the link was opened from
    sequence = IntegerField(default=0)  # the appointment's sequence after this change
    made_at = UtcDateTimeField()
    decided_at = UtcDateTimeField(null=True)
    decided_by = ForeignKeyField(Clinician, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("status", "made_at"), False),)

    @classmethod
    def pending(cls):
        return cls.select().where((cls.kind == "request") & (cls.status == "pending"))


class SchemaVersion(BaseModel):
    version = IntegerField()
    applied_at = UtcDateTimeField()


ALL_MODELS = [Practice, Clinician, Client, Appointment, Link, SignInRequest, Email, Reminder, Session, AuditEvent, SchemaVersion,
              JoinLinkNonce, RoomSeat, RoomSignal, DocumentTemplate, DocumentVersion, DocumentShare,
              ClinicianSignInFailure, WrongCode, Passkey, PasskeyChallenge, PracticeLogo, ClinicianPasskey, RecoveryCode,
              PendingSignIn, SecondFactorFailure, WorkingHours, DayOff, OnlineChange]


def create_schema():
    """Create the tables, or bring an older database up to this version (practice/migrations.py),
    and make sure the practice row exists; safe to run any number of times."""
    from .migrations import schema_transaction, upgrade  # it imports this module
    with schema_transaction():
        upgrade()
        if Practice.get_or_none(Practice.id == 1) is None:
            Practice.create(id=1)
        if not DocumentTemplate.select().exists():
            # A practice starts with two examples (templates are archived, never deleted).
            from .documents import seed_example_documents
            seed_example_documents()
