"""The portal as the benchmark serves it: the real create_app(), with the per-IP rate limits
raised so that one loopback client is not throttled after twenty requests.

Everything else (database, secret key, scheduler off) comes from the environment that
bench/signin.py sets before starting gunicorn.
"""
from portal import create_app

BENCH_CONFIG = {
    "SIGN_IN_IP_LIMIT": "1000000 per minute",
    "CODE_IP_LIMIT": "1000000 per minute",
}


def create_bench_app():
    return create_app(dict(BENCH_CONFIG))


def create_profiled_app():
    """The bench app with cProfile around each request, one profile per kind of request
    ("GET /sign-in", "POST /s", ...), dumped to $BENCH_PROFILE_DIR/<kind>.<pid>.prof when the
    worker exits. Used by `bench/signin.py --profile DIR`; timings under it are not figures.
    $BENCH_PROFILE_CLOCK is wall (default), cpu, or sample (bench/_sampler.py instead of cProfile); $BENCH_PROFILE_INNER names the factory to
    profile as module:function (default this module's create_bench_app)."""
    import atexit
    import cProfile
    import os
    import time

    out = os.environ["BENCH_PROFILE_DIR"]
    if os.environ.get("BENCH_PROFILE_CLOCK") == "sample":
        return _create_sampled_app(out)
    clock = time.process_time if os.environ.get("BENCH_PROFILE_CLOCK") == "cpu" else time.perf_counter
    app = _inner_factory()()
    inner = app.wsgi_app
    profiles: dict[str, cProfile.Profile] = {}

    def kind(environ) -> str:
        path = environ.get("PATH_INFO", "")
        prefix = path if not path.startswith("/s/") else "/s"
        return f"{environ.get('REQUEST_METHOD')} {prefix}"

    def profiled(environ, start_response):
        profile = profiles.setdefault(kind(environ), cProfile.Profile(clock))
        profile.enable()
        try:
            return list(inner(environ, start_response))
        finally:
            profile.disable()

    def dump():
        for name, profile in profiles.items():
            safe = name.replace(" ", "_").replace("/", "~")
            profile.dump_stats(os.path.join(out, f"{safe}.{os.getpid()}.prof"))

    atexit.register(dump)
    app.wsgi_app = profiled
    return app


def _inner_factory():
    import importlib
    import os
    module, _, function = os.environ.get("BENCH_PROFILE_INNER", "bench._app:create_bench_app").partition(":")
    return getattr(importlib.import_module(module), function.rstrip("()"))


def _create_sampled_app(out: str):
    import atexit
    import os

    from bench._sampler import Sampler

    app = _inner_factory()()
    inner = app.wsgi_app
    sampler = Sampler()

    def sampled(environ, start_response):
        path = environ.get("PATH_INFO", "")
        sampler.kind = f"{environ.get('REQUEST_METHOD')} {'/s' if path.startswith('/s/') else path}"
        sampler.requests[sampler.kind] += 1
        return inner(environ, start_response)

    def dump():
        sampler.stop()
        sampler.dump(os.path.join(out, f"sample.{os.getpid()}.json"))

    atexit.register(dump)
    app.wsgi_app = sampled
    sampler.start()
    return app
