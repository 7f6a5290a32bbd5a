"""Load benchmark: the portal as deployed (gunicorn.conf.py, 2 gthread workers, PostgreSQL)
under a mixed load, against the bare Flask app measured the same way in the same run.

    cd /work/main && /tmp/venv/bin/python bench/load.py [--requests 2000] [--concurrency 4]

What it does, in order:

1. Creates a PostgreSQL database of its own (dropped at the end) and seeds it: a clinician;
   clients who will be signed in, each with a telehealth appointment whose join window is
   open now; and clients with one live sign-in link each, to be redeemed.
2. Starts the bare app (bench/bare.py) with the repo's gunicorn.conf.py and 2 workers, sends
   the same sequence of requests as step 4 (GET / for each GET, POST / with a form of the
   same shape for each POST), stops it.
3. Starts the portal (bench/_app.py: the real create_app() with the per-IP limits raised so
   that one loopback client is not throttled) with the same command, and prepares, unmeasured,
   what browsers would already have: a CSRF cookie and token per sign-in browser, the opened
   page of every link to redeem, and signed-in sessions (by redeeming links).
4. Sends a shuffled mix, bounded by a request count and a time cap: sign-in requests
   (POST /sign-in), redemptions (POST /s/<token>, 303 to /portal with a session cookie),
   portal pages (GET /portal) and join-page polls (GET /t/<token> as the page's htmx poll
   sends it, answered with the open window's fragment).
5. Prints requests/s of each mix, p50 and p99 latency per kind and overall, the error count
   (must be 0: the exit status is 1 otherwise), the workers' CPU per request, and the
   portal's requests/s as a ratio to the bare app's.

Rate limits are counted in Redis when it answers on 127.0.0.1:6379, as a deployment with
several processes would (--ratelimit-storage to choose). No worker process runs: sign-in
requests only write rows, as they do in a web process.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.signin import (CSRF_COOKIE, SECRET_KEY, SESSION_COOKIE, BenchError, Result, Server,  # noqa: E402
                          build_request, csrf_pair, free_port, in_threads, send)

PG_ADMIN_URL = os.environ.get("PORTICO_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MIX = {"POST /sign-in": 0.15, "POST /s/<token>": 0.15, "GET /portal": 0.30, "GET /t/<token> poll": 0.40}
POLL_HEADERS = b"\r\nHX-Request: true\r\nHX-Trigger: join-status\r\nHX-Target: join-status\r\n\r\n"


class LoadServer(Server):
    """Server's lifecycle and CPU accounting, started the way docs/operations.md deploys Portico."""

    def __init__(self, label: str, app_spec: str, env: dict, args, logdir: Path):
        self.label = label
        self.port = free_port()
        self.log = logdir / f"gunicorn-{label}.log"
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                   "--bind", f"127.0.0.1:{self.port}", "--workers", str(args.workers),
                   "--error-logfile", str(self.log), "--graceful-timeout", "5", app_spec]
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        Server.running.append(self)


# ---- the database ------------------------------------------------------------------------

def create_database(name: str) -> str:
    import psycopg2
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        cursor.execute(f"CREATE DATABASE {name}")
    admin.close()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def drop_database(name: str) -> None:
    import psycopg2
    admin = psycopg2.connect(PG_ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def seed(database_url: str, signed_in: int, to_redeem: int) -> dict:
    """Clients to sign in (each with a telehealth appointment open now) and clients with a
    live link to redeem; returns their tokens."""
    from portal import create_app
    from practice.appointments import create_appointment
    from practice.clients import add_client
    from practice.clinicians import create_clinician
    from practice.clock import utcnow
    from practice.links import issue_link
    from practice.models import db
    from practice.telehealth import telehealth_token

    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY, "PORTAL_SCHEDULER": "off"})
    key = SECRET_KEY.encode()
    now = utcnow().replace(microsecond=0)
    seeded = {"session_links": [], "join_tokens": [], "links": [], "emails": []}
    with app.app_context(), db.connection_context(), db.atomic():
        clinician = create_clinician("bench-clinician@example.com", "Bench Clinician", "bench-password-" + "x" * 12)
        for i in range(signed_in):
            client = add_client(f"session{i}@example.com", f"Session Client {i}")
            seeded["session_links"].append(issue_link(client, "client_request").token)
            start = now - timedelta(minutes=10) + timedelta(minutes=i)  # no two at once for one clinician
            appointment = create_appointment(clinician=clinician, client=client, starts_at=start,
                                             ends_at=start + timedelta(minutes=50))
            seeded["join_tokens"].append(telehealth_token(appointment, SECRET_KEY))
        for i in range(to_redeem):
            client = add_client(f"bench{i}@example.com", f"Bench Client {i}")
            seeded["links"].append(issue_link(client, "client_request").token)
            seeded["emails"].append(client.email)
    db.obj.close_all()
    return seeded


# ---- the mix -----------------------------------------------------------------------------

def plan(total: int, rng: random.Random) -> list[str]:
    """`total` request kinds in MIX's proportions, shuffled."""
    kinds = []
    for kind, share in MIX.items():
        kinds += [kind] * round(total * share)
    kinds = kinds[:total]
    rng.shuffle(kinds)
    return kinds


def check_for(kind: str):
    def check(reply) -> str | None:
        if kind == "POST /s/<token>":
            if reply.status != 303 or not (reply.header("location") or "").endswith("/portal"):
                return f"status {reply.status}, Location {reply.header('location')!r}"
            return None if SESSION_COOKIE in reply.cookies() else "no session cookie"
        if reply.status != 200:
            return f"status {reply.status}: {reply.body[:120]!r}"
        if kind == "GET /portal" and b"Hello, Session Client" not in reply.body:
            return "not the signed-in portal page"
        if kind == "GET /t/<token> poll" and (b'data-state="open"' not in reply.body or b"<html" in reply.body):
            return "not the open join-status fragment"
        return None
    return check


def portal_requests(port: int, kinds: list[str], seeded: dict, concurrency: int) -> list[bytes]:
    """The measured requests, built from what the browsers already hold (prepared here)."""
    links = seeded["links"][:kinds.count("POST /s/<token>")]
    opened = in_threads(links, lambda token: csrf_pair(port, f"/s/{token}"), concurrency)
    presses = iter(build_request(port, "POST", f"/s/{token}", cookies=cookies, form={"csrf_token": csrf})
                   for token, (cookies, csrf) in zip(links, opened))

    def sign_in_session(token: str) -> dict:
        cookies, csrf = csrf_pair(port, f"/s/{token}")
        reply = send(port, build_request(port, "POST", f"/s/{token}", cookies=cookies, form={"csrf_token": csrf}))
        if reply.status != 303 or SESSION_COOKIE not in reply.cookies():
            raise BenchError(f"could not sign a session in: status {reply.status}")
        return {SESSION_COOKIE: reply.cookies()[SESSION_COOKIE]}

    sessions = in_threads(seeded["session_links"], sign_in_session, concurrency)
    browsers = in_threads([None] * concurrency, lambda _: csrf_pair(port, "/sign-in"), concurrency)
    raws, counters = [], {kind: 0 for kind in MIX}
    for kind in kinds:
        n = counters[kind]
        counters[kind] += 1
        if kind == "POST /sign-in":
            cookies, token = browsers[n % len(browsers)]
            email = seeded["emails"][n % len(seeded["emails"])]
            raws.append(build_request(port, "POST", "/sign-in", cookies=cookies,
                                      form={"email": email, "csrf_token": token}))
        elif kind == "POST /s/<token>":
            raws.append(next(presses))
        elif kind == "GET /portal":
            raws.append(build_request(port, "GET", "/portal", cookies=sessions[n % len(sessions)]))
        else:
            token = seeded["join_tokens"][n % len(seeded["join_tokens"])]
            raws.append(build_request(port, "GET", f"/t/{token}").replace(b"\r\n\r\n", POLL_HEADERS, 1))
    return raws


def bare_requests(port: int, kinds: list[str]) -> list[bytes]:
    get = build_request(port, "GET", "/")
    post = build_request(port, "POST", "/", form={"email": "bench0@example.com", "csrf_token": "x" * 91},
                         cookies={CSRF_COOKIE: "y" * 120})
    return [get if kind.startswith("GET") else post for kind in kinds]


def run_mix(label: str, server: Server, kinds: list[str], raws: list[bytes], checks: dict, args) -> dict:
    """Send the mix; one Result per kind plus the whole mix under `label`."""
    cpu_before = server.worker_cpu()
    started = time.perf_counter()
    replies = in_threads(raws, lambda raw: send(server.port, raw), args.concurrency,
                         deadline=started + args.time_cap)
    wall = time.perf_counter() - started
    cpu = server.worker_cpu() - cpu_before
    results = {kind: Result(kind, kinds.count(kind)) for kind in MIX}
    whole = Result(label, len(kinds))
    whole.wall, whole.cpu = wall, cpu
    for kind, reply in zip(kinds, replies):
        result = results[kind]
        if reply is None:
            result.capped = whole.capped = True
            continue
        problem = checks[kind](reply)
        if problem:
            for each in (result, whole):
                each.errors += 1
                each.error_sample = each.error_sample or problem
        else:
            result.latencies.append(reply.seconds)
            whole.latencies.append(reply.seconds)
    results[label] = whole
    return results


# ---- the report --------------------------------------------------------------------------

def print_report(bare: dict, portal: dict, args, storage: str, loads: tuple[float, float]) -> bool:
    whole_bare, whole_portal = bare["bare mix"], portal["portal mix"]
    ratio = whole_portal.rps / whole_bare.rps if whole_bare.rps else 0.0
    header = f"{'requests':<22}{'ok':>6}{'err':>5}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'cpu ms':>8}{'ratio':>7}"
    print()
    print(f"gunicorn -c gunicorn.conf.py, {args.workers} gthread workers, for both apps; portal on PostgreSQL, "
          f"rate limits in {storage}; client {args.concurrency} threads on loopback, {args.requests} requests "
          f"(cap {args.time_cap:g}s); {os.cpu_count()} CPUs, load average {loads[0]:.1f} before, {loads[1]:.1f} after")
    print(header)
    print("-" * len(header))

    def row(result: Result, rate: bool = False, cpu: bool = False, ratio_text: str = ""):
        rps = f"{result.rps:8.1f}" if rate else f"{'':8}"
        cpu_ms = f"{result.cpu_ms:8.2f}" if cpu else f"{'':8}"
        print(f"{result.name:<22}{result.done:>6}{result.errors:>5}{rps}{result.percentile(50):>8.2f}"
              f"{result.percentile(99):>8.2f}{cpu_ms}{ratio_text:>7}")

    row(whole_bare, rate=True, cpu=True, ratio_text="1.00")
    row(whole_portal, rate=True, cpu=True, ratio_text=f"{ratio:.2f}")
    for kind in MIX:
        row(portal[kind])
    print("-" * len(header))
    errors = whole_portal.errors + whole_bare.errors
    capped = whole_portal.capped or whole_bare.capped
    print(f"throughput {whole_portal.rps:.1f} req/s = {ratio:.2f} x the bare app's {whole_bare.rps:.1f}; "
          f"errors {errors}" + ("; TIME CAP HIT" if capped else ""))
    print("req/s: the whole mix over its wall time. Latency covers connect, send and the whole reply; only\n"
          "expected replies count (200 with the right page or fragment; 303 to /portal with a session\n"
          "cookie for a redemption). cpu ms: the gunicorn workers' CPU per request.")
    for result in [*bare.values(), *portal.values()]:
        if result.error_sample and result.name not in ("bare mix", "portal mix"):
            print(f"  {result.name}: first error: {result.error_sample}")
    if whole_bare.error_sample:
        print(f"  bare mix: first error: {whole_bare.error_sample}")
    return errors == 0 and not capped


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def forget_redis_keys(url: str, prefix: str) -> None:
    try:
        import redis
        connection = redis.Redis.from_url(url)
        for key in connection.scan_iter(f"*{prefix}*"):
            connection.delete(key)
        connection.close()
    except Exception as error:  # noqa: BLE001 - leftovers expire by themselves within the hour
        print(f"(could not clear the rate-limit keys: {error})", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests in each mix")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds each measured mix may take")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=8, help="signed-in clients (each with an open telehealth window)")
    parser.add_argument("--ratelimit-storage", default=None,
                        help="RATELIMIT_STORAGE_URI (default: Redis on 127.0.0.1:6379 if it answers, else memory://)")
    parser.add_argument("--seed", type=int, default=7, help="shuffles the mix")
    args = parser.parse_args(argv)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    storage = args.ratelimit_storage or ("redis://127.0.0.1:6379/0" if redis_answers() else "memory://")
    name = f"portico_bench_{os.getpid()}"
    prefix = f"portico-bench-{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix="portico-load-"))
    kinds = plan(args.requests, random.Random(args.seed))
    load_before = os.getloadavg()[0]
    try:
        started = time.perf_counter()
        database_url = create_database(name)
        seeded = seed(database_url, args.sessions, kinds.count("POST /s/<token>"))
        print(f"seeded {args.sessions} signed-in clients and {len(seeded['links'])} links in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "PORTAL_", "RATELIMIT_"))}
        env.update(DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY, PORTAL_SCHEDULER="off",
                   PORTAL_BASE_URL="http://127.0.0.1:5000", RATELIMIT_STORAGE_URI=storage,
                   RATELIMIT_KEY_PREFIX=prefix, PYTHONDONTWRITEBYTECODE="1")

        server = LoadServer("bare", "bench.bare:create_bare_app()", env, args, tmp)
        try:
            server.wait_ready("/")
            bare = run_mix("bare mix", server, kinds, bare_requests(server.port, kinds),
                           {kind: lambda reply: None if reply.status == 200 else f"status {reply.status}"
                            for kind in MIX}, args)
        finally:
            server.stop()
        print("bare app measured", flush=True)

        server = LoadServer("portal", "bench._app:create_bench_app()", env, args, tmp)
        try:
            server.wait_ready("/sign-in")
            raws = portal_requests(server.port, kinds, seeded, args.concurrency)
            portal = run_mix("portal mix", server, kinds, raws, {kind: check_for(kind) for kind in MIX}, args)
        finally:
            server.stop()
        print("portal measured", flush=True)
        ok = print_report(bare, portal, args, storage, (load_before, os.getloadavg()[0]))
        return 0 if ok else 1
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        Server.stop_all()
        if storage.startswith("redis"):
            forget_redis_keys(storage, prefix)
        try:
            drop_database(name)
        except Exception as error:  # noqa: BLE001 - reported, not raised over the real failure
            print(f"(could not drop database {name}: {error})", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
