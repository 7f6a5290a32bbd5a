"""A real coturn (Debian's `turnserver`) on 127.0.0.1 for a test: use-auth-secret, no TLS,
loopback peers allowed (they are refused by default), everything it does in a log file."""
import heapq
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"


def free_port() -> int:
    """A port free for both UDP and TCP on loopback (coturn listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def require_coturn() -> None:
    if not os.access(TURNSERVER, os.X_OK):
        if os.environ.get("PORTICO_REQUIRE_BROWSER"):
            pytest.fail(f"{TURNSERVER} is required here but missing (apt-get install coturn)")
        pytest.skip("coturn is not installed (apt-get install coturn)")


class Coturn:
    def __init__(self, directory: Path, secret: str):
        self.directory, self.secret = directory, secret
        self.port = free_port()
        self.process = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def log_path(self) -> Path:
        return self.directory / f"turn-{self.starts}.log"

    def log(self) -> str:
        """Everything every run of this server logged, in order."""
        return "".join((self.directory / f"turn-{n}.log").read_text(errors="replace")
                       for n in range(1, self.starts + 1) if (self.directory / f"turn-{n}.log").exists())

    def start(self) -> "Coturn":
        self.starts += 1
        command = [TURNSERVER, "-n", "--verbose", "--no-cli", "--simple-log", "--log-file", str(self.log_path),
                   "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", str(self.port),
                   "--use-auth-secret", "--static-auth-secret", self.secret, "--realm", "portico.test",
                   "--no-tls", "--no-dtls", "--allow-loopback-peers", "--no-multicast-peers",
                   "--pidfile", str(self.directory / "turnserver.pid"), "--db", str(self.directory / "turndb")]
        with open(self.directory / "turnserver.out", "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while "Relay ports initialization done" not in self.current_log() or \
                f"UDP listener opened on: 127.0.0.1:{self.port}" not in self.current_log():
            assert self.process.poll() is None, f"turnserver exited: {self.current_log()[-2000:]}"
            assert time.monotonic() < deadline, f"turnserver did not start: {self.current_log()[-2000:]}"
            time.sleep(0.1)
        return self

    def current_log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def allocations_for_seat(self, seat_id: int) -> int:
        """How many TURN allocations coturn granted to a room seat's credentials."""
        return len(re.findall(rf"user <\d+:{seat_id}>: incoming packet ALLOCATE processed, success", self.log()))

    def try_allocation(self, username: str, password: str) -> bool:
        """One allocation with these credentials, by coturn's own test client."""
        result = subprocess.run(["turnutils_uclient", "-y", "-n", "1", "-m", "1", "-u", username, "-w", password,
                                 "-p", str(self.port), "127.0.0.1"], capture_output=True, timeout=60)
        return result.returncode == 0


class SlowLink:
    """A UDP hop in front of coturn that can hold every packet back for a while, as a poor
    mobile or hotel network does: the room's browsers reach the relay through it."""

    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.delay = 0.0  # seconds each packet waits, each way
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sides = {}  # browser address -> the socket that speaks for it to coturn
        self.queue = []  # (when, sequence, socket, data, address)
        self.sequence = 0
        self.ready = threading.Condition()
        self.running = True
        self.threads = [threading.Thread(target=self._from_browsers, daemon=True),
                        threading.Thread(target=self._deliver, daemon=True)]
        for thread in self.threads:
            thread.start()

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def _later(self, sock, data, address):
        with self.ready:
            self.sequence += 1
            heapq.heappush(self.queue, (time.monotonic() + self.delay, self.sequence, sock, data, address))
            self.ready.notify()

    def _from_browsers(self):
        while self.running:
            try:
                data, browser = self.listener.recvfrom(65535)
            except OSError:
                return
            if browser not in self.sides:
                side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                side.bind(("127.0.0.1", 0))
                self.sides[browser] = side
                threading.Thread(target=self._from_coturn, args=(side, browser), daemon=True).start()
            self._later(self.sides[browser], data, self.upstream)

    def _from_coturn(self, side, browser):
        while self.running:
            try:
                data, _ = side.recvfrom(65535)
            except OSError:
                return
            self._later(self.listener, data, browser)

    def _deliver(self):
        while self.running:
            with self.ready:
                while self.running and (not self.queue or self.queue[0][0] > time.monotonic()):
                    self.ready.wait(timeout=self.queue[0][0] - time.monotonic() if self.queue else 0.5)
                if not self.running:
                    return
                _, _, sock, data, address = heapq.heappop(self.queue)
            try:
                sock.sendto(data, address)
            except OSError:
                pass

    def close(self):
        self.running = False
        with self.ready:
            self.ready.notify()
        for sock in [self.listener, *self.sides.values()]:
            sock.close()
