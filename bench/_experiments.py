"""Candidate fixes, tried on the running portal without touching its code, to measure what a
change to the app would buy. Not part of the app: a change that pays off belongs in portal.py
or practice/, not here.

    BENCH_EXPERIMENTS=keep_sqlite_open,... python bench/signin.py --app "bench._experiments:create_experimental_app()"

keep_sqlite_open  one SQLite connection per worker thread, kept for its life, instead of
                  connect (+4 pragmas) and close (+ WAL checkpoint, -wal/-shm deleted and
                  recreated when it was the last connection) around every request
cache_practice    Practice.current() read once per request (it is read up to 3 times)
practice_ttl      Practice.current() read at most once every 5 s per worker process (a measure
                  only: it would serve a changed setting, e.g. a shorter link lifetime, late)
no_limiter        rate limiting off (RATELIMIT_ENABLED=False), to see what it costs

keep_sqlite_open and cache_practice are in the app now (portal.py's request hooks and the
request memo in practice/models.py); they stay here to compare against older figures.
"""
import os

from bench._app import BENCH_CONFIG
from portal import create_app


def create_experimental_app():
    chosen = {name.strip() for name in os.environ.get("BENCH_EXPERIMENTS", "").split(",") if name.strip()}
    unknown = chosen - {"keep_sqlite_open", "cache_practice", "practice_ttl", "no_limiter"}
    if unknown:
        raise SystemExit(f"unknown experiments: {sorted(unknown)}")
    config = dict(BENCH_CONFIG)
    if "no_limiter" in chosen:
        config["RATELIMIT_ENABLED"] = False
    app = create_app(config)
    if "keep_sqlite_open" in chosen:
        from practice.models import is_sqlite
        assert is_sqlite()
        funcs = app.teardown_request_funcs[None]
        funcs[:] = [f for f in funcs if f.__name__ != "_close"]
    if "cache_practice" in chosen:
        from flask import g, has_request_context
        from practice.models import Practice
        uncached = Practice.current.__func__

        def current(cls):
            if not has_request_context():
                return uncached(cls)
            if "bench_practice" not in g:
                g.bench_practice = uncached(cls)
            return g.bench_practice

        Practice.current = classmethod(current)
    if "practice_ttl" in chosen:
        import time
        from practice.models import Practice
        uncached = Practice.current.__func__
        cache = {"at": -1e9, "value": None}

        def current(cls):
            now = time.monotonic()
            if now - cache["at"] > 5:
                cache["value"], cache["at"] = uncached(cls), now
            return cache["value"]

        Practice.current = classmethod(current)
    app.logger.warning("bench experiments: %s", ",".join(sorted(chosen)) or "none")
    return app
