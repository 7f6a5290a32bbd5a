"""Scale benchmark: the same requests against a small and a big practice, side by side.

    .venv/bin/python bench/scale.py [--scale 1] [--repeats 15] [--postgres URL]

What it does, in order:

1. Seeds two fresh databases with bulk inserts (the driver's executemany in one transaction
   per table; minutes at full size, seconds at `--scale 0.1`):
   - small: 20 clients, 2 clinicians, 100 appointments (70 in this week), 64 links with
     their sign-in requests and emails, 192 audit rows; its typical client has a page's worth
     of history (25 links, 12 upcoming appointments), so that a heavy page is compared with
     a page of the same length over a short history;
   - big: 5,000 clients, 25 clinicians, 100,000 appointments (700 in this week), 200,000
     links, 200,000 sign-in requests and 200,000 emails, 640,000 audit rows, and in them a
     heavy client with 2,000 links and 300 upcoming appointments. `--scale` multiplies the
     big practice's totals (the heavy client, the 25 clinicians and a week's 700 stay as they are).
   Future appointments get their pending 72 h and 24 h reminders. Then ANALYZE, as a
   long-lived database has statistics (on PostgreSQL VACUUM ANALYZE, and a CHECKPOINT so
   that flushing the seeding's writes does not fall on the measured requests).
2. Serves both with the real create_app() (Flask's test client, in this process, scheduler
   off, mail in the dev mailbox) and runs every request once with peewee's query log counted:
   the SQL statements per request.
3. Times each request `--repeats` times, alternating small and big (which goes first
   alternates too), so that the machine's load falls on both alike. Untimed preparation
   (a CSRF token, requests for the busy mail tick, due reminders) happens between.
4. Prints per request the median and p95 in ms for each practice, big/small, and statements,
   with the load average before and after. Aims: big/small <= 1.5, every page under 300 ms
   at the big size, and a heavy page issuing no more statements than a light one.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.reminders import Databases, bulk_insert, release_database  # noqa: E402

SECRET_KEY = "bench-secret-key-not-for-production-" + "0" * 32
AIM_RATIO = 1.5
AIM_PAGE_MS = 300.0
FIRST = ["Alex", "Sam", "Jordan", "Taylor", "Casey", "Riley", "Morgan", "Jamie", "Avery", "Quinn",
         "Drew", "Reese", "Robin", "Kai", "Noor", "Ana", "Luis", "Mei", "Omar", "Priya"]
LAST = ["Rivera", "Chen", "Okafor", "Novak", "Singh", "Garcia", "Kowalski", "Haddad", "Nguyen", "Smith",
        "Brown", "Moreau", "Rossi", "Tanaka", "Silva", "Larsen", "Murphy", "Cohen", "Ali", "Evans",
        "Fischer", "Dubois", "Santos", "Ivanova", "Kim"]
TYPICAL_NAME = "Robin Ashdown-Vale"  # the typical client's, unique in both practices: the search finds one


@dataclass
class Size:
    clients: int
    clinicians: int
    appointments: int
    per_week: int  # appointments in a week, for the admin's week view
    links: int  # with as many sign-in requests and emails
    audit: int
    heavy_links: int = 0
    heavy_upcoming: int = 0
    heavy: int = 3  # which client (in order) has the long history


# The small practice's heavy client is its typical one, with a page's worth of each list (25
# links, 12 upcoming appointments): the ratio then compares the same page over a short and a
# long history, not a page of 2 rows with one of 20.
SMALL = Size(clients=20, clinicians=2, appointments=100, per_week=70, links=64, audit=192, heavy_links=25,
             heavy_upcoming=12, heavy=1)


def big(scale: float) -> Size:
    return Size(clients=int(5000 * scale), clinicians=25, appointments=int(100_000 * scale),
                per_week=700, links=max(2100, int(200_000 * scale)), audit=max(6300, int(640_000 * scale)),
                heavy_links=2000, heavy_upcoming=300)


@dataclass
class Practice:
    """A seeded database and the app serving it, with who the requests are made as."""

    name: str
    app: object = None
    database: object = None  # the peewee database the app was built with
    admin: int = 0
    clinician: int = 0
    typical: int = 0
    heavy: int = 0
    clients: list = field(default_factory=list)  # every client id, for sign-in requests
    browsers: dict = field(default_factory=dict)  # test clients by who is signed in
    due: list = field(default_factory=list)  # reminder ids made due for the reminder tick


# ---- seeding ---------------------------------------------------------------------------------

def seed(practice: Practice, size: Size, rng: random.Random) -> None:
    from practice.clock import utcnow
    from practice.models import (Appointment, AuditEvent, Client, Clinician, Email, Link, Practice as PracticeRow,
                                 Reminder, SignInRequest, db, is_sqlite)

    now = utcnow().replace(microsecond=0)
    stamp = str(now)
    with practice.app.app_context(), db.connection_context(), db.atomic():
        # Sessions are made straight in the database (browser()), so no second factor is asked for.
        PracticeRow.update(require_second_factor=False).execute()
        bulk_insert(Clinician, [Clinician.email, Clinician.name, Clinician.password_hash, Clinician.is_admin,
                                Clinician.created_at],
                    [(f"clinician{n}@example.org", f"Clinician {LAST[n % len(LAST)]} {n}", "scrypt$unused",
                      n == 0, stamp) for n in range(size.clinicians)])
        clinicians = [row[0] for row in Clinician.select(Clinician.id).order_by(Clinician.id).tuples()]

        def client_name(n):
            if n == 1:
                return TYPICAL_NAME
            return f"{FIRST[n % len(FIRST)]} {LAST[(n // len(FIRST)) % len(LAST)]}"

        bulk_insert(Client, [Client.email, Client.name, Client.phone, Client.clinician, Client.language,
                             Client.created_at],
                    [(f"client{n}@example.org", client_name(n), f"+44 20 7946 {n:04d}",
                      clinicians[n % size.clinicians], "en", stamp) for n in range(size.clients)])
        clients = [row[0] for row in Client.select(Client.id).order_by(Client.id).tuples()]
        practice.clients = clients
        practice.admin, practice.clinician = clinicians[0], clinicians[1]
        practice.typical = clients[1]  # clinician 1's
        practice.heavy = clients[size.heavy]
        heavy_clinician = clinicians[size.heavy % size.clinicians]
        address = {client_id: f"client{n}@example.org" for n, client_id in enumerate(clients)}
        owner = {client_id: clinicians[n % size.clinicians] for n, client_id in enumerate(clients)}

        # Appointments: `per_week` a week, this week full, the rest before it and some after.
        week = timedelta(days=7)
        monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0)
        regular = size.appointments - size.heavy_upcoming
        weeks = regular / size.per_week
        first = monday - (week * max(0.2, weeks * 0.7) if weeks > 1.5 else week * 0.2)
        step = week / size.per_week
        rows = []
        for n in range(regular):
            client_id = clients[rng.randrange(len(clients))]
            begins = first + step * n
            length = timedelta(hours=8) if n % 25 == 0 else timedelta(minutes=50)  # some overlap their neighbours
            status = "cancelled" if n % 20 == 7 else "scheduled"
            rows.append((owner[client_id], client_id, begins, begins + length, "telehealth" if n % 3 else "in_person",
                         status))
        tomorrow = monday + timedelta(days=now.weekday() + 1, hours=10)
        rows += [(heavy_clinician, practice.heavy, tomorrow + timedelta(days=d),
                  tomorrow + timedelta(days=d, minutes=50), "telehealth", "scheduled")
                 for d in range(size.heavy_upcoming)]
        bulk_insert(Appointment, [Appointment.clinician, Appointment.client, Appointment.starts_at,
                                  Appointment.ends_at, Appointment.kind, Appointment.status, Appointment.nonce,
                                  Appointment.sequence, Appointment.created_at, Appointment.updated_at],
                    [(c, cl, str(s), str(e), k, st, secrets.token_hex(16), 0, stamp, stamp)
                     for c, cl, s, e, k, st in rows])
        future = [(n + 1, s) for n, (_, _, s, _, _, st) in enumerate(rows) if s > now and st == "scheduled"]
        bulk_insert(Reminder, [Reminder.appointment, Reminder.offset_hours, Reminder.due_at, Reminder.status,
                               Reminder.created_at],
                    [(a, offset, str(s - timedelta(hours=offset)), "pending", stamp)
                     for a, s in future for offset in (72, 24) if s - timedelta(hours=offset) > now + timedelta(hours=1)])
        practice.due = [row[0] for row in Reminder.select(Reminder.id).where(Reminder.offset_hours == 24)
                        .order_by(Reminder.due_at.desc()).limit(10).tuples()]

        # Links over the past two years, in issue order (ids follow it), each with its request,
        # email and audit trail; a client's link is replaced by their next one or used or expires.
        owners = [practice.heavy] * size.heavy_links + [
            clients[rng.randrange(len(clients))] for _ in range(size.links - size.heavy_links)]
        rng.shuffle(owners)
        span = timedelta(days=730)
        issued = sorted(now - span + span * rng.random() for _ in owners)
        later_of = {}
        nxt = [None] * len(owners)
        for n in range(len(owners) - 1, -1, -1):
            nxt[n] = later_of.get(owners[n])
            later_of[owners[n]] = n
        link_rows, fates = [], []
        for n, (client_id, at) in enumerate(zip(owners, issued)):
            fate = rng.random()
            used = fate < 0.7
            replaced = not used and fate < 0.85 and nxt[n] is not None
            fates.append("used" if used else "replaced" if replaced else "expired")
            link_rows.append((client_id, secrets.token_hex(32), "0" * 64, 0, "client_request", "/portal", str(at),
                              str(at + timedelta(hours=24)), str(at + timedelta(minutes=5)) if used else None,
                              "link" if used else None,
                              str(issued[nxt[n]]) if replaced else None, "replaced" if replaced else None,
                              None,  # replaced_by: set below, once the newer link exists
                              str(at + timedelta(minutes=1)), "GET", f"203.0.113.{n % 250}",
                              "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1"))
        bulk_insert(Link, [Link.client, Link.token_hash, Link.code_hash, Link.code_attempts, Link.reason, Link.target, Link.issued_at,
                           Link.expires_at, Link.used_at, Link.used_by, Link.revoked_at, Link.revoked_reason,
                           Link.replaced_by, Link.first_opened_at, Link.first_opened_method, Link.first_opened_ip,
                           Link.first_opened_agent], link_rows)
        del link_rows
        replacements = [(nxt[n] + 1, n + 1) for n, fate in enumerate(fates) if fate == "replaced"]
        cursor = db.cursor()
        mark = "?" if is_sqlite() else "%s"
        for start in range(0, len(replacements), 5000):
            cursor.executemany(f'UPDATE "link" SET "replaced_by_id" = {mark} WHERE "id" = {mark}',
                               replacements[start:start + 5000])
        bulk_insert(SignInRequest, [SignInRequest.email, SignInRequest.requested_at, SignInRequest.ip,
                                    SignInRequest.processed_at, SignInRequest.outcome, SignInRequest.link],
                    [(address[c], str(at - timedelta(seconds=1)), f"203.0.113.{n % 250}", str(at), "issued", n + 1)
                     for n, (c, at) in enumerate(zip(owners, issued))])
        body = "(This message has been sent. Its body is not kept because it carried a one-time link.)"
        bulk_insert(Email, [Email.to_addr, Email.subject, Email.text_body, Email.html_body, Email.message_id,
                            Email.kind, Email.client, Email.link, Email.status, Email.queued_at,
                            Email.next_attempt_at, Email.attempts, Email.sent_at, Email.transport],
                    [("client@example.org", f"Your sign-in link (sent {at:%d %b %Y %H:%M})", body, body,
                      f"<bench.{n}.sign-in@example.org>", "sign_in", c, n + 1, "sent", str(at), str(at), 1,
                      str(at + timedelta(seconds=2)), "smtp") for n, (c, at) in enumerate(zip(owners, issued))])
        audit = []
        for n, (c, at) in enumerate(zip(owners, issued)):
            audit.append((str(at), "link_issued", c, n + 1, "client_request", f"203.0.113.{n % 250}"))
            audit.append((str(at + timedelta(minutes=1)), "link_opened", c, n + 1, "GET", f"203.0.113.{n % 250}"))
            if fates[n] == "used":
                audit.append((str(at + timedelta(minutes=5)), "link_redeemed", c, n + 1, "link",
                              f"203.0.113.{n % 250}"))
            else:
                audit.append((str(at + timedelta(days=2)), "link_rejected", c, n + 1, fates[n], "198.51.100.7"))
        while len(audit) < size.audit:
            c = clients[rng.randrange(len(clients))]
            audit.append((str(now - span * rng.random()), "signed_in", c, None, "client", "203.0.113.9"))
        bulk_insert(AuditEvent, [AuditEvent.at, AuditEvent.kind, AuditEvent.client, AuditEvent.link,
                                 AuditEvent.detail, AuditEvent.ip], audit)
    with practice.app.app_context(), db.connection_context():
        if is_sqlite():
            db.execute_sql("ANALYZE")
            db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            # As a long-lived database is: the seeding's writes flushed and its tables vacuumed,
            # not by a checkpoint or autovacuum in the middle of the measured requests (the busy
            # mail tick, measured last and committing most, once took ten times as long).
            db.execute_sql("VACUUM ANALYZE")
            db.execute_sql("CHECKPOINT")


# ---- serving and counting ----------------------------------------------------------------------

class StatementCount(logging.Handler):
    """Counts peewee's query log (every statement it runs goes through it)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record):
        self.count += 1


def make_app(url: str):
    from portal import create_app
    from bench._app import BENCH_CONFIG
    from practice.models import db
    release_database()
    app = create_app({**BENCH_CONFIG, "DATABASE_URL": url, "SECRET_KEY": SECRET_KEY,
                      "PORTAL_BASE_URL": "http://localhost", "TRUSTED_HOSTS": ["localhost"],
                      "PORTAL_SCHEDULER": "off", "MAIL_SERVER": "", "WTF_CSRF_ENABLED": True})
    return app, db.obj


def use(practice: Practice) -> None:
    """Point the one database proxy at this practice's database (both apps share it)."""
    from practice.models import db
    db.initialize(practice.database)


def browser(practice: Practice, who: str):
    """A test client with a session for `who` ("admin", "clinician", "typical", "heavy"),
    made straight in the database: the requests measured are the pages, not the sign-in."""
    if who in practice.browsers:
        return practice.browsers[who]
    from practice.models import Client, Clinician, db
    from practice.sessions import start_session
    with practice.app.app_context(), db.connection_context():
        if who in ("admin", "clinician"):
            raw, _ = start_session(clinician=Clinician.get_by_id(getattr(practice, who)))
        else:
            raw, _ = start_session(client=Client.get_by_id(getattr(practice, who)))
    test_client = practice.app.test_client()
    if raw:
        test_client.set_cookie(practice.app.config["PORTAL_SESSION_COOKIE"], raw)
    practice.browsers[who] = test_client
    return test_client


def page(who: str, path: str, **headers):
    def run(practice: Practice):
        response = browser(practice, who).get(path.format(p=practice), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{practice.name}: GET {path.format(p=practice)} answered {response.status_code}")
    return run, None


def sign_in_post():
    import re
    token = {}

    def prepare(practice: Practice):
        test_client = practice.browsers.setdefault("anonymous", practice.app.test_client())
        html = test_client.get("/sign-in").get_data(as_text=True)
        token[practice.name] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)

    def run(practice: Practice):
        response = practice.browsers["anonymous"].post(
            "/sign-in", data={"email": "nobody@example.net", "csrf_token": token[practice.name]})
        if response.status_code not in (200, 303):
            raise RuntimeError(f"{practice.name}: POST /sign-in answered {response.status_code}")

    return run, prepare


def tick(kind: str):
    from practice import jobs
    from practice.models import Email, Reminder, SignInRequest, db
    from practice.clock import utcnow
    state = {}

    def drain(practice):
        with practice.app.app_context():
            jobs.mail_tick()

    def prepare(practice: Practice):
        drain(practice)  # what earlier requests left (POST /sign-in's rows)
        with practice.app.app_context(), db.connection_context():
            if kind == "mail_busy":
                rows = [{"email": f"client{n}@example.org", "requested_at": utcnow(), "ip": "203.0.113.5"}
                        for n in random.sample(range(len(practice.clients)), 5)]
                SignInRequest.insert_many(rows).execute()
            elif kind == "reminder":
                state[practice.name] = {r.id: r.due_at for r in Reminder.select().where(Reminder.id.in_(practice.due))}
                Reminder.update(due_at=utcnow() - timedelta(minutes=1)).where(Reminder.id.in_(practice.due)).execute()

    def run(practice: Practice):
        with practice.app.app_context():
            done = jobs.reminder_tick() if kind == "reminder" else jobs.mail_tick()
        expected = {"reminder": len(practice.due), "mail_idle": 0, "mail_busy": None}[kind]
        if expected is not None and done != expected:
            raise RuntimeError(f"{practice.name}: {kind} tick did {done}, not {expected}")
        if kind == "reminder":  # untimed from here: the same reminders pending again, their mail gone
            with practice.app.app_context(), db.connection_context(), db.atomic():
                emails = [r.email_id for r in Reminder.select(Reminder.email).where(Reminder.id.in_(practice.due))]
                for reminder_id, due_at in state[practice.name].items():
                    Reminder.update(status="pending", email=None, done_at=None, claimed_until=None,
                                    due_at=due_at).where(Reminder.id == reminder_id).execute()
                Email.delete().where(Email.id.in_(emails)).execute()

    return run, prepare


def scenarios():
    """(name, is a page, big practice's heavy variant?, run, prepare)."""
    week_day = "{p.today}"
    search = TYPICAL_NAME.split()[1][:6]
    # The admin has clients, so their calendar opens on their own (the default an admin sees,
    # blueprints/clinic/_calendar_choice.py), not on everyone's 700 appointments.
    return [
        ("calendar day, clinician", True, page("clinician", "/clinic/calendar?date=" + week_day)),
        ("calendar day, admin", True, page("admin", "/clinic/calendar?date=" + week_day)),
        ("calendar week, clinician", True, page("clinician", "/clinic/calendar/week?date=" + week_day)),
        ("calendar week, admin", True, page("admin", "/clinic/calendar/week?date=" + week_day)),
        ("client search (htmx)", True, page("admin", f"/clinic/clients?q={search}", **{
            "HX-Request": "true", "HX-Trigger": "client-search"})),
        ("client page, typical", True, page("clinician", "/clinic/clients/{p.typical}")),
        ("client page, heavy", True, page("admin", "/clinic/clients/{p.heavy}")),
        ("GET /portal, typical", True, page("typical", "/portal")),
        ("GET /portal, heavy", True, page("heavy", "/portal")),
        ("POST /sign-in", True, sign_in_post()),
        ("reminder tick (10 due)", False, tick("reminder")),
        ("mail tick, idle", False, tick("mail_idle")),
        ("mail tick, busy (5 sign-ins)", False, tick("mail_busy")),
    ]


@dataclass
class Result:
    times: dict = field(default_factory=lambda: {"small": [], "big": []})
    statements: dict = field(default_factory=dict)


def measure(practices: dict, repeats: int, time_cap: float) -> dict[str, Result]:
    from practice.clock import local_date, utcnow
    peewee_log = logging.getLogger("peewee")
    results = {}
    for practice in practices.values():
        use(practice)
        with practice.app.app_context():
            from practice.models import Practice as PracticeRow, db
            with db.connection_context():
                practice.today = local_date(utcnow(), PracticeRow.current().timezone).isoformat()
    for name, _, (run, prepare) in scenarios():
        result = results[name] = Result()
        order = list(practices.values())
        # Once each with the query log counted (and warmed up): statements per request.
        for practice in order:
            use(practice)
            if prepare:
                prepare(practice)
            counter = StatementCount()
            peewee_log.addHandler(counter)
            level, propagate = peewee_log.level, peewee_log.propagate
            peewee_log.setLevel(logging.DEBUG)
            peewee_log.propagate = False  # counted, not printed
            try:
                counts = []
                for attempt in range(2):  # the fewer: a session is touched only now and then
                    if prepare and attempt:
                        prepare(practice)
                    counter.count = 0
                    run(practice)
                    counts.append(counter.count)
                counter.count = min(counts)
            finally:
                peewee_log.setLevel(level)
                peewee_log.propagate = propagate
                peewee_log.removeHandler(counter)
            result.statements[practice.name] = counter.count
        deadline = time.perf_counter() + time_cap
        for repeat in range(repeats):
            for practice in (order if repeat % 2 == 0 else order[::-1]):
                use(practice)
                if prepare:
                    prepare(practice)
                started = time.perf_counter()
                run(practice)
                result.times[practice.name].append(1000 * (time.perf_counter() - started))
            if time.perf_counter() > deadline:
                break
        print(f"  {name}: small {statistics.median(result.times['small']):.1f} ms, "
              f"big {statistics.median(result.times['big']):.1f} ms", flush=True)
    return results


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def report(results: dict[str, Result], args, loads, seeded: dict) -> bool:
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(f"{backend}, scale {args.scale:g}; {os.cpu_count()} CPUs; load average {loads[0]} before, "
          f"{loads[1]} after")
    print("seeded: " + "; ".join(f"{name} in {seconds:.0f} s" for name, seconds in seeded.items()))
    header = (f"{'request':<30}{'small p50':>10}{'p95':>8}{'big p50':>10}{'p95':>8}{'ratio':>7}"
              f"{'SQL small':>10}{'big':>5}  verdict")
    print(header)
    print("-" * len(header))
    met = True
    pages = {name: is_page for name, is_page, _ in scenarios()}
    for name, result in results.items():
        small, large = (statistics.median(result.times[k]) for k in ("small", "big"))
        ratio = large / small if small else float("inf")
        problems = []
        if ratio > AIM_RATIO:
            problems.append(f"ratio > {AIM_RATIO}")
        if pages[name] and large > AIM_PAGE_MS:
            problems.append(f"> {AIM_PAGE_MS:.0f} ms")
        if result.statements["big"] > result.statements["small"]:
            problems.append("more SQL")
        met &= not problems
        print(f"{name:<30}{small:>10.1f}{p95(result.times['small']):>8.1f}{large:>10.1f}"
              f"{p95(result.times['big']):>8.1f}{ratio:>7.2f}{result.statements['small']:>10}"
              f"{result.statements['big']:>5}  {'ok' if not problems else ', '.join(problems)}")
    print("-" * len(header))
    print(f"ms per request over {args.repeats} alternating runs (Flask's test client, in process); SQL: statements\n"
          "per request (peewee's query log). The small practice's typical and heavy client are one, with\n"
          "25 links and 12 upcoming appointments. Ticks: one reminder tick with 10 reminders due; one mail\n"
          "tick with nothing to do; one with 5 sign-in requests to answer (dev mailbox: no SMTP).")
    return met


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="the big practice's size (1 = the sizes above)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per request and practice")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres); "
                             "the benchmark creates and drops databases of its own there")
    parser.add_argument("--time-cap", type=float, default=120.0, help="seconds per request's timed runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (SQLite files)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="portico-bench-scale-"))
    databases = Databases(tmp, args.postgres)
    loads = [" / ".join(f"{x:.1f}" for x in os.getloadavg())]
    try:
        practices, seeded = {}, {}
        for name, size in (("small", SMALL), ("big", big(args.scale))):
            practice = Practice(name)
            started = time.perf_counter()
            practice.app, practice.database = make_app(databases.url(name))
            seed(practice, size, random.Random(17))
            seeded[name] = time.perf_counter() - started
            print(f"seeded the {name} practice in {seeded[name]:.1f} s", flush=True)
            practices[name] = practice
        results = measure(practices, args.repeats, args.time_cap)
        loads.append(" / ".join(f"{x:.1f}" for x in os.getloadavg()))
        return 0 if report(results, args, loads, seeded) else 1
    finally:
        for practice in practices.values() if "practices" in locals() else ():
            use(practice)
            release_database()
        databases.cleanup()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
