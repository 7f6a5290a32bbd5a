"""Reminder benchmark: the scheduler's reminder and mail ticks against plain smtplib, and the
reminder tick's cost over a small and a large calendar.

    .venv/bin/python bench/reminders.py [--reminders 5000] [--postgres URL]

What it does, in order:

1. Starts an aiosmtpd server in a process of its own (a sink that counts what it accepts),
   so that the SMTP server does not share this process's interpreter lock.
2. Dispatch: on a fresh database, bulk-inserts `--reminders` appointments whose reminder
   is due (one per appointment; half telehealth, half in person), then runs the real
   `jobs.reminder_tick` until nothing is due (it queues each reminder's mail in the outbox)
   and the real `jobs.mail_tick` until the outbox is empty (it sends over SMTP, claiming 20
   messages at a time). Then it sends the very same messages (rebuilt from the outbox rows,
   before the clock starts) with plain smtplib over one connection. Then the same dispatch
   again on a fresh database, as the scheduler runs it: the real scheduler's mail job, woken
   by each chunk the reminder ticks queue, sends while the next chunk is composed. Prints
   the rates and their ratios (aims, for the dispatch as the scheduler runs it: 0.4 of plain
   smtplib's rate on SQLite, 0.3 on PostgreSQL).
3. Tick cost: two fresh databases with `--small` and `--large` future appointments (each
   with its 72 h and 24 h reminders pending, rows bulk-inserted in chunks inside one
   transaction) and the same `--due` reminders due now. Times one reminder tick over each
   (the median of `--repeats`, resetting the same reminders to due in between, untimed) and
   an idle tick (nothing due); prints the large/small ratio (aim: under 1.5).

SQLite in a temporary directory by default; `--postgres URL` runs the same on a PostgreSQL
database of its own, created on that server and dropped at the end. Every phase is bounded
by `--time-cap` seconds. `--profile` runs the dispatch under cProfile and prints where the
time goes (its timings are then not figures).
"""
from __future__ import annotations

import argparse
import email
import multiprocessing
import os
import random
import secrets
import shutil
import smtplib
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-secret-key-not-for-production-" + "0" * 32
SENDER = "portal@example.org"
# Portal messages/s over plain smtplib's, for the dispatch as the scheduler runs it (issue 17's
# aims: PostgreSQL's round trips cost more per message than SQLite's in-process writes).
AIM_DISPATCH = {"SQLite": 0.4, "PostgreSQL": 0.3}
BASELINE_RUNS = 3
AIM_TICK = 1.5  # large-calendar tick time over small-calendar tick time
CHUNK = 500  # rows per INSERT


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the SMTP server, in its own process ----------------------------------------------------

def _smtp_sink(port: int, ready, accepted) -> None:
    """aiosmtpd accepting everything and counting it; runs until terminated."""
    import threading
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            with accepted.get_lock():
                accepted.value += 1
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    threading.Event().wait()


class SmtpSink:
    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.accepted = context.Value("l", 0)
        ready = context.Event()
        self.process = context.Process(target=_smtp_sink, args=(self.port, ready, self.accepted), daemon=True)
        self.process.start()
        if not ready.wait(30):
            self.stop()
            raise BenchError("the SMTP server did not start")

    @property
    def count(self) -> int:
        return self.accepted.value

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)


# ---- databases -------------------------------------------------------------------------------

class Databases:
    """Fresh databases by name: SQLite files in a temporary directory, or PostgreSQL
    databases of this run's own (dropped by cleanup())."""

    def __init__(self, tmp: Path, postgres_url: str | None):
        self.tmp, self.postgres_url, self.created = tmp, postgres_url, []

    def url(self, name: str) -> str:
        if not self.postgres_url:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        import psycopg2
        database = f"portico_bench_{os.getpid()}_{name}"
        admin = psycopg2.connect(self.postgres_url)
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
            cursor.execute(f"CREATE DATABASE {database}")
        admin.close()
        self.created.append(database)
        return self.postgres_url.rsplit("/", 1)[0] + "/" + database

    def cleanup(self) -> None:
        release_database()
        if not self.created:
            return
        import psycopg2
        admin = psycopg2.connect(self.postgres_url)
        admin.autocommit = True
        with admin.cursor() as cursor:
            for database in self.created:
                cursor.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()


def release_database() -> None:
    from practice.models import db
    if db.obj is None:
        return
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    elif not db.is_closed():
        db.close()


def make_app(database_url: str, smtp_port: int):
    from portal import create_app
    release_database()
    return create_app({
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET_KEY,
        "PORTAL_BASE_URL": "https://portal.example.org",
        "PORTAL_SCHEDULER": "off",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_port,
        "MAIL_DEFAULT_SENDER": SENDER,
        "MAIL_TIMEOUT": 30,
    })


def bulk_insert(model, fields: list, rows: list[tuple]) -> None:
    """Insert many rows in chunks through the driver's executemany: peewee's insert_many
    builds SQL text for every value, which made 600,000 rows take over a minute here."""
    from practice.models import db, is_sqlite
    insert = f'INSERT INTO "{model._meta.table_name}" ({", ".join(f.column_name for f in fields)}) VALUES '
    cursor = db.cursor()
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        if is_sqlite():
            cursor.executemany(insert + f'({", ".join("?" * len(fields))})', chunk)
        else:
            from psycopg2.extras import execute_values  # one multi-row INSERT per chunk
            execute_values(cursor, insert + "%s", chunk, page_size=CHUNK)


def seed(app, appointments: int, due: int, *, clients: int, offsets=(72, 24)) -> list[int]:
    """`appointments` future appointments, 20 minutes apart from four days ahead on, each with
    a pending reminder per offset, due at start - offset; then `due` of them (spread over the
    table) have their last reminder due a minute ago. Bulk inserts in one transaction.
    Returns the ids of the due reminders."""
    from practice.clinicians import create_clinician
    from practice.clock import utcnow
    from practice.models import Appointment, Client, Reminder, db
    now = utcnow()
    stamp = str(now)  # 'YYYY-MM-DD HH:MM:SS', as the DateTimeFields store it
    with app.app_context():
        clinician = create_clinician("clinician@example.org", "Dana Hale", "bench password 1234", is_admin=True)
        with db.atomic():
            bulk_insert(Client, [Client.email, Client.name, Client.phone, Client.language, Client.created_at],
                        [(f"client{n}@example.org", f"Client {n}", "", "en", stamp) for n in range(clients)])
            client_ids = [row[0] for row in Client.select(Client.id).order_by(Client.id).tuples()]
            first = now.replace(minute=0, second=0) + timedelta(days=4)
            starts = [first + timedelta(minutes=20 * n) for n in range(appointments)]
            bulk_insert(Appointment, [Appointment.clinician, Appointment.client, Appointment.starts_at,
                                      Appointment.ends_at, Appointment.kind, Appointment.status, Appointment.nonce,
                                      Appointment.sequence, Appointment.created_at, Appointment.updated_at],
                        [(clinician.id, client_ids[n % clients], str(begins), str(begins + timedelta(minutes=50)),
                          "telehealth" if n % 2 else "in_person", "scheduled", secrets.token_hex(16), 0, stamp, stamp)
                         for n, begins in enumerate(starts)])
            appointment_ids = [row[0] for row in Appointment.select(Appointment.id).order_by(Appointment.id).tuples()]
            assert len(appointment_ids) == appointments  # a fresh table: ids in insertion order
            bulk_insert(Reminder, [Reminder.appointment, Reminder.offset_hours, Reminder.due_at, Reminder.status,
                                   Reminder.created_at],
                        [(appointment_id, offset, str(begins - timedelta(hours=offset)), "pending", stamp)
                         for appointment_id, begins in zip(appointment_ids, starts) for offset in offsets])
            last = Reminder.select(Reminder.id).where(Reminder.offset_hours == offsets[-1]).order_by(Reminder.id)
            ids = [row[0] for row in last.tuples()]
            chosen = sorted(random.Random(4).sample(ids, due))
            for start in range(0, len(chosen), CHUNK):
                Reminder.update(due_at=now - timedelta(minutes=1)).where(
                    Reminder.id.in_(chosen[start:start + CHUNK])).execute()
        db.execute_sql("ANALYZE")  # as a long-lived database would have statistics
    release_database()
    return chosen


# ---- 1. dispatch: ticks against plain smtplib ------------------------------------------------

@dataclass
class Phase:
    name: str
    messages: int
    wall: float
    cpu: float  # this process's CPU seconds (the SMTP server's are not counted)

    @property
    def rate(self) -> float:
        return self.messages / self.wall if self.wall else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.messages if self.messages else float("nan")


def timed(name: str, work) -> tuple[Phase, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return Phase(name, 0, time.perf_counter() - wall, time.process_time() - cpu), result


def run_ticks(job, app, expected: int, deadline: float) -> int:
    """Call a tick until it reports no more work, the expected count is reached, or time is up."""
    done = 0
    while done < expected and time.perf_counter() < deadline:
        with app.app_context():  # the tick works with this app's runtime, as the scheduler runs it
            step = job()
        if not step:
            break
        done += step
    return done


def dispatch(args, databases: Databases, smtp: SmtpSink, profiler=None) -> dict[str, Phase]:
    from flask_mail import sanitize_address

    from practice import jobs
    from portico.mailer import as_message
    from practice.models import Email

    url = databases.url("dispatch")
    app = make_app(url, smtp.port)
    started = time.perf_counter()
    seed(app, args.reminders, args.reminders, clients=max(1, args.reminders // 10), offsets=(24,))
    print(f"dispatch: seeded {args.reminders} due reminders in {time.perf_counter() - started:.1f}s", flush=True)
    app = make_app(url, smtp.port)
    deadline = time.perf_counter() + args.time_cap
    before = smtp.count

    if profiler:
        profiler.enable()
    queue, queued = timed("reminder tick", lambda: run_ticks(jobs.reminder_tick, app, args.reminders, deadline))
    send, sent = timed("mail tick", lambda: run_ticks(jobs.mail_tick, app, args.reminders, deadline))
    if profiler:
        profiler.disable()
    queue.messages, send.messages = queued, sent
    arrived = smtp.count - before
    if not (queued == sent == arrived == args.reminders):
        raise BenchError(f"dispatch incomplete: {queued} queued, {sent} sent, {arrived} arrived "
                         f"of {args.reminders} (time cap {args.time_cap:g}s)")
    both = Phase("dispatch (both ticks)", sent, queue.wall + send.wall, queue.cpu + send.cpu)

    # The same messages, as the mail tick built them (their bodies are kept: no reminder here
    # carries a one-time link), sent with plain smtplib over one connection: first as the
    # finished bytes, then as message objects that smtplib serializes itself (send_message).
    with app.app_context():
        rows = list(Email.select().order_by(Email.id))
        if any(row.link_id for row in rows):
            raise BenchError("a reminder carried a one-time link: its body was scrubbed after sending")
        envelopes = [(sanitize_address(SENDER), [row.to_addr], as_message(row, SENDER).as_bytes()) for row in rows]
        objects = [email.message_from_bytes(data) for _, _, data in envelopes]
    release_database()

    def over_one_connection(send_one, items):
        def run():
            with smtplib.SMTP("127.0.0.1", smtp.port, timeout=30) as connection:
                for item in items:
                    send_one(connection, item)
            return len(items)
        return run

    # The baseline is the fastest of BASELINE_RUNS: the same run's plain smtplib took from 2.0 to
    # 3.5 s for 1,000 messages on this machine (the SMTP server's process answering slower or
    # faster), and a slow baseline flattered every ratio.
    baselines = {}
    for key, name, send_one, items, runs in (
            ("baseline", "plain smtplib, finished bytes", lambda c, e: c.sendmail(*e), envelopes, BASELINE_RUNS),
            ("send_message", "plain smtplib, send_message", lambda c, m: c.send_message(m), objects, 1)):
        for _ in range(runs):
            before = smtp.count
            phase, count = timed(name, over_one_connection(send_one, items))
            phase.messages = count
            if smtp.count - before != count:
                raise BenchError(f"{name}: {smtp.count - before} of {count} arrived")
            if key not in baselines or phase.wall < baselines[key].wall:
                baselines[key] = phase
    size = sum(len(raw) for _, _, raw in envelopes) / max(1, len(envelopes))
    print(f"dispatch: measured ({size / 1024:.1f} KiB per message)", flush=True)
    return {"queue": queue, "send": send, "both": both, **baselines}


def scheduled_dispatch(args, databases: Databases, smtp: SmtpSink) -> Phase:
    """The same dispatch as the scheduler runs it: reminder ticks back to back (as the reminder
    job takes a backlog), each chunk of queued mail waking the mail job, which sends it on a
    thread of the scheduler's own while the next chunk is composed. Timed from the first tick
    until the SMTP server has taken the last message."""
    from portico import scheduler

    url = databases.url("scheduled")
    app = make_app(url, smtp.port)
    seed(app, args.reminders, args.reminders, clients=max(1, args.reminders // 10), offsets=(24,))
    app = make_app(url, smtp.port)
    running = scheduler.start_scheduler(app, paused=True)
    try:
        for job_id in ("reminders", "retention"):  # this thread runs the reminder job; nothing else runs
            running.pause_job(job_id)
        reminder_job = running.get_job("reminders").func  # what the scheduler calls: its app context included
        before = smtp.count
        running.resume()
        deadline = time.perf_counter() + args.time_cap

        def dispatch_all() -> int:
            with app.app_context():
                while _pending_reminders() and time.perf_counter() < deadline:
                    reminder_job()
            while smtp.count - before < args.reminders and time.perf_counter() < deadline:
                time.sleep(0.005)
            return smtp.count - before

        phase, arrived = timed("dispatch (scheduler, mail woken)", dispatch_all)
    finally:
        scheduler.stop_scheduler(wait=True)  # the mail job's last claim ends before its database goes
        release_database()
    phase.messages = arrived
    if arrived != args.reminders:
        raise BenchError(f"scheduled dispatch incomplete: {arrived} of {args.reminders} arrived "
                         f"(time cap {args.time_cap:g}s)")
    return phase


def _pending_reminders() -> bool:
    from practice.models import Reminder, db
    with db.connection_context():
        return Reminder.select().where(Reminder.status == "pending").exists()


# ---- 1b. sign-in mail: the mail job turning requests into links and sending them -------------

def sign_in_mail(args, databases: Databases, smtp: SmtpSink, profiler=None) -> Phase:
    """`--sign-ins` clients each ask for a link at once (rows as POST /sign-in writes them);
    the mail job issues each link, composes its email and sends it. CPU per email is the figure."""
    from practice import jobs
    from practice.clock import utcnow
    from practice.models import Client, SignInRequest, db

    url = databases.url("signin")
    app = make_app(url, smtp.port)
    stamp = str(utcnow())
    with app.app_context(), db.atomic():
        bulk_insert(Client, [Client.email, Client.name, Client.phone, Client.language, Client.created_at],
                    [(f"client{n}@example.org", f"Client {n}", "", "en", stamp) for n in range(args.sign_ins)])
        bulk_insert(SignInRequest, [SignInRequest.email, SignInRequest.requested_at, SignInRequest.ip],
                    [(f"client{n}@example.org", stamp, "127.0.0.1") for n in range(args.sign_ins)])
    release_database()
    app = make_app(url, smtp.port)
    before = smtp.count
    if profiler:
        profiler.enable()
    phase, sent = timed("sign-in mail (mail tick)", lambda: run_ticks(
        jobs.mail_tick, app, args.sign_ins, time.perf_counter() + args.time_cap))
    if profiler:
        profiler.disable()
    phase.messages = sent
    if sent != args.sign_ins or smtp.count - before != sent:
        raise BenchError(f"sign-in mail incomplete: {sent} sent, {smtp.count - before} arrived of {args.sign_ins}")
    release_database()
    return phase


# ---- 2. one tick over a small and a large calendar -------------------------------------------

@dataclass
class TickResult:
    appointments: int
    due: int
    times: list[float]  # one reminder tick with `due` reminders due, per repeat
    cpu: list[float]  # this process's CPU seconds in that tick
    idle: list[float]  # one reminder tick with nothing due

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    @property
    def idle_median(self) -> float:
        return statistics.median(self.idle)


def tick_cost(args, databases: Databases, smtp: SmtpSink, appointments: int) -> TickResult:
    from practice import jobs
    from practice.models import Email, Reminder, db

    url = databases.url(f"calendar{appointments}")
    app = make_app(url, smtp.port)
    started = time.perf_counter()
    chosen = seed(app, appointments, args.due, clients=max(1, min(appointments // 20, 5000)))
    print(f"tick: seeded {appointments} appointments ({2 * appointments} reminders, {args.due} due) "
          f"in {time.perf_counter() - started:.1f}s", flush=True)
    app = make_app(url, smtp.port)
    deadline = time.perf_counter() + args.time_cap
    times, cpu, idle = [], [], []
    with app.app_context():
        due_at = Reminder.get_by_id(chosen[0]).due_at
    for _ in range(args.repeats):
        if time.perf_counter() > deadline:
            break
        wall, started_cpu = time.perf_counter(), time.process_time()
        queued = jobs.reminder_tick()
        times.append(time.perf_counter() - wall)
        cpu.append(time.process_time() - started_cpu)
        if queued != args.due:
            raise BenchError(f"the tick queued {queued} reminders, not {args.due}")
        wall = time.perf_counter()
        if jobs.reminder_tick() != 0:
            raise BenchError("an idle tick found work")
        idle.append(time.perf_counter() - wall)
        # Untimed: the same reminders due again, their mail gone.
        with app.app_context(), db.connection_context():
            with db.atomic():
                emails = [r.email_id for r in Reminder.select(Reminder.email).where(Reminder.id.in_(chosen))]
                Reminder.update(status="pending", email=None, done_at=None, due_at=due_at).where(
                    Reminder.id.in_(chosen)).execute()
                Email.delete().where(Email.id.in_(emails)).execute()
    release_database()
    return TickResult(appointments, args.due, times, cpu, idle)


# ---- the report ------------------------------------------------------------------------------

def print_table(phases: dict[str, Phase] | None, ticks: tuple[TickResult, TickResult] | None, args,
                loads) -> bool:
    met = True
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print()
    print(f"{backend}; aiosmtpd in its own process; {os.cpu_count()} CPUs, load average {loads[0]:.1f} "
          f"before, {loads[1]:.1f} after")
    if phases:
        header = f"{'dispatch of %d reminders' % args.reminders:<34}{'msgs':>6}{'seconds':>9}{'msg/s':>9}" \
                 f"{'cpu ms':>8}{'ratio':>7}{'aim':>6}  verdict"
        print(header)
        print("-" * len(header))
        base = phases["baseline"]

        def row(phase: Phase, ratio: str = "", aim: str = "", verdict: str = ""):
            print(f"{phase.name:<34}{phase.messages:>6}{phase.wall:>9.2f}{phase.rate:>9.1f}"
                  f"{phase.cpu_ms:>8.2f}{ratio:>7}{aim:>6}  {verdict}")

        objects = phases["send_message"]
        row(base, "1.00")
        row(objects, f"{objects.rate / base.rate:.2f}")
        row(phases["queue"], f"{phases['queue'].rate / base.rate:.2f}")
        row(phases["send"], f"{phases['send'].rate / base.rate:.2f}", "",
            f"({phases['send'].rate / objects.rate:.2f} of send_message's)")
        both = phases["both"]
        row(both, f"{both.rate / base.rate:.2f}", "", f"(cpu ratio {base.cpu_ms / both.cpu_ms:.2f}; "
                                                      f"{both.rate / objects.rate:.2f} of send_message's)")
        if "scheduled" in phases:
            scheduled, aim = phases["scheduled"], AIM_DISPATCH[backend]
            ratio = scheduled.rate / base.rate
            ok = ratio >= aim
            met &= ok
            row(scheduled, f"{ratio:.2f}", f"{aim:.2f}", ("meets aim" if ok else "MISSES aim")
                + f" (cpu ratio {base.cpu_ms / scheduled.cpu_ms:.2f})")
        print("-" * len(header))
        print("ratio: messages/s over plain smtplib's (the fastest of its runs) sending the same messages\n"
              "as finished bytes over one connection (send_message: smtplib serializes the same message\n"
              "objects itself). reminder tick: claim, compose (templates, .ics, join link), queue in the\n"
              "outbox; mail tick: claim from the outbox (20 at a time), write the MIME, send over one\n"
              "connection, record each. dispatch (both ticks): one after the other; (scheduler, mail\n"
              "woken): as the scheduler runs them, the mail job sending each chunk the reminder tick\n"
              "queues while it composes the next. cpu ms: this process's CPU per message, all its\n"
              "threads (the SMTP server's is not counted); cpu ratio = smtplib's / the dispatch's.")
        print()
    if ticks:
        small, large = ticks
        header = f"{'one reminder tick':<34}{'appts':>8}{'due':>5}{'tick ms':>9}{'cpu ms':>8}{'idle ms':>9}" \
                 f"{'ratio':>7}{'aim':>6}  verdict"
        print(header)
        print("-" * len(header))
        ratio = large.median / small.median
        ok = ratio < AIM_TICK
        met &= ok
        for result, extra in ((small, f"{'1.00':>7}"),
                              (large, f"{ratio:>7.2f}{AIM_TICK:>6.2f}  " + ("meets aim" if ok else "MISSES aim")
                               + f" (cpu ratio {large.cpu_median / small.cpu_median:.2f}, idle ratio "
                               f"{large.idle_median / small.idle_median:.2f})")):
            print(f"{'calendar of %d appointments' % result.appointments:<34}{result.appointments:>8}"
                  f"{result.due:>5}{1000 * result.median:>9.1f}{1000 * result.cpu_median:>8.1f}"
                  f"{1000 * result.idle_median:>9.2f}{extra}")
        print("-" * len(header))
        print(f"tick ms: median of {len(large.times)} ticks, each queueing the mail of {large.due} due reminders\n"
              "(cpu ms: this process's CPU in it); idle ms: a tick with nothing due (the claim query\n"
              "alone). ratio: large calendar's tick ms over the small one's.")
        print("runs (tick ms): " + "; ".join(
            f"{r.appointments}: " + "/".join(f"{1000 * t:.0f}" for t in r.times) for r in ticks))
    return met


def profile_report(profiler, top: int) -> None:
    import pstats
    stats = pstats.Stats(profiler)
    print(f"\n==== dispatch under cProfile: {stats.total_tt:.2f}s ====")
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=5000, help="due reminders to dispatch")
    parser.add_argument("--small", type=int, default=2000, help="appointments in the small calendar")
    parser.add_argument("--large", type=int, default=200_000, help="appointments in the large calendar")
    parser.add_argument("--due", type=int, default=100, help="reminders due in each calendar")
    parser.add_argument("--repeats", type=int, default=5, help="ticks timed per calendar (the median counts)")
    parser.add_argument("--sign-ins", type=int, default=1000, help="sign-in requests the mail job answers")
    parser.add_argument("--only", choices=["dispatch", "signin", "tick"], help="run one part only")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres); "
                             "the benchmark creates and drops databases of its own there")
    parser.add_argument("--time-cap", type=float, default=300.0, help="seconds per measured phase")
    parser.add_argument("--profile", action="store_true",
                        help="profile the dispatch with cProfile and print where the time goes")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    import logging
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="portico-bench-reminders-"))
    databases = Databases(tmp, args.postgres)
    load_before = os.getloadavg()[0]
    smtp = None
    try:
        smtp = SmtpSink()
        profiler = None
        if args.profile:
            import cProfile
            profiler = cProfile.Profile()
        phases = ticks = None
        if args.only in (None, "dispatch"):
            phases = dispatch(args, databases, smtp, profiler)
            if not profiler:
                phases["scheduled"] = scheduled_dispatch(args, databases, smtp)
        if args.only in (None, "signin"):
            signed = sign_in_mail(args, databases, smtp, profiler)
            print(f"sign-in mail: {signed.messages} emails in {signed.wall:.2f}s, {signed.rate:.1f} msg/s, "
                  f"{signed.cpu_ms:.2f} ms CPU per email (requests turned into links, composed and sent)", flush=True)
        if profiler:
            profile_report(profiler, args.profile_top)
        if args.only in (None, "tick") and not args.profile:
            ticks = (tick_cost(args, databases, smtp, args.small), tick_cost(args, databases, smtp, args.large))
        met = print_table(phases, ticks, args, (load_before, os.getloadavg()[0]))
        return 0 if met else 1
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        if smtp:
            smtp.stop()
        databases.cleanup()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
