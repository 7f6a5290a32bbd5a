"""A small statistical CPU profiler for a gunicorn worker: SIGPROF fires every few ms of the
process's CPU time and the handler counts the functions on the stack, under the kind of
request the worker is serving ("GET /sign-in", ...). Unlike cProfile it costs little and does
not inflate code made of many small calls (peewee's SQL generation), and it sees the whole
worker, gunicorn's own work included. Samples taken outside a request (accepting, parsing the
next request) count under the last kind served."""
import collections
import json
import os
import signal

SITE = "site-packages/"


def _where(code) -> str:
    path = code.co_filename
    if SITE in path:
        path = path.split(SITE, 1)[1]
    elif "/lib/python3" in path:
        path = "stdlib/" + path.rsplit("/", 1)[1]
    else:
        path = os.path.relpath(path)
    return f"{path}:{code.co_firstlineno}({code.co_name})"


class Sampler:
    def __init__(self, interval: float = 0.001):
        self.interval = interval
        self.kind = "(startup)"
        self.samples: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.selfs: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.totals: collections.Counter = collections.Counter()
        self.requests: collections.Counter = collections.Counter()

    def _tick(self, _signum, frame):
        self.totals[self.kind] += 1
        inclusive = self.samples[self.kind]
        if frame is not None:
            self.selfs[self.kind][_where(frame.f_code)] += 1
        seen = set()
        while frame is not None:
            key = _where(frame.f_code)
            if key not in seen:
                seen.add(key)
                inclusive[key] += 1
            frame = frame.f_back

    def start(self):
        signal.signal(signal.SIGPROF, self._tick)
        signal.setitimer(signal.ITIMER_PROF, self.interval, self.interval)

    def stop(self):
        signal.setitimer(signal.ITIMER_PROF, 0, 0)

    def dump(self, path: str):
        with open(path, "w") as handle:
            json.dump({"totals": self.totals, "requests": self.requests,
                       "inclusive": self.samples, "self": self.selfs}, handle)


def merge(paths) -> dict:
    merged = {"totals": collections.Counter(), "requests": collections.Counter(),
              "inclusive": collections.defaultdict(collections.Counter),
              "self": collections.defaultdict(collections.Counter)}
    for path in paths:
        with open(path) as handle:
            data = json.load(handle)
        merged["totals"].update(data["totals"])
        merged["requests"].update(data["requests"])
        for part in ("inclusive", "self"):
            for kind, counts in data[part].items():
                merged[part][kind].update(counts)
    return merged


def report(merged: dict, top: int = 40) -> None:
    for kind, total in sorted(merged["totals"].items(), key=lambda item: -item[1]):
        requests = merged["requests"].get(kind, 0)
        print(f"\n==== {kind}: {total} samples over {requests} requests (incl. unmeasured prep/warm-up) ====")
        for part in ("inclusive", "self"):
            print(f"-- {part} (% of this kind's worker CPU)")
            shown = [(key, count) for key, count in merged[part][kind].most_common()
                     if part == "self" or count < total]  # frames on every stack say nothing
            for key, count in shown[:top]:
                print(f"{100 * count / total:6.1f}%  {key}")
