"""After ANALYZE, SQLite's planner reads the queries of the pages and ticks that grow with a
practice's history through an index: none scans a whole table of links, audit rows, sign-in
requests, emails or appointments (each statement is taken from peewee's query log)."""
import logging
import re
from datetime import timedelta

import pytest

from practice.clock import utcnow
from practice.history import link_history, other_mail, recent_events
from practice.mail import claim_due_mail
from practice.models import Appointment, AuditEvent, Email, Link, SignInRequest, db, is_sqlite
from practice.sign_in import process_sign_in_requests
from practice.telehealth import upcoming_for
from tests.test_long_history import counted_statements

GROWING = ("link", "auditevent", "signinrequest", "email", "appointment")


def seed_history(alex, dana, rows: int = 300) -> None:
    """Enough rows of each growing table, most of them other clients', for the planner's statistics."""
    now = utcnow()
    from practice.clients import add_client
    others = [add_client(f"c{n}@example.com", f"Client {n}") for n in range(20)]
    links = [dict(client=(alex if n % 10 == 0 else others[n % 20]), token_hash=f"{n:064d}", code_hash="0" * 64,
                  reason="client_request", issued_at=now - timedelta(hours=n), expires_at=now - timedelta(hours=n - 24))
             for n in range(rows)]
    Link.insert_many(links).execute()
    ids = [i for (i,) in Link.select(Link.id).tuples()]
    SignInRequest.insert_many([dict(email="c@example.com", requested_at=now, processed_at=now, outcome="issued",
                                    link=i) for i in ids]).execute()
    Email.insert_many([dict(to_addr="c@example.com", subject="s", text_body="", html_body="", message_id=f"<{i}@x>",
                            kind="sign_in", link=i, client=alex if n % 10 == 0 else others[0], status="sent",
                            queued_at=now, next_attempt_at=now, sent_at=now)
                       for n, i in enumerate(ids)]).execute()
    AuditEvent.insert_many([dict(at=now, kind="link_opened", client=alex if n % 10 == 0 else others[1], link=i)
                            for n, i in enumerate(ids) for _ in range(2)]).execute()
    Appointment.insert_many([dict(clinician=dana, client=alex if n % 10 == 0 else others[n % 20],
                                  starts_at=now + timedelta(hours=n - rows // 2),
                                  ends_at=now + timedelta(hours=n - rows // 2, minutes=50), nonce=f"{n}")
                             for n in range(rows)]).execute()
    db.execute_sql("ANALYZE")


def plans(work) -> list[tuple[str, str]]:
    """(statement, its plan) for every SELECT, UPDATE or DELETE `work` runs."""
    with counted_statements() as counted:
        work()
    found = []
    for record in counted:
        sql, params = record.msg if isinstance(record.msg, tuple) else (record.args[0], [None] * record.args[1])
        if re.match(r"\s*(SELECT|UPDATE|DELETE)", sql):
            rows = db.connection().execute("EXPLAIN QUERY PLAN " + sql, list(params or ())).fetchall()
            found.append((sql, " | ".join(row[-1] for row in rows)))
    return found


def test_after_analyze_no_page_or_tick_scans_a_growing_table(app, alex, dana):
    if not is_sqlite():
        pytest.skip("SQLite's planner")
    seed_history(alex, dana)
    SignInRequest.create(email=alex.email, requested_at=utcnow())
    now = utcnow()

    for name, work in {
        "link history": lambda: link_history(alex, now=now),
        "an older page": lambda: link_history(alex, now=now, before=12),
        "other emails": lambda: other_mail(alex),
        "recent activity": lambda: recent_events(alex),
        "portal home": lambda: upcoming_for(alex, now, 11),
        "sign-in requests": lambda: process_sign_in_requests(now=now),
        "mail claim": lambda: claim_due_mail(now),
    }.items():
        for sql, plan in plans(work):
            table_of = {alias: table for table, alias in re.findall(r'"(\w+)" AS "(t\d+)"', sql)}
            table_of.update((table, table) for table in re.findall(r'(?:UPDATE|DELETE FROM) "(\w+)"', sql))
            # A scan of a subquery's rows, or of a small table (the clinicians), is no scan of history.
            scanned = {table_of.get(alias) for alias in re.findall(r"SCAN (\w+)\b(?! USING)", plan)}
            assert not scanned & set(GROWING), f"{name}: {sql}\n  plan: {plan}"
