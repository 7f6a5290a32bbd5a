"""Telehealth: the join link, who may enter the video room and when, and the room's signalling.

The link is `<appointment id>.<HMAC-SHA256 of the app secret and the appointment's nonce>`:
nothing is stored to issue it, the same link goes in every reminder, and a new nonce revokes
it. The room's state lives in the database (RoomSeat, RoomSignal), not in a process, so any
web process can answer any request of the room.
"""
import base64
import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from peewee import IntegrityError

from . import audit, runtime, turn
from .appointments import AppointmentError, after_change, join_window, new_nonce
from .clock import utcnow
from .i18n import clinic_gettext, gettext as _, ngettext
from .mail import external_url
from .models import Appointment, JoinLinkNonce, Practice, RoomSeat, RoomSignal, db, write_transaction

ROLES = ("clinician", "client")
# A seat nobody has polled for this long is free for another browser with the link: the
# room page polls at least every 20 s, so this is a browser that is gone.
STALE_AFTER = timedelta(seconds=45)
# A page closed or reloaded this recently is the same person coming back, even after the
# window has closed (they were in; only new entries are refused).
REJOIN_GRACE = timedelta(seconds=60)
TOUCH_EVERY = timedelta(seconds=5)
SIGNAL_KINDS = {"hello", "offer", "answer", "candidate", "bye"}
MAX_SIGNAL_BODY = 32 * 1024
FORGET_SIGNALS_AFTER = timedelta(hours=1)
SIGNAL_POLL_STEP = 0.5  # seconds between looks at the database while a long-poll waits


# ---- the link ---------------------------------------------------------------------------

def _mac(appointment_id: int, nonce: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"telehealth:{appointment_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def telehealth_token(appointment: Appointment, secret: str) -> str:
    """The token in the appointment's join link; the id only finds the row, the MAC decides."""
    return f"{appointment.id}.{_mac(appointment.id, appointment.nonce, secret)}"


def join_token(appointment: Appointment) -> str:
    return telehealth_token(appointment, runtime.settings().secret_key)


def join_url(appointment: Appointment) -> str:
    """The join link to email (on PORTAL_BASE_URL)."""
    return external_url("telehealth.join", token=join_token(appointment))


@dataclass
class JoinLink:
    appointment: Appointment
    retired: bool  # derived from an earlier nonce: the appointment was cancelled or got a new link
    replaced_at: datetime | None = None  # when "New join link" replaced this one (not cancelled)


def appointment_named(token: str) -> tuple[Appointment, str] | None:
    """The appointment an "<id>.<mac>" token names, with its mac still to check; None for a
    token of the wrong shape or an appointment that does not exist. The join and the change
    links share the shape."""
    appointment_id, _dot, mac = (token or "").partition(".")
    # ASCII digits only ("²".isdigit() is true, int("²") fails), within an integer column.
    if not (appointment_id.isascii() and appointment_id.isdigit()) or len(appointment_id) > 9:
        return None
    if not mac or len(mac) > 64 or not mac.isascii():
        return None
    appointment = Appointment.get_or_none(Appointment.id == int(appointment_id))
    return None if appointment is None else (appointment, mac)


def find_join_link(token: str, secret: str) -> JoinLink | None:
    """The appointment a token opens, or None: tampered, foreign, or revoked. A link from
    before a cancellation is still found (retired), so that its page can say "cancelled"."""
    named = appointment_named(token)
    if named is None:
        return None
    appointment, mac = named
    if hmac.compare_digest(_mac(appointment.id, appointment.nonce, secret), mac):
        return JoinLink(appointment, retired=False)
    earlier = JoinLinkNonce.select(JoinLinkNonce.nonce, JoinLinkNonce.retired_at).where(
        (JoinLinkNonce.appointment == appointment) & (JoinLinkNonce.nonce != appointment.nonce))
    match = None
    for row in earlier:  # every one compared: the time taken does not say which matched
        if hmac.compare_digest(_mac(appointment.id, row.nonce, secret), mac):
            match = row
    if match is None:
        return None
    if appointment.status == "cancelled":
        return JoinLink(appointment, retired=True)
    if match.retired_at is not None:
        return JoinLink(appointment, retired=True, replaced_at=match.retired_at)
    return None


def look_up_join_link(token: str) -> JoinLink | None:
    """find_join_link with this practice's secret."""
    return find_join_link(token, runtime.settings().secret_key)


def remember_nonce(appointment: Appointment, change: str, now: datetime) -> None:
    """Keep every nonce a join link was derived from (see JoinLinkNonce); a new link or a
    cancellation retires the earlier ones, saying when and why."""
    exists = JoinLinkNonce.select().where(
        (JoinLinkNonce.appointment == appointment) & (JoinLinkNonce.nonce == appointment.nonce)).exists()
    if not exists:
        JoinLinkNonce.create(appointment=appointment, nonce=appointment.nonce, recorded_at=now)
    if change in ("new_join_link", "cancelled"):
        JoinLinkNonce.update(retired_at=now, retired_because=change).where(
            (JoinLinkNonce.appointment == appointment) & (JoinLinkNonce.nonce != appointment.nonce)
            & JoinLinkNonce.retired_at.is_null()).execute()


def replace_join_link(appointment: Appointment, *, by=None, now: datetime | None = None) -> Appointment:
    """"New join link": the old link stops opening the room (its page says when it was
    replaced), whoever is in the room with it is let go, and the client is emailed the new one
    (wired in practice/wiring.py). The calendar entry keeps its UID; its SEQUENCE goes up."""
    now = now or utcnow()
    if appointment.status == "cancelled":
        raise AppointmentError(clinic_gettext("This appointment is cancelled: it has no join link."))
    if appointment.kind != "telehealth":
        raise AppointmentError(clinic_gettext("This appointment is in person: it has no join link."))
    if client_archived(appointment):
        raise AppointmentError(clinic_gettext("%(name)s is archived: their join link lets nobody in.",
                                              name=appointment.client.name))
    with write_transaction():
        remember_nonce(appointment, "recorded", now)  # a nonce from before they were all kept
        appointment.nonce = new_nonce()
        appointment.sequence += 1
        appointment.updated_at = now
        appointment.save()
        seat = _seat(appointment, "client")
        if seat is not None:
            # Whoever had the old link starts again, and waits again under a waiting room.
            RoomSeat.update(admitted_at=None, waiting_since=None,
                            **({} if seat.left_at else {"left_at": now, "left_reason": "link_replaced"})).where(
                RoomSeat.id == seat.id).execute()
            if seat.left_at is None:
                RoomSignal.create(appointment=appointment, recipient="clinician", sender_connection=seat.connection,
                                  kind="bye", body="", created_at=now)
        audit.record("join_link_replaced", client=appointment.client, clinician=by, at=now,
                     detail=f"appointment {appointment.id}")
        after_change(appointment, "new_join_link", now)
    return appointment


# ---- the window -------------------------------------------------------------------------

@dataclass
class Entry:
    state: str  # open, not_yet, closed, cancelled, in_person, archived (the client's way in only)
    opens_at: datetime
    closes_at: datetime

    @property
    def is_open(self) -> bool:
        return self.state == "open"


def check_entry(appointment: Appointment, now: datetime | None = None, practice: Practice | None = None, *,
                role: str | None = None) -> Entry:
    """May someone enter the room now? Open from a little before the start until the grace
    after the current end, so moving the end later reopens it at once. For the client's
    role, never once the client is archived."""
    now = now or utcnow()
    window = join_window(appointment, practice)
    if appointment.status == "cancelled":
        state = "cancelled"
    elif role == "client" and client_archived(appointment):
        state = "archived"
    elif appointment.kind != "telehealth":
        state = "in_person"
    elif now < window.opens_at:
        state = "not_yet"
    elif now >= window.closes_at:
        state = "closed"
    else:
        state = "open"
    return Entry(state, window.opens_at, window.closes_at)


def client_archived(appointment: Appointment) -> bool:
    return appointment.client.archived_at is not None


def upcoming_for(client, now: datetime | None = None, limit: int | None = None) -> list[Appointment]:
    """The client's scheduled appointments still ahead, and telehealth ones whose join link
    still lets people back in (the grace after the end): the first `limit`, or all."""
    now = now or utcnow()
    # ends_at > now - grace is exactly "the join window has not closed yet".
    query = Appointment.upcoming_for(client, now, timedelta(minutes=Practice.current().telehealth_grace_minutes))
    return list(query.limit(limit) if limit is not None else query)


def describe_wait(seconds: float) -> str:
    """'45 minutes', '46 hours 45 minutes': how long until entry opens, for the countdown."""
    minutes = math.ceil(seconds / 60)
    if seconds < 60:
        return _("less than a minute")
    if minutes < 60:
        return ngettext("%(num)d minute", "%(num)d minutes", minutes)
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        said = ngettext("%(num)d hour", "%(num)d hours", hours)
        return said + " " + ngettext("%(num)d minute", "%(num)d minutes", minutes) if minutes else said
    return ngettext("%(num)d day", "%(num)d days", hours // 24)


# ---- the room ---------------------------------------------------------------------------

class EntryRefused(Exception):
    """Nobody new may enter: `reason` is the Entry state (not_yet, closed, cancelled,
    in_person, archived) or "full" (both seats are held by people in the room)."""

    def __init__(self, reason: str, entry: Entry | None = None):
        super().__init__(reason)
        self.reason = reason
        self.entry = entry


class NotInRoom(Exception):
    """A room page that no longer speaks for its seat: `reason` is "left", "elsewhere" (the
    seat was taken up by another page or browser), "cancelled", or "archived" (the client's)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def new_seat_key() -> str:
    return secrets.token_urlsafe(24)


def _hash(key: str) -> str:
    return hashlib.sha256((key or "").encode()).hexdigest()


def in_room(seat: RoomSeat | None, now: datetime) -> bool:
    return seat is not None and seat.left_at is None and seat.last_seen_at > now - STALE_AFTER


def other_role(role: str) -> str:
    return "client" if role == "clinician" else "clinician"


def _seat(appointment: Appointment, role: str) -> RoomSeat | None:
    return RoomSeat.get_or_none((RoomSeat.appointment == appointment) & (RoomSeat.role == role))


def _coming_back(seat: RoomSeat, now: datetime) -> bool:
    """Still in, or a reload or dropped page moments ago: not a new entry."""
    return in_room(seat, now) or (seat.left_reason == "page_closed" and seat.left_at > now - REJOIN_GRACE)


def enter_room(appointment: Appointment, role: str, seat_key: str, *, now: datetime | None = None,
               ip: str | None = None, by=None) -> RoomSeat:
    """Take (or take back) this role's seat for the browser with `seat_key`, with a new
    connection id for the page about to open. Someone already in is never refused; a new
    entry needs the window open and the seat free (nobody in it, or this browser's). `by`
    is the clinician entering, when it is not the appointment's own (an admin)."""
    now = now or utcnow()
    key_hash = _hash(seat_key)
    seat = _seat(appointment, role)
    mine = seat is not None and hmac.compare_digest(seat.key_hash, key_hash)
    _admit(appointment, role, seat, mine, now, ip)
    if not _take_seat(appointment, role, seat, key_hash, now):  # another browser was quicker
        _refuse(appointment, role, "full", ip, now)
        raise EntryRefused("full")
    _audit("telehealth_rejoined" if mine else "telehealth_entered", appointment, role, ip, now,
           "" if mine or seat is None else "in place of a browser that had gone quiet", by=by)
    return _seat(appointment, role)


def check_admission(appointment: Appointment, role: str, seat_key: str, *, now: datetime | None = None,
                    ip: str | None = None) -> None:
    """Would enter_room let this browser in now? Raises EntryRefused (and audits it) if not;
    the Join button asks this before sending the browser to the room."""
    now = now or utcnow()
    seat = _seat(appointment, role)
    _admit(appointment, role, seat, seat is not None and hmac.compare_digest(seat.key_hash, _hash(seat_key)), now, ip)


def _admit(appointment, role, seat, mine, now, ip) -> None:
    if role not in ROLES:
        raise ValueError(role)
    entry = check_entry(appointment, now, role=role)
    # Cancelling ends the session for everyone; archiving the client ends their way in.
    if entry.state in ("cancelled", "archived"):
        _refuse(appointment, role, entry.state, ip, now)
        raise EntryRefused(entry.state, entry)
    if mine and _coming_back(seat, now):
        return
    if not entry.is_open:
        _refuse(appointment, role, entry.state, ip, now)
        raise EntryRefused(entry.state, entry)
    if seat is not None and not mine and in_room(seat, now):
        _refuse(appointment, role, "full", ip, now)
        raise EntryRefused("full", entry)


def _take_seat(appointment, role, seat, key_hash, now) -> bool:
    fields = dict(key_hash=key_hash, connection=secrets.token_hex(16), last_seen_at=now, left_at=None,
                  left_reason=None)
    if role == "client":
        same_person = seat is not None and seat.key_hash == key_hash and _coming_back(seat, now)
        if not same_person:
            fields["waiting_since"] = now
        if not uses_waiting_room() and (seat is None or seat.admitted_at is None):
            fields["admitted_at"] = now  # in, as under "together": turning the waiting room on keeps them in
    with write_transaction():
        if seat is None:
            try:
                with db.atomic():
                    RoomSeat.create(appointment=appointment, role=role, entered_at=now, **fields)
            except IntegrityError:
                return False
        else:
            # Conditional on the row being as we read it: of two browsers racing for a free
            # seat, only one gets it.
            if seat.key_hash != key_hash:
                fields["entered_at"] = now
            taken = RoomSeat.update(**fields).where(
                (RoomSeat.id == seat.id) & (RoomSeat.key_hash == seat.key_hash)
                & (RoomSeat.connection == seat.connection)).execute()
            if not taken:
                return False
        # What was sent to this role's earlier pages is of no use to the new one; what the
        # other side's current page sent (its hello) is, if that page is still in the room.
        stale = RoomSignal.delete().where((RoomSignal.appointment == appointment) & (RoomSignal.recipient == role))
        peer = _seat(appointment, other_role(role))
        if in_room(peer, now) and is_waiting(peer):
            # A waiting client reads nothing until let in: of this role's pages, only the one
            # opening now will matter to them.
            RoomSignal.delete().where((RoomSignal.appointment == appointment)
                                      & (RoomSignal.recipient == other_role(role))).execute()
        if in_room(peer, now):
            stale = stale.where(RoomSignal.sender_connection != peer.connection)
        stale.execute()
        RoomSignal.delete().where(RoomSignal.created_at < now - FORGET_SIGNALS_AFTER).execute()
    return True


def _same_connection(seat: RoomSeat, connection) -> bool:
    """The page's connection id (from a form or a query string: any text at all) is this seat's."""
    return isinstance(connection, str) and bool(connection) and hmac.compare_digest(
        seat.connection.encode(), connection.encode())


def speaking_seat(appointment: Appointment, role: str, seat_key: str | None, connection: str | None,
                  *, now: datetime | None = None) -> RoomSeat:
    """The seat this room page speaks for, touched as seen; NotInRoom when it no longer does.
    The window is not checked: someone in the room stays in when it closes."""
    now = now or utcnow()
    if appointment.status == "cancelled":
        raise NotInRoom("cancelled")
    if role == "client" and client_archived(appointment):
        raise NotInRoom("archived")
    seat = _seat(appointment, role)
    if seat is None or not seat_key or not hmac.compare_digest(seat.key_hash, _hash(seat_key)):
        raise NotInRoom("elsewhere" if seat is not None else "left")
    if not _same_connection(seat, connection):
        raise NotInRoom("elsewhere")
    if seat.left_at is not None:
        raise NotInRoom("left")
    if seat.last_seen_at <= now - TOUCH_EVERY:
        RoomSeat.update(last_seen_at=now).where(RoomSeat.id == seat.id).execute()
        seat.last_seen_at = now
    return seat


def leave_room(appointment: Appointment, role: str, seat_key: str | None, connection: str | None, *,
               how: str = "left", now: datetime | None = None, ip: str | None = None) -> bool:
    """This page leaves: the Leave button (how="left") or the page closing or reloading
    (how="page_closed": the same person may come back within REJOIN_GRACE). The other side
    is told. Only the page that speaks for the seat can leave it."""
    now = now or utcnow()
    how = "page_closed" if how == "page_closed" else "left"
    seat = _seat(appointment, role)
    if (seat is None or not seat_key or not connection or not hmac.compare_digest(seat.key_hash, _hash(seat_key))
            or not _same_connection(seat, connection)):
        return False
    with write_transaction():
        if seat.left_at is not None:
            if how == "left":  # the Leave button, after its page-closed signal: a real leave
                RoomSeat.update(left_reason="left").where(RoomSeat.id == seat.id).execute()
            return False
        RoomSeat.update(left_at=now, left_reason=how).where(RoomSeat.id == seat.id).execute()
        RoomSignal.create(appointment=appointment, recipient=other_role(role), sender_connection=seat.connection,
                          kind="bye", body="", created_at=now)
    _audit("telehealth_left", appointment, role, ip, now, "" if how == "left" else "page closed or reloaded")
    return True


def end_client_seats(client, now: datetime | None = None) -> int:
    """Archiving: the client's seats in any room are given up now, and the clinician's page
    is told (a bye), as if the client had pressed Leave. In the caller's transaction."""
    now = now or utcnow()
    seats = list(RoomSeat.select().join(Appointment).where(
        (Appointment.client == client) & (RoomSeat.role == "client") & RoomSeat.left_at.is_null()))
    for seat in seats:
        RoomSeat.update(left_at=now, left_reason="archived").where(RoomSeat.id == seat.id).execute()
        RoomSignal.create(appointment=seat.appointment_id, recipient="clinician", sender_connection=seat.connection,
                          kind="bye", body="", created_at=now)
    return len(seats)


class BadSignal(ValueError):
    """A signalling message we do not pass on (unknown kind, too big)."""


def send_signal(seat: RoomSeat, kind: str, body: str = "", to: str | None = None,
                now: datetime | None = None) -> RoomSignal:
    """Pass a message to the other side of the room (to one page of it when `to` is given)."""
    if not isinstance(kind, str) or kind not in SIGNAL_KINDS:
        raise BadSignal(f"unknown kind {kind!r}"[:100])
    if not isinstance(body, str) or len(body) > MAX_SIGNAL_BODY:
        raise BadSignal("body too big")
    if "\x00" in body:  # never in SDP or ICE, and PostgreSQL cannot store it
        raise BadSignal("body holds a NUL character")
    if to is not None and (not isinstance(to, str) or len(to) > 64):
        raise BadSignal("bad recipient")
    return RoomSignal.create(appointment=seat.appointment_id, recipient=other_role(seat.role),
                             sender_connection=seat.connection, recipient_connection=to, kind=kind, body=body,
                             created_at=now or utcnow())


def take_signals(seat: RoomSeat) -> list[dict]:
    """The messages waiting for this seat's page, oldest first, removed as they are handed
    over; messages meant for an earlier page of the same seat are dropped."""
    mine = (RoomSignal.appointment == seat.appointment_id) & (RoomSignal.recipient == seat.role)
    rows = list(RoomSignal.select().where(mine).order_by(RoomSignal.id))  # a plain read: this runs every
    if not rows:                                                           # half second of a long-poll
        return []
    RoomSignal.delete().where(RoomSignal.id.in_([row.id for row in rows])).execute()
    return [{"kind": row.kind, "from": row.sender_connection, "body": row.body} for row in rows
            if row.recipient_connection in (None, seat.connection)]


def wait_for_signals(appointment: Appointment, role: str, seat_key: str | None, connection: str | None,
                     ) -> tuple[RoomSeat, list[dict], bool]:
    """The messages for this room page, waiting a while (the settings' signal_wait_seconds)
    when there are none yet, without holding a database connection meanwhile, and whether the
    page is still in the waiting room. NotInRoom as soon as the page no longer speaks for its seat."""
    seat = speaking_seat(appointment, role, seat_key, connection)
    waiting = is_waiting(seat)
    messages = [] if waiting else take_signals(seat)  # the clinician's hello keeps till they are let in
    deadline = time.monotonic() + runtime.settings().signal_wait_seconds
    while not messages and time.monotonic() < deadline:
        db.close()
        time.sleep(SIGNAL_POLL_STEP)
        db.connect(reuse_if_open=True)
        seat = speaking_seat(appointment, role, seat_key, connection)
        if waiting:
            if not is_waiting(seat):
                return seat, [], False  # let in: the page says hello at once
            continue
        messages = take_signals(seat)
    return seat, messages, waiting


def room_ice_servers(seat: RoomSeat, now: datetime | None = None) -> list[dict]:
    """The STUN/TURN servers for the room page this seat just entered with: TURN credentials
    of its own (username `<expiry>:<seat id>`), minted now, expiring after the TTL."""
    return turn.ice_servers(runtime.settings().turn, str(seat.id), now)


def peer_in_room(seat: RoomSeat, now: datetime | None = None) -> bool:
    """The other side is in the room (a client still in the waiting room is not, yet)."""
    peer = _seat(seat.appointment_id, other_role(seat.role))
    return in_room(peer, now or utcnow()) and not is_waiting(peer)


# ---- the waiting room ---------------------------------------------------------------------

def uses_waiting_room(practice: Practice | None = None) -> bool:
    """The practice's choice: the clinician lets the client in, or both connect when both are there."""
    return (practice or Practice.current()).room_entry == "waiting_room"


def is_waiting(seat: RoomSeat | None) -> bool:
    """A client's seat not yet let in, under a waiting room: their page shows their camera and
    "<clinician> will let you in shortly", and no signal passes between the two sides."""
    return (seat is not None and seat.role == "client" and seat.admitted_at is None
            and uses_waiting_room())


@dataclass
class Waiting:
    """The client's seat as the clinician sees it: waiting (since when), or in the session."""
    state: str  # waiting, in_session, away
    since: datetime | None = None


def client_waiting(appointment: Appointment, now: datetime | None = None) -> Waiting:
    seat = _seat(appointment, "client")
    if not in_room(seat, now or utcnow()):
        return Waiting("away")
    if is_waiting(seat):
        return Waiting("waiting", seat.waiting_since or seat.entered_at)
    return Waiting("in_session")


def let_in(appointment: Appointment, *, by=None, now: datetime | None = None, ip: str | None = None) -> bool:
    """"Let in": the waiting client's page starts the call at its next look (a long-poll
    notices within half a second). They stay let in for the appointment: a rejoin does not
    wait again. False when there was nobody to let in."""
    now = now or utcnow()
    with write_transaction():
        admitted = RoomSeat.update(admitted_at=now).where(
            (RoomSeat.appointment == appointment) & (RoomSeat.role == "client")
            & RoomSeat.admitted_at.is_null()).execute()
    if admitted:
        audit.record("telehealth_let_in", client=appointment.client, clinician=by or appointment.clinician,
                     detail=f"appointment {appointment.id}: let in from the waiting room", ip=ip, at=now)
    return bool(admitted)


def _refuse(appointment, role, reason, ip, now):
    _audit("telehealth_refused", appointment, role, ip, now, reason)


def _audit(kind, appointment, role, ip, now, detail="", by=None):
    words = f"appointment {appointment.id} as {role}" + (f": {detail}" if detail else "")
    clinician = (by or appointment.clinician) if role == "clinician" else None
    audit.record(kind, client=appointment.client, clinician=clinician, detail=words, ip=ip, at=now)
