"""Sign-in requests: what the sign-in page writes, and what the mail job makes of it.

POST /sign-in writes one SignInRequest row whoever asks, so a stranger's answer costs the
same as a client's. The job then issues a link (or not) and queues the email.
"""
from datetime import datetime, timedelta

from . import audit
from .clock import utcnow
from .links import issue_link
from .mail import mail_waiting, queue_sign_in_email
from .models import Client, Link, SignInRequest, end_request_memo, start_request_memo, write_transaction
from .prepared import Prepared, slot

MAILS_PER_ADDRESS_PER_HOUR = 5


_NEW_REQUEST = Prepared(lambda: SignInRequest.insert(email=slot("email"), requested_at=slot("at"), ip=slot("ip"),
                                                     outcome=slot("outcome")))
# The fifth newest request for an address in the last hour that was (or will be) answered
# by mail: while there is one, a further request sends nothing, until it is an hour old.
_FIFTH_ANSWERED = Prepared(lambda: SignInRequest.select(SignInRequest.requested_at).where(
    (SignInRequest.email == slot("email")) & (SignInRequest.requested_at > slot("since"))
    & (SignInRequest.outcome.is_null() | (SignInRequest.outcome != "throttled"))
).order_by(SignInRequest.requested_at.desc()).limit(1).offset(MAILS_PER_ADDRESS_PER_HOUR - 1))


def request_sign_in_link(email: str, *, ip: str | None = None, now: datetime | None = None) -> datetime | None:
    """The client is waiting: the mail job turns this into mail within seconds, not at its next tick.

    Returns None when this request will be answered by mail, or, for an address that has
    asked more than the limit in the hour, when asking again will send one. Counted per
    address, whoever it belongs to, so a stranger's answer is a client's (no enumeration)."""
    now, email = now or utcnow(), email.strip().lower()
    fifth = _FIFTH_ANSWERED.first(email=email, since=now - timedelta(hours=1))
    again_at = fifth[0].requested_at + timedelta(hours=1) if fifth else None
    _NEW_REQUEST.insert(email=email, at=now, ip=ip, outcome="throttled" if again_at else None)
    mail_waiting()
    return again_at


def process_sign_in_requests(*, now: datetime | None = None, batch: int = 50) -> int:
    """Turn pending requests into links and outbox mail; returns how many were handled."""
    now = now or utcnow()
    handled = 0
    stamp = SignInRequest.processed_at.db_value(now)
    # The practice's settings read once per batch (it takes well under a second), not three times a request.
    memo = start_request_memo()
    try:
        for request in SignInRequest.pending().limit(batch):
            with write_transaction():
                # Another process may have taken it between the select and this transaction.
                if not _TAKE.rows_affected(id=request.id, now=stamp):
                    continue
                outcome, link = _answer(request, now)
                _ANSWERED.rows_affected(id=request.id, outcome=outcome, link=link.id if link else None)
            handled += 1
    finally:
        end_request_memo(memo)
    return handled


# The statements the mail job runs for every request, their SQL built once (practice/prepared.py):
# building them anew was a third of the job's time per sign-in email.
_TAKE = Prepared(lambda: SignInRequest.update(processed_at=slot("now")).where(
    (SignInRequest.id == slot("id")) & SignInRequest.processed_at.is_null()))
_ANSWERED = Prepared(lambda: SignInRequest.update(outcome=slot("outcome"), link=slot("link")).where(
    SignInRequest.id == slot("id")))
_CLIENT_BY_EMAIL = Prepared(lambda: Client.select().where(Client.email == slot("email")).limit(1))
# The link mailed the fifth newest in the last hour on a client's request: while there is one,
# the backstop holds (a count would read them all).
_FIFTH_MAILED = Prepared(lambda: Link.select(Link.id).where(
    (Link.client == slot("client")) & (Link.reason == "client_request") & (Link.issued_at > slot("since"))
).order_by(Link.issued_at.desc()).limit(1).offset(MAILS_PER_ADDRESS_PER_HOUR - 1))


def _answer(request: SignInRequest, now: datetime):
    found = _CLIENT_BY_EMAIL.first(email=Client.lookup_key(request.email))
    client = found[0] if found else None
    if client is None or client.archived_at is not None:
        # Throttled as a client's would be: each "unknown" restarts the address's count of
        # wrong codes as a new link does a client's (links.redeem_code), so a sixth request
        # within the hour must restart nothing, for a stranger as for a client.
        asked_lately = SignInRequest.select().where(
            (SignInRequest.email == request.email) & (SignInRequest.outcome == "unknown")
            & (SignInRequest.processed_at > now - timedelta(hours=1))).count()
        throttled = request.outcome == "throttled" or asked_lately >= MAILS_PER_ADDRESS_PER_HOUR
        return ("throttled" if throttled else "unknown"), None
    since = now - timedelta(hours=1)
    # Throttled when it was asked for (and the answer said so), or by this backstop.
    if request.outcome == "throttled" or _FIFTH_MAILED.first(client=client.id, since=Link.issued_at.db_value(since)):
        mailed_lately = Link.select().where(
            (Link.client == client) & (Link.reason == "client_request") & (Link.issued_at > since)).count()
        audit.record("link_throttled", client=client, ip=request.ip, at=now,
                     detail=f"{mailed_lately} links mailed in the last hour")
        return "throttled", None
    return "issued", send_link(client, "client_request", now=now)


def send_link(client: Client, reason: str, *, target: str = "/portal",
              now: datetime | None = None, template: str = "sign_in") -> Link:
    """Issue a link (replacing earlier ones) and queue the email that carries it."""
    now = now or utcnow()
    with write_transaction():
        issued = issue_link(client, reason, target=target, now=now)
        queue_sign_in_email(issued, now=now, template=template)
    return issued.link
