"""The one-process rate-limit storage: the same limits as `memory://`, no thread per request,
counters that expire with their window and do not pile up."""
import threading
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from portico.ratelimit_storage import SWEEP_SECONDS, ExpiringMemoryStorage
from tests.conftest import csrf_token

START = datetime(2026, 12, 1, 15, 0, tzinfo=timezone.utc)


def _sign_in_posts(client, count: int, address: str = "alex@example.com") -> list[int]:
    form = {"email": address, "csrf_token": csrf_token(client)}
    return [client.post("/sign-in", data=form).status_code for _ in range(count)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_default_memory_storage_counts_without_starting_a_thread(make_app, monkeypatch):
    app = make_app(SIGN_IN_IP_LIMIT="3 per minute")
    assert isinstance(app.extensions["portico_limiter"].storage, ExpiringMemoryStorage)
    client = app.test_client()
    csrf_token(client)  # the first GET, before counting
    started = []
    original_start = threading.Thread.start

    def counting_start(thread):
        started.append(thread.name)
        original_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    assert _sign_in_posts(client, 4) == [200, 200, 200, 429]
    assert started == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_limit_opens_again_when_its_window_has_passed(make_app):
    with time_machine.travel(START, tick=False) as traveller:
        app = make_app(SIGN_IN_IP_LIMIT="2 per minute")
        client = app.test_client()
        assert _sign_in_posts(client, 3) == [200, 200, 429]
        traveller.shift(timedelta(seconds=30))
        assert _sign_in_posts(client, 1) == [429]  # the same fixed window
        traveller.shift(timedelta(seconds=31))
        assert _sign_in_posts(client, 3) == [200, 200, 429]


def test_counters_nobody_reads_again_are_swept_within_a_minute_of_their_window():
    with time_machine.travel(START, tick=False) as traveller:
        storage = ExpiringMemoryStorage()
        for n in range(500):
            storage.incr(f"sign-in/198.51.100.{n}", expiry=60)
        assert storage.keys() == 500
        traveller.shift(timedelta(seconds=SWEEP_SECONDS + 1))
        storage.incr("sign-in/203.0.113.7", expiry=60)  # any later hit sweeps
        assert storage.keys() == 1


def test_a_counter_expires_on_read_and_restarts_its_window_on_the_next_hit():
    with time_machine.travel(START, tick=False) as traveller:
        storage = ExpiringMemoryStorage()
        assert [storage.incr("k", expiry=10) for _ in range(3)] == [1, 2, 3]
        assert storage.get_expiry("k") == START.timestamp() + 10
        traveller.shift(timedelta(seconds=10))
        assert storage.get("k") == 0
        assert storage.incr("k", expiry=10) == 1
        assert storage.get_expiry("k") == START.timestamp() + 20
        storage.clear("k")
        assert storage.get("k") == 0 and storage.reset() == 0
