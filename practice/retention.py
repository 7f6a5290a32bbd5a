"""What is kept, and for how long: answered sign-in requests and sent emails are pruned once
the link history no longer needs them (the rule is in docs/operations.md, "What is kept").

Both tables grow with every sign-in and every reminder, and nothing else ever reads an old
row: a link dies within days of its email, the audit trail (kept) already says what became
of it, and a practice explains a dead link while the client is on the phone, not a season
later. Mail that failed, or is still on its way, is never pruned.
"""
from datetime import datetime

from . import runtime
from .clock import utcnow
from .models import Email, SignInRequest, write_transaction

BATCH = 500  # rows per delete: each in a short transaction of its own, so writers are not held up


def prune_history(now: datetime | None = None) -> int:
    """Delete sign-in requests answered, and emails sent, more than the retention period ago;
    returns how many rows went."""
    cutoff = (now or utcnow()) - runtime.settings().retention
    pruned = 0
    for model, old in ((SignInRequest, SignInRequest.processed_at < cutoff),
                       (Email, (Email.status == "sent") & (Email.sent_at < cutoff))):
        while True:
            with write_transaction():
                ids = [row_id for (row_id,) in model.select(model.id).where(old).limit(BATCH).tuples()]
                if ids:
                    model.delete().where(model.id.in_(ids)).execute()
            pruned += len(ids)
            if len(ids) < BATCH:
                break
    return pruned
