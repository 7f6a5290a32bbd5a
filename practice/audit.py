"""Audit trail: who did what to which link or session, and why it was refused."""
from .clock import utcnow
from .models import AuditEvent
from .prepared import Prepared, slot

# Written several times by every sign-in: its SQL is built once (practice/prepared.py).
_INSERT = Prepared(lambda: AuditEvent.insert(
    at=slot("at"), kind=slot("kind"), client=slot("client"), link=slot("link"), clinician=slot("clinician"),
    detail=slot("detail"), ip=slot("ip")))


def record(kind: str, *, client=None, link=None, clinician=None, detail: str = "", ip: str | None = None,
           at=None) -> AuditEvent:
    fields = dict(at=at or utcnow(), kind=kind, detail=(detail or "")[:255], ip=ip)
    new_id = _INSERT.insert(client=_id(client), link=_id(link), clinician=_id(clinician), **fields)
    return AuditEvent(id=new_id, client=client, link=link, clinician=clinician, **fields)


def _id(row):
    """A foreign key's value: the row's id (a model instance or an id may be given)."""
    return getattr(row, "id", row)
