"""Portico's own processes started by tests (`python portal.py worker`), and what a test
process does before handing the database to them."""
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from practice.models import db

REPO = Path(__file__).resolve().parent.parent
PID_IN_MESSAGE_ID = re.compile(r"^<(\d+)\.")  # practice.mail: <pid.random.kind@domain>


def close_test_connections() -> None:
    """The other processes own the database now: the test process lets go of it."""
    if hasattr(db.obj, "close_all"):
        db.obj.close_all()
    elif not db.is_closed():
        db.close()


class WorkerProcess:
    """`python portal.py worker` in its own process, its output in a log file."""

    def __init__(self, env: dict, log_path: Path):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "portal.py", "worker"], cwd=REPO, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, seconds: float = 60) -> None:
        """Bounded wait until the worker says its scheduler is running."""
        self.wait_for_log("Portico worker running", seconds)

    def wait_for_log(self, text: str, seconds: float = 60, *, times: int = 1) -> None:
        """Bounded wait until the worker's output holds `text` (`times` times)."""
        deadline = time.monotonic() + seconds
        while self.log().count(text) < times:
            self.check_alive()
            assert time.monotonic() < deadline, f"no {text!r} from the worker in {seconds:.0f}s:\n{self.log()}"
            time.sleep(0.1)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; the tick in progress finishes first."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
