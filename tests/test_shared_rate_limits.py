"""Rate limits across processes and behind a proxy:

* with RATELIMIT_STORAGE_URI on Redis, two gunicorn processes count against one limit;
* with Redis unreachable, each process falls back to counting in memory (no 500s);
* every app has its own limiter: one app's settings never leak into the next;
* the client address comes from X-Forwarded-For only when PORTAL_PROXY_COUNT says a proxy
  sets it; otherwise the header is ignored, so nobody escapes a limit by sending one.
"""
import os
import socket
import sys
import uuid
from contextlib import ExitStack

import pytest
import requests

from practice.models import SignInRequest, db
from tests.conftest import CSRF_INPUT, csrf_token, free_port
from tests.test_concurrent_redemption import running_server

REDIS_URL = os.environ.get("PORTICO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET_KEY = "rate-limit-test-secret-key"


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url():
    if not redis_reachable():
        if os.environ.get("PORTICO_REQUIRE_REDIS"):
            pytest.fail("Redis is required here (PORTICO_REQUIRE_REDIS) but not reachable on 127.0.0.1:6379")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def key_prefix(redis_url):
    """This test's own keys, so that other runs on the same Redis never share its counters."""
    import redis
    prefix = f"portico-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    connection = redis.Redis.from_url(redis_url)
    for key in connection.scan_iter(f"*{prefix}*"):
        connection.delete(key)
    connection.close()


def gunicorn(port: int) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--threads", "4"]


def server_env(database_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "PORTAL_", "RATELIMIT_"))}
    env.update(DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY, PORTAL_SCHEDULER="off",
               PORTAL_BASE_URL="http://portal.test", PORTAL_EXTRA_HOSTS="127.0.0.1", PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_two_gunicorn_processes_share_one_sign_in_limit_in_redis(database_url, redis_url, key_prefix, tmp_path):
    import redis
    env = server_env(database_url, RATELIMIT_STORAGE_URI=redis_url, RATELIMIT_KEY_PREFIX=key_prefix)
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(gunicorn(port), env, tmp_path / f"web-{n}.log", port))
                 for n, port in enumerate(ports)]
        browser = requests.Session()
        page = browser.get(f"{bases[0]}/sign-in", timeout=30)
        form = {"email": "alex@example.com", "csrf_token": CSRF_INPUT.search(page.text).group(1)}

        # The limit is 20 a minute per address: ten through each process ...
        remaining = []
        for n in range(20):
            response = browser.post(f"{bases[n % 2]}/sign-in", data=form, timeout=30)
            assert response.status_code == 200, (n, response.status_code)
            remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == list(range(19, -1, -1))  # one count, whichever process answered

        # ... and the 21st is refused by either, though each has served only ten itself.
        for base in bases:
            refused = browser.post(f"{base}/sign-in", data=form, timeout=30)
            assert refused.status_code == 429 and "Please wait a moment" in refused.text

    keys = list(redis.Redis.from_url(redis_url).scan_iter(f"*{key_prefix}*"))
    assert keys, "the counters were not in Redis"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_with_redis_unreachable_each_process_counts_in_memory(make_app):
    app = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0", SIGN_IN_IP_LIMIT="3 per minute")
    client = app.test_client()
    form = {"email": "alex@example.com", "csrf_token": csrf_token(client)}
    statuses = [client.post("/sign-in", data=form).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_app_keeps_its_own_limits_whatever_an_earlier_app_was_given(make_app):
    # An app with limits off, then one whose Redis is down: neither may change the next app.
    make_app(RATELIMIT_ENABLED=False)
    unreachable = make_app(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0")
    client = unreachable.test_client()
    form = {"email": "alex@example.com", "csrf_token": csrf_token(client)}
    client.post("/sign-in", data=form)

    app = make_app(SIGN_IN_IP_LIMIT="2 per minute")
    client = app.test_client()
    form = {"email": "alex@example.com", "csrf_token": csrf_token(client)}
    assert [client.post("/sign-in", data=form).status_code for _ in range(3)] == [200, 200, 429]


def _ask(client, token, forwarded_for):
    return client.post("/sign-in", data={"email": "alex@example.com", "csrf_token": token},
                       headers={"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}).status_code


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_behind_a_proxy_limits_and_records_the_forwarded_client_address(make_app):
    app = make_app(PORTAL_PROXY_COUNT=1, SIGN_IN_IP_LIMIT="2 per minute")
    client = app.test_client()
    token = csrf_token(client)
    assert [_ask(client, token, "203.0.113.7") for _ in range(3)] == [200, 200, 429]
    assert _ask(client, token, "198.51.100.9") == 200  # another client behind the same proxy
    with app.app_context(), db.connection_context():
        assert {r.ip for r in SignInRequest.select()} == {"203.0.113.7", "198.51.100.9"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_without_a_proxy_setting_a_forwarded_header_is_ignored(make_app):
    app = make_app(SIGN_IN_IP_LIMIT="2 per minute")
    client = app.test_client()
    token = csrf_token(client)
    statuses = [_ask(client, token, f"198.51.100.{n}") for n in range(3)]
    assert statuses == [200, 200, 429]  # one address, whatever the header claims
    with app.app_context(), db.connection_context():
        assert {r.ip for r in SignInRequest.select()} == {"127.0.0.1"}
