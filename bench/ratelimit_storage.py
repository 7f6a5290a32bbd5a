"""The one-process rate-limit storage against the `limits` library's memory storage.

    .venv/bin/python -m bench.ratelimit_storage [--hits 400] [--gap-ms 15] [--rounds 3]

Each round times the same fixed-window hits (a sign-in POST checks two limits, per minute and
per hour, for one address) on both storages, alternating, and counts the threads each
started. Requests arrive --gap-ms apart, as on a portal that is not flooded: the library's
expiry timer lives 10 ms, so a gap longer than that makes each request start one (only the
hits are timed, not the gaps). It prints microseconds per request for each, and ours as a
ratio of the library's, best round of each.
"""
import argparse
import threading
import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from portico.ratelimit_storage import ExpiringMemoryStorage

LIMITS = parse_many("20 per minute; 200 per hour")  # SIGN_IN_IP_LIMIT


def run(storage, hits: int, gap: float) -> tuple[float, int]:
    limiter = FixedWindowRateLimiter(storage)
    started = 0
    original_start = threading.Thread.start

    def counting_start(thread):
        nonlocal started
        started += 1
        original_start(thread)

    threading.Thread.start = counting_start
    try:
        elapsed = 0.0
        for n in range(hits):
            key = f"198.51.{n % 250}.{n % 200}"  # many addresses, as a busy portal sees
            began = time.perf_counter()
            for limit in LIMITS:
                limiter.hit(limit, "sign_in", key)
            elapsed += time.perf_counter() - began
            time.sleep(gap)
    finally:
        threading.Thread.start = original_start
    return elapsed / hits * 1e6, started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=400)
    parser.add_argument("--gap-ms", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = {"limits memory://": (float("inf"), 0), "portico+memory://": (float("inf"), 0)}
    for _ in range(args.rounds):
        for name, make in (("limits memory://", MemoryStorage), ("portico+memory://", ExpiringMemoryStorage)):
            micros, threads = run(make(), args.hits, args.gap_ms / 1000)
            if micros < best[name][0]:
                best[name] = (micros, threads)
    for name, (micros, threads) in best.items():
        print(f"{name:20} {micros:8.2f} µs per request   {threads:6d} threads started for {args.hits} requests")
    ratio = best["portico+memory://"][0] / best["limits memory://"][0]
    print(f"ours / library's: {ratio:.2f}")


if __name__ == "__main__":
    main()
