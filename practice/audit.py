"""Audit trail: who did what to which link or session, and why it was refused."""
from .clock import utcnow
from .models import AuditEvent


def record(kind: str, *, client=None, link=None, clinician=None, detail: str = "", ip: str | None = None,
           at=None) -> AuditEvent:
    return AuditEvent.create(at=at or utcnow(), kind=kind, client=client, link=link, clinician=clinician,
                             detail=detail[:255], ip=ip)
