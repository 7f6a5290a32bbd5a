"""A real coturn (Debian's `turnserver`) on 127.0.0.1 for a test: use-auth-secret, no TLS,
loopback peers allowed (they are refused by default), everything it does in a log file."""
import os
import re
import shutil
import signal
import socket
import subprocess
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
