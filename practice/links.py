"""One-time sign-in links: issue, open, redeem (by link or by code), and explain a dead one."""
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, TypeVar

from peewee import fn

from . import audit, runtime
from .clock import utcnow
from .models import (Client, Link, Practice, SignInRequest, WrongCode, db, is_sqlite, value_from_db,
                     write_transaction)
from .prepared import Prepared, db_values, slot

T = TypeVar("T")
# Wrong codes for one address (since its newest link) before its code stops working; the
# link in the email keeps working, so nobody can burn a client's link by guessing.
MAX_CODE_ATTEMPTS = 5
# Wrong codes from one network address an hour, whatever addresses they were for.
WRONG_CODES_PER_SOURCE = 20
SOURCE_WINDOW = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1)
SAFE_TARGET_PREFIXES = ("/portal",)


@dataclass
class IssuedLink:
    link: Link
    token: str  # only ever in memory and in the email; the database keeps its hash
    code: str


class LinkRejected(Exception):
    """A link that cannot sign anyone in, and why: used, replaced, expired, killed,
    email_changed (the practice changed the client's address), not_recognised. `link` is
    None when the token matches nothing."""

    def __init__(self, reason: str, link: Link | None = None):
        super().__init__(reason)
        self.reason = reason
        self.link = link

    @property
    def email(self) -> str:
        """The address for the "Send me a new link" form: only for a recognised link, and
        not after an address change (whoever holds the old address must not learn the new one)."""
        if self.link is None or self.reason in ("not_recognised", "email_changed"):
            return ""
        return self.link.client.email

    @property
    def when(self) -> datetime | None:
        """The moment that explains the refusal: when the link was used, when the newer link
        was sent, when it was issued (its lifetime is over), or when it was switched off."""
        link = self.link
        if link is None:
            return None
        if self.reason == "used":
            return link.used_at
        if self.reason == "replaced":
            return link.replaced_by.issued_at if link.replaced_by else link.revoked_at
        if self.reason == "expired":
            return link.issued_at
        if self.reason in ("killed", "email_changed"):
            return link.revoked_at
        return None


class CodeRejected(Exception):
    """A code that signs nobody in. `locked`: this address has had MAX_CODE_ATTEMPTS wrong
    codes since its newest link, so no code works for it until a new link is sent (the link
    itself still works). `from_source`: this network address has sent too many wrong codes."""

    def __init__(self, locked: bool = False, from_source: bool = False):
        super().__init__("from_source" if from_source else "locked" if locked else "wrong")
        self.locked = locked
        self.from_source = from_source


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _hash_code(key: bytes, token_hash: str, code: str) -> str:
    # Keyed: a six-digit code is trivial to brute-force from a plain hash in a stolen database.
    return hmac.new(key, f"{token_hash}:{code}".encode(), hashlib.sha256).hexdigest()


def safe_target(target: str | None) -> str:
    """Only our own portal paths: a link must never redirect off-site."""
    if target and target.startswith(SAFE_TARGET_PREFIXES) and "//" not in target and "\\" not in target:
        return target
    return "/portal"


def link_lifetime(practice: Practice, reason: str) -> timedelta:
    if reason in ("invitation", "document_share"):
        return timedelta(hours=practice.invitation_link_hours)
    return timedelta(minutes=practice.sign_in_link_minutes)


def issue_link(client: Client, reason: str, *, target: str = "/portal",
               now: datetime | None = None) -> IssuedLink:
    """A new link for the client; every earlier unused link of theirs stops working."""
    now = now or utcnow()
    practice = Practice.current()
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10**6):06d}"
    token_hash = hash_token(token)
    with write_transaction():
        # Two links issued at once for one client: each must see the other's row when it
        # revokes "every earlier" one, so the second waits for the first to commit.
        client.lock()
        fields = dict(client=client, token_hash=token_hash,
                      code_hash=_hash_code(runtime.settings().code_key, token_hash, code),
                      code_attempts=Link.code_attempts.default, reason=reason, target=safe_target(target),
                      issued_at=now, expires_at=now + link_lifetime(practice, reason))
        link = Link(id=_NEW_LINK.insert(**db_values(_NEW_LINK_FIELDS, fields)), **fields)
        _REPLACE_EARLIER.rows_affected(client=client.id, link=link.id, now=Link.revoked_at.db_value(now))
        audit.record("link_issued", client=client, link=link, detail=reason, at=now)
    return IssuedLink(link=link, token=token, code=code)


# Run for every link the mail job issues: their SQL built once (practice/prepared.py).
_NEW_LINK_FIELDS = (Link.client, Link.token_hash, Link.code_hash, Link.code_attempts, Link.reason, Link.target,
                    Link.issued_at, Link.expires_at)
_NEW_LINK = Prepared(lambda: Link.insert(**{field.name: slot(field.name) for field in _NEW_LINK_FIELDS}))
_REPLACE_EARLIER = Prepared(lambda: Link.update(
    revoked_at=slot("now"), revoked_reason="replaced", replaced_by=slot("link")).where(
    (Link.client == slot("client")) & (Link.id != slot("link")) & Link.used_at.is_null() & Link.revoked_at.is_null()))


_LINK_BY_TOKEN_HASH = Prepared(lambda: Link.select(Link, Client).join(Client).where(
    Link.token_hash == slot("token_hash")).limit(1))


def find_link(token: str) -> Link | None:
    if not token or len(token) > 200:
        return None
    token_hash = hash_token(token)
    row = _LINK_BY_TOKEN_HASH.first(token_hash=token_hash)
    if row is None:
        return None
    link, client = row
    link.client = client  # read in the same row
    # The index finds the row; the comparison that decides is constant-time.
    return link if hmac.compare_digest(link.token_hash, token_hash) else None


def why_dead(link: Link | None, now: datetime) -> str | None:
    """The reason a link cannot be used now, or None while it is live."""
    if link is None or link.client.archived_at is not None:
        return "not_recognised"
    if link.used_at is not None:
        return "used"
    if link.revoked_at is not None:
        return {"replaced": "replaced", "too_many_codes": "killed",
                "email_changed": "email_changed"}.get(link.revoked_reason, "not_recognised")
    if link.expires_at <= now:
        return "expired"
    return None


def open_link(token: str, *, method: str, ip: str | None, agent: str | None,
              now: datetime | None = None) -> Link:
    """What GET and HEAD do: look, record the first opening, never use the link up."""
    now = now or utcnow()
    link = find_link(token)
    reason = why_dead(link, now)
    if link is not None:
        with write_transaction():
            if link.first_opened_at is None:
                Link.update(
                    first_opened_at=now, first_opened_method=method,
                    first_opened_ip=ip, first_opened_agent=(agent or "")[:255],
                ).where((Link.id == link.id) & Link.first_opened_at.is_null()).execute()
            audit.record("link_opened", client=link.client, link=link, detail=method, ip=ip, at=now)
    if reason is not None:
        _reject(reason, link, ip, now)
    return link


def redeem_link(token: str, *, ip: str | None = None, now: datetime | None = None,
                then: Callable[[Link], T] | None = None) -> Link | T:
    """Use the link up and return it, or raise LinkRejected. One conditional UPDATE decides,
    so of any number of simultaneous presses exactly one wins.

    With `then`, returns then(link), run inside the transaction that uses the link up: the
    session it starts commits with the redemption, or neither does (and one commit, not three)."""
    now = now or utcnow()
    link = find_link(token)
    if link is not None and link.client.archived_at is None:
        with write_transaction():
            if _consume(link, now, via="link", ip=ip):
                return then(link) if then is not None else link
        link = find_link(token)  # someone else won: read why it is dead now
    _reject(why_dead(link, now) or "used", link, ip, now)


def redeem_code(email: str, code: str, *, ip: str | None = None,
                now: datetime | None = None, then: Callable[[Link], T] | None = None) -> Link | T:
    """Sign in with the six-digit code from the newest live link sent to this address.
    `then` as for redeem_link: run in the transaction that uses the link up.

    Whether or not the address is a client's, the same queries and writes are made and wrong
    codes are counted alike, per address (since its newest link, or since the latest request
    for it that found no client) and per network address: the answers, and as nearly as we
    can their time, say nothing of who is a client."""
    now = now or utcnow()
    address = (email or "").strip().lower()
    if WrongCode.from_source(ip, now - SOURCE_WINDOW).count() >= WRONG_CODES_PER_SOURCE:
        raise CodeRejected(from_source=True)
    key = runtime.settings().code_key
    address_hash = hmac.new(key, f"address:{address}".encode(), hashlib.sha256).hexdigest()
    with write_transaction():
        _lock_address(address_hash)  # simultaneous guesses for one address are counted one by one
        client = Client.by_email(address)
        client_id = client.id if client is not None and client.archived_at is None else 0
        link = Link.live_for(client_id, now).order_by(Link.issued_at.desc(), Link.id.desc()).first()
        wrong = WrongCode.for_address(address_hash, _counting_since(address, client_id)).count()
        given = _hash_code(key, link.token_hash if link is not None else "", (code or "").strip())
        right = hmac.compare_digest(link.code_hash if link is not None else _hash_code(key, "", ""), given)
        if link is not None and right and wrong < MAX_CODE_ATTEMPTS:
            if _consume(link, now, via="code", ip=ip):
                return then(link) if then is not None else link
            raise CodeRejected()
        WrongCode.create(address_hash=address_hash, link=link, ip=ip, at=now)
        Link.update(code_attempts=Link.code_attempts + 1).where(Link.id == (link.id if link else 0)).execute()
        wrong += 1
        locked = wrong >= MAX_CODE_ATTEMPTS
        detail = f"attempt {wrong} of {MAX_CODE_ATTEMPTS}" + (
            "; the code no longer works, the link still does" if locked else "")
        audit.record("code_rejected", client=client if client_id else None, link=link, ip=ip, at=now,
                     detail=detail if client_id else "for an address that is not an active client's")
    raise CodeRejected(locked=locked)


def _lock_address(address_hash: str) -> None:
    """PostgreSQL: one transaction per address at a time. SQLite's write transaction lets
    one writer in at a time already."""
    if not is_sqlite():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (int(address_hash[:15], 16),))


def _counting_since(address: str, client_id: int) -> datetime:
    """Wrong codes count from the client's newest link, or from the latest request for the
    address that found no client: a new request resets both counts alike. Both queries run
    either way."""
    issued = Link.select(fn.MAX(Link.issued_at)).where(Link.client == client_id).scalar()
    asked = SignInRequest.select(fn.MAX(SignInRequest.processed_at)).where(
        (SignInRequest.email == address) & (SignInRequest.outcome == "unknown")).scalar()
    moments = [value_from_db(Link.issued_at, value) for value in (issued, asked) if value is not None]
    return max(moments, default=EPOCH)


_USE_UP = Prepared(lambda: Link.update(used_at=slot("now"), used_by=slot("via")).where(
    (Link.id == slot("id"))
    & Link.used_at.is_null()
    & Link.revoked_at.is_null()
    & (Link.expires_at > slot("now"))
))


def _consume(link: Link, now: datetime, *, via: str, ip: str | None) -> bool:
    """In the caller's write transaction: True for the one caller that uses the link up."""
    won = _USE_UP.rows_affected(id=link.id, now=now, via=via) == 1
    if won:
        link.used_at, link.used_by = now, via
        audit.record("link_redeemed", client=link.client, link=link, detail=f"by {via}", ip=ip, at=now)
    return won


def _reject(reason: str, link: Link | None, ip: str | None, now: datetime):
    audit.record("link_rejected", client=link.client if link else None, link=link, detail=reason, ip=ip, at=now)
    raise LinkRejected(reason, link)


def revoke_client_links(client: Client, reason: str, now: datetime | None = None) -> int:
    now = now or utcnow()
    return Link.update(revoked_at=now, revoked_reason=reason).where(
        (Link.client == client) & Link.used_at.is_null() & Link.revoked_at.is_null()
    ).execute()
