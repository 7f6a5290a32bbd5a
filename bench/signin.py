"""Sign-in benchmark: the portal under gunicorn against a bare Flask app under the same settings.

    cd /work/main && /tmp/venv/bin/python bench/signin.py [--requests 2000] [--concurrency 4]

What it does, in order:

1. Makes a fresh SQLite database in a temporary directory, runs `python portal.py init-db`
   against it, and seeds clients with one sign-in link each (one link per client: issuing a
   link replaces the client's earlier unused ones).
2. Starts the bare app (bench/bare.py) under gunicorn on a free loopback port, measures
   GET / and POST /, stops it.
3. Starts the portal (bench/_app.py: the real create_app() with the per-IP rate limits
   raised) under the *same* gunicorn settings, measures GET /sign-in, POST /sign-in and the
   link redemption (POST /s/<token>), stops it.
4. Prints requests/s, p50 and p99 latency for each, and each portal figure as a ratio of
   requests/s to the bare app's for the same method (GET to bare GET, POST to bare POST).
   It also prints the workers' CPU per request (from /proc), and the same ratio in CPU terms:
   on a shared 2-core machine other load moves req/s a lot and CPU per request little.
   With --rounds N the whole thing runs N times (fresh database each time) and each
   scenario keeps its best round.

The client is deliberately cheap (raw sockets, requests prepared before the clock starts),
because it shares the machine's cores with the servers: an expensive client would slow the
bare app most and flatter the ratios. Unmeasured preparation (a GET /sign-in for the CSRF
cookie and token; a GET /s/<token> before each redemption, as a browser does) happens before
the measured phase of each scenario. Every measured phase is bounded by a request count and
a time cap. Servers are stopped at the end, on error and on Ctrl-C/SIGTERM.

Finding where the time goes:

    python bench/signin.py --requests 1000 --profile /tmp/prof
        a statistical CPU profile of the portal's workers per kind of request (bench/_sampler.py);
        --profile-clock wall|cpu uses cProfile instead (wall counts lock waits and fsyncs).
    BENCH_EXPERIMENTS=keep_sqlite_open,practice_ttl python bench/signin.py \
            --app "bench._experiments:create_experimental_app()"
        the same benchmark with candidate fixes patched in (bench/_experiments.py).
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECRET_KEY = "bench-secret-key-not-for-production-" + "0" * 32
CSRF_COOKIE = "portico_csrf"
SESSION_COOKIE = "portico"
CSRF_FIELD = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
AIMS = {"GET /sign-in": 0.6, "POST /sign-in": 0.3, "POST /s/<token>": 0.3}


# ---- a small HTTP/1.1 client over raw sockets -------------------------------------------

@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def cookies(self) -> dict[str, str]:
        jar = {}
        for key, value in self.headers:
            if key == "set-cookie":
                pair = value.split(";", 1)[0]
                if "=" in pair:
                    cname, cvalue = pair.split("=", 1)
                    jar[cname.strip()] = cvalue.strip()
        return jar

    def csrf_token(self) -> str:
        match = CSRF_FIELD.search(self.body)
        if not match:
            raise BenchError(f"no csrf_token in the page (status {self.status})")
        return match.group(1).decode()


class BenchError(RuntimeError):
    pass


def build_request(port: int, method: str, path: str, *, form: dict | None = None,
                  cookies: dict | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "User-Agent: portico-bench/1",
             "Accept: text/html", "Connection: close"]
    if cookies:
        lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
    body = b""
    if form is not None:
        body = urlencode(form).encode()
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def send(port: int, raw: bytes, timeout: float = 30.0) -> Reply:
    """One request on its own connection (gunicorn's sync workers close after each reply);
    the time covers connect, send and reading the whole reply."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    seconds = time.perf_counter() - started
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise BenchError(f"malformed reply: {data[:200]!r}") from None
    headers = []
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers.append((key.strip().lower(), value.strip()))
    return Reply(status, headers, body, seconds)


def in_threads(items: list, work, concurrency: int, deadline: float | None = None) -> list:
    """work(item) for every item on `concurrency` threads (until the deadline, if any);
    results in item order, None where the deadline stopped it. The first exception re-raises."""
    results: list = [None] * len(items)
    counter = itertools.count()
    failure: list[BaseException] = []

    def loop():
        while not failure:
            index = next(counter)
            if index >= len(items) or (deadline is not None and time.perf_counter() >= deadline):
                return
            try:
                results[index] = work(items[index])
            except BaseException as error:  # noqa: BLE001 - reported by the caller
                failure.append(error)
                return

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failure:
        raise failure[0]
    return results


# ---- measuring ---------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    planned: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_sample: str = ""
    wall: float = 0.0
    cpu: float = float("nan")  # CPU seconds the server's workers spent in the measured phase
    capped: bool = False

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.done / self.wall if self.wall else 0.0

    @property
    def cpu_ms(self) -> float:
        """Worker CPU per request, in ms: unlike req/s, barely moved by other load on the machine."""
        return 1000 * self.cpu / self.done if self.done else float("nan")

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
        return ordered[rank - 1] * 1000


def measure(name: str, server: "Server", raws: list[bytes], check, *, concurrency: int, time_cap: float,
            warmup: list[bytes] = ()) -> Result:
    """Send the prepared requests; only successful replies (check(reply) is None) count."""
    port = server.port
    for raw in warmup:
        send(port, raw)
    result = Result(name, planned=len(raws))
    cpu_before = server.worker_cpu()
    started = time.perf_counter()
    replies = in_threads(raws, lambda raw: send(port, raw), concurrency, deadline=started + time_cap)
    result.wall = time.perf_counter() - started
    result.cpu = server.worker_cpu() - cpu_before
    for reply in replies:
        if reply is None:
            result.capped = True
            continue
        problem = check(reply)
        if problem:
            result.errors += 1
            result.error_sample = result.error_sample or problem
        else:
            result.latencies.append(reply.seconds)
    return result


def expect(status: int, *, location: str | None = None, cookie: str | None = None):
    def check(reply: Reply) -> str | None:
        if reply.status != status:
            return f"status {reply.status} (wanted {status}): {reply.body[:120]!r}"
        if location is not None and not (reply.header("location") or "").endswith(location):
            return f"Location {reply.header('location')!r} (wanted {location})"
        if cookie is not None and cookie not in reply.cookies():
            return f"no {cookie} cookie set"
        return None
    return check


# ---- servers -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn in its own process group, stopped by stop() (idempotent)."""

    running: list["Server"] = []

    def __init__(self, label: str, app_spec: str, env: dict, args, logdir: Path, port: int | None = None):
        self.label = label
        self.port = port or free_port()
        self.log = logdir / f"gunicorn-{label}.log"
        command = [sys.executable, "-m", "gunicorn",
                   "--workers", str(args.workers), "--worker-class", args.worker_class,
                   "--threads", str(args.threads),
                   "--bind", f"127.0.0.1:{self.port}", "--chdir", str(ROOT),
                   "--log-level", "warning", "--error-logfile", str(self.log),
                   "--graceful-timeout", "5", app_spec]
        self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        Server.running.append(self)

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        raw = build_request(self.port, "GET", path)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.label}: gunicorn exited with {self.process.returncode}\n"
                                 + self.log_tail())
            try:
                if send(self.port, raw, timeout=5).status == 200:
                    # Both workers should have booted: give the second a moment, then return.
                    time.sleep(0.5)
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.label}: not answering on port {self.port}\n" + self.log_tail())

    def worker_cpu(self) -> float:
        """User + system CPU seconds of the master's live children (the workers), from /proc."""
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:  # fields[1] is the ppid
                total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self in Server.running:
            Server.running.remove(self)
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # the group this script started
            self.process.wait(timeout=5)

    @classmethod
    def stop_all(cls) -> None:
        for server in list(cls.running):
            server.stop()


# ---- the database ------------------------------------------------------------------------

def portal_env(db_path: Path, port: int | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL_")}
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        SECRET_KEY=SECRET_KEY,
        PORTAL_SCHEDULER="off",
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}" if port else "http://127.0.0.1:5000",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.pop("RATELIMIT_STORAGE_URI", None)
    return env


def init_and_seed(db_path: Path, clients: int) -> list[tuple[str, str]]:
    """init-db, then `clients` clients with one live link each: [(email, token)]."""
    env = portal_env(db_path)
    done = subprocess.run([sys.executable, "portal.py", "init-db"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"init-db failed:\n{done.stdout}{done.stderr}")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from portal import create_app
        from practice.clients import add_client
        from practice.links import issue_link
        from practice.models import db

        app = create_app({"PORTAL_CREATE_SCHEMA": False})
        key = app.config["SECRET_KEY"].encode()
        seeded = []
        with app.app_context(), db.connection_context(), db.atomic():
            for i in range(clients):
                client = add_client(f"bench{i}@example.com", f"Bench Client {i}")
                seeded.append((client.email, issue_link(client, "client_request").token))
        db.close()
        return seeded
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---- the scenarios -----------------------------------------------------------------------

def csrf_pair(port: int, path: str) -> tuple[dict, str]:
    """GET a page as a browser would: its CSRF session cookie and the form's token."""
    reply = send(port, build_request(port, "GET", path))
    if reply.status != 200:
        raise BenchError(f"GET {path}: status {reply.status}")
    jar = reply.cookies()
    if CSRF_COOKIE not in jar:
        raise BenchError(f"GET {path}: no {CSRF_COOKIE} cookie")
    return {CSRF_COOKIE: jar[CSRF_COOKIE]}, reply.csrf_token()


def run_bare(args, env, logdir) -> dict[str, Result]:
    server = Server("bare", "bench.bare:create_bare_app()", env, args, logdir)
    try:
        server.wait_ready("/")
        port = server.port
        get = build_request(port, "GET", "/")
        results = {"bare GET /": measure("bare GET /", server, [get] * args.requests, expect(200),
                                         concurrency=args.concurrency, time_cap=args.time_cap,
                                         warmup=[get] * args.warmup)}
        # A form body of the same shape as the portal's POST /sign-in.
        post = build_request(port, "POST", "/", form={"email": "bench0@example.com", "csrf_token": "x" * 91},
                             cookies={CSRF_COOKIE: "y" * 120})
        results["bare POST /"] = measure("bare POST /", server, [post] * args.requests, expect(200),
                                         concurrency=args.concurrency, time_cap=args.time_cap,
                                         warmup=[post] * args.warmup)
        return results
    finally:
        server.stop()


def run_portal(args, db_path: Path, seeded: list[tuple[str, str]], logdir) -> dict[str, Result]:
    port = free_port()
    env = portal_env(db_path, port)
    spec = args.app
    if args.profile:
        env["BENCH_PROFILE_DIR"] = str(args.profile)
        env["BENCH_PROFILE_CLOCK"] = args.profile_clock
        env["BENCH_PROFILE_INNER"] = spec
        spec = "bench._app:create_profiled_app()"
    server = Server("portal", spec, env, args, logdir, port)
    try:
        server.wait_ready("/sign-in")
        port = server.port
        n, w, c = args.requests, args.warmup, args.concurrency
        results = {}

        # GET /sign-in as a first visit: no cookies, so the page also mints the CSRF cookie.
        get = build_request(port, "GET", "/sign-in")
        results["GET /sign-in"] = measure("GET /sign-in", server, [get] * n, expect(200, cookie=CSRF_COOKIE),
                                          concurrency=c, time_cap=args.time_cap, warmup=[get] * w)

        # POST /sign-in: one CSRF cookie and token per simulated browser, a different
        # client's address in each request (each writes one sign-in request row).
        browsers = in_threads([None] * c, lambda _: csrf_pair(port, "/sign-in"), c)
        posts = []
        for i in range(w + n):
            cookies, token = browsers[i % c]
            posts.append(build_request(port, "POST", "/sign-in", cookies=cookies,
                                       form={"email": seeded[i % len(seeded)][0], "csrf_token": token}))
        results["POST /sign-in"] = measure("POST /sign-in", server, posts[w:], expect(200),
                                           concurrency=c, time_cap=args.time_cap, warmup=posts[:w])

        # Redemption: every link is opened first (GET /s/<token>, unmeasured, as a browser
        # does: it records the first opening and gives the form's CSRF token), then the
        # measured POST /s/<token> uses it up: 303 to /portal with a session cookie.
        tokens = [token for _, token in seeded[:w + n]]
        pairs = in_threads(tokens, lambda token: csrf_pair(port, f"/s/{token}"), c)
        presses = [build_request(port, "POST", f"/s/{token}", cookies=cookies, form={"csrf_token": csrf})
                   for token, (cookies, csrf) in zip(tokens, pairs)]
        results["POST /s/<token>"] = measure("POST /s/<token>", server, presses[w:],
                                             expect(303, location="/portal", cookie=SESSION_COOKIE),
                                             concurrency=c, time_cap=args.time_cap, warmup=presses[:w])
        return results
    finally:
        server.stop()


def print_profiles(directory: Path, top: int) -> None:
    """Merge the workers' profiles per kind of request and show where the time goes."""
    import pstats
    samples = sorted(directory.glob("sample.*.json"))
    if samples:
        from bench._sampler import merge, report
        report(merge(samples), top)
        return
    kinds: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.prof")):
        kinds.setdefault(path.name.split(".")[0], []).append(str(path))
    for kind, files in kinds.items():
        stats = pstats.Stats(*files)
        calls = sum(n for (path, _, name), (_, n, *_rest) in stats.stats.items()
                    if name == "wsgi_app" and path.endswith("flask/app.py"))
        print(f"\n==== {kind.replace('~', '/').replace('_', ' ')}: {stats.total_tt:.2f}s in the app "
              f"over {calls} requests = {1000 * stats.total_tt / max(calls, 1):.2f} ms/request ====")
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)


# ---- the report --------------------------------------------------------------------------

def best(results: list[Result]) -> Result:
    """The round with the most requests/s: other load on the machine only ever slows a round."""
    return max(results, key=lambda r: (r.errors == 0, r.rps))


def print_table(rounds: list[tuple[dict[str, Result], dict[str, Result]]], args, loads) -> bool:
    bare = {name: best([r[0][name] for r in rounds]) for name in rounds[0][0]}
    portal = {name: best([r[1][name] for r in rounds]) for name in rounds[0][1]}
    baseline = {"GET /sign-in": bare["bare GET /"], "POST /sign-in": bare["bare POST /"],
                "POST /s/<token>": bare["bare POST /"]}
    header = (f"{'scenario':<17}{'ok':>6}{'err':>4}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
              f"{'cpu ms':>8}{'ratio':>7}{'aim':>6}  verdict")
    print()
    print(f"gunicorn {args.workers} workers ({args.worker_class}"
          + (f", {args.threads} threads" if args.worker_class == "gthread" else "")
          + f") for both apps; client {args.concurrency} threads on loopback, {args.requests} requests "
          f"per scenario (cap {args.time_cap:g}s) after {args.warmup} warm-up; "
          + (f"best of {len(rounds)} rounds; " if len(rounds) > 1 else "")
          + f"{os.cpu_count()} CPUs, load average {loads[0]:.1f} before, {loads[1]:.1f} after")
    print(header)
    print("-" * len(header))

    def row(result: Result, ratio: str = "", aim: str = "", verdict: str = ""):
        print(f"{result.name:<17}{result.done:>6}{result.errors:>4}{result.rps:>8.1f}"
              f"{result.percentile(50):>8.2f}{result.percentile(99):>8.2f}{result.cpu_ms:>8.2f}"
              f"{ratio:>7}{aim:>6}  {verdict}")

    for result in bare.values():
        row(result, "1.00")
    met = True
    for name, result in portal.items():
        base = baseline[name]
        ratio = result.rps / base.rps if base.rps else 0.0
        aim = AIMS[name]
        ok = ratio >= aim and result.errors == 0
        met &= ok
        verdict = "meets aim" if ok else "MISSES aim"
        verdict += f" (cpu ratio {base.cpu_ms / result.cpu_ms:.2f})" if result.cpu_ms else ""
        if result.errors:
            verdict += f" ({result.errors} errors)"
        if result.capped:
            verdict += f" (time cap hit after {result.done} requests)"
        row(result, f"{ratio:.2f}", f"{aim:.2f}", verdict)
    print("-" * len(header))
    print("ratio: requests/s over the bare app's for the same method (GET / for the GET, POST / for the\n"
          "POSTs). cpu ms: the workers' CPU per request; cpu ratio = bare cpu ms / portal cpu ms, the\n"
          "same comparison without waits and without other load on the machine. Latency covers\n"
          "connect, send and the whole reply; only expected replies (200, or 303 to /portal with a\n"
          "session cookie for the redemption) count.")
    for round_ in rounds:
        for result in [*round_[0].values(), *round_[1].values()]:
            if result.error_sample:
                print(f"  {result.name}: first error: {result.error_sample}")
    if len(rounds) > 1:
        print("rounds (req/s): " + "; ".join(
            f"{name} " + "/".join(f"{r[i][name].rps:.0f}" for r in rounds)
            for i, names in ((0, rounds[0][0]), (1, rounds[0][1])) for name in names))
    return met


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per scenario")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests before each scenario")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--time-cap", type=float, default=60.0, help="seconds per measured scenario")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat bare + portal (fresh database each time) and keep each scenario's best")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (gthread)")
    parser.add_argument("--app", default="bench._app:create_bench_app()",
                        help="gunicorn app spec for the portal (e.g. bench._experiments:create_experimental_app())")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="profile the portal's workers with cProfile into DIR and print where the "
                             "time goes (skips the bare app; the timings are then not figures)")
    parser.add_argument("--profile-top", type=int, default=30)
    parser.add_argument("--profile-clock", choices=["wall", "cpu", "sample"], default="sample",
                        help="sample: a cheap statistical profile of the workers' CPU (bench/_sampler.py); "
                             "cProfile with wall (waits for locks, fsync, sleeps count) or cpu time")
    args = parser.parse_args(argv)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="portico-bench-"))
    load_before = os.getloadavg()[0]
    try:
        rounds = []
        for number in range(1 if args.profile else args.rounds):
            db_path = tmp / f"portico-{number}.db"
            started = time.perf_counter()
            seeded = init_and_seed(db_path, args.requests + args.warmup)
            print(f"round {number + 1}: seeded {len(seeded)} clients with one link each in "
                  f"{time.perf_counter() - started:.1f}s", flush=True)
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                for old in [*args.profile.glob("*.prof"), *args.profile.glob("sample.*.json")]:  # not last run's
                    old.unlink()
                run_portal(args, db_path, seeded, tmp)
                print_profiles(args.profile, args.profile_top)
                return 0
            bare = run_bare(args, portal_env(db_path), tmp)
            print(f"round {number + 1}: bare app measured", flush=True)
            portal = run_portal(args, db_path, seeded, tmp)
            print(f"round {number + 1}: portal measured", flush=True)
            rounds.append((bare, portal))
        met = print_table(rounds, args, (load_before, os.getloadavg()[0]))
        return 0 if met else 1
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2
    finally:
        Server.stop_all()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
