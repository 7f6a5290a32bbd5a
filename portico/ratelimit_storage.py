"""Rate-limit counters for one process, without a thread per request.

The `limits` library's memory storage starts a `threading.Timer` to expire counters whenever
none is running, and each lives 10 ms, so nearly every limited POST starts a thread (about
2 ms of a sign-in on this machine). These counters expire when read instead, and a sweep
that runs inside an increment at most once a minute drops the ones nobody read again, so
memory stays bounded by the keys of the last window.

It is registered with `limits` the documented way (a Storage subclass naming its scheme) and
does fixed windows, the strategy the portal uses. `memory://`, the default, is read as this
storage (see portico/config.py); Redis, for several processes, is unchanged.
"""
import threading
import time

from limits.storage import Storage

SCHEME = "portico+memory"
SWEEP_SECONDS = 60.0


class ExpiringMemoryStorage(Storage):
    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._counter_lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._expiries: dict[str, float] = {}
        self._next_sweep = time.time() + SWEEP_SECONDS

    @property
    def base_exceptions(self):
        return ValueError

    def _live(self, key: str, now: float) -> int:
        """The key's count, dropping it first if its window has passed. Caller holds the lock."""
        if self._expiries.get(key, 0.0) <= now:
            self._counts.pop(key, None)
            self._expiries.pop(key, None)
            return 0
        return self._counts[key]

    def _sweep(self, now: float) -> None:
        for key in [key for key, expiry in self._expiries.items() if expiry <= now]:
            del self._expiries[key]
            self._counts.pop(key, None)
        self._next_sweep = now + SWEEP_SECONDS

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._counter_lock:
            if now >= self._next_sweep:
                self._sweep(now)
            count = self._live(key, now) + amount
            self._counts[key] = count
            if count == amount:  # the window starts with its first hit
                self._expiries[key] = now + expiry
            return count

    def get(self, key: str) -> int:
        with self._counter_lock:
            return self._live(key, time.time())

    def get_expiry(self, key: str) -> float:
        with self._counter_lock:
            return self._expiries.get(key, time.time())

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._counter_lock:
            dropped = len(self._counts)
            self._counts.clear()
            self._expiries.clear()
            return dropped

    def clear(self, key: str) -> None:
        with self._counter_lock:
            self._counts.pop(key, None)
            self._expiries.pop(key, None)

    def keys(self) -> int:
        """How many counters are held (for tests: memory stays bounded)."""
        with self._counter_lock:
            return len(self._counts)
