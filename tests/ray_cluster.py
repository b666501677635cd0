"""A real local Ray head for tests and benchmarks: `ray start --head --block` in a process group of its own, so
stopping it stops exactly its processes (never `ray stop`, which ends every Ray of the machine).

It requires a token (RAY_AUTH_MODE=token with a fresh RAY_AUTH_TOKEN), as a cluster on a network should; a driver
finds the token in its environment (`environment()`), which is how the app is meant to connect
(mnist_core/jobs/ray.py, docs/scaling.md). Its temporary folder is short: Ray's socket paths must stay under 107
characters.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START_TIMEOUT_S = 180  # ray start takes ~4-10 s; a machine at load 15-20 can take far longer
STOP_GRACE_S = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_command() -> str:
    return str(Path(sys.executable).with_name("ray"))


class LocalHead:
    """One Ray head node on this machine with `num_cpus` CPUs; `address` is its GCS host:port."""

    def __init__(self, num_cpus: int = 2):
        self.num_cpus = num_cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.token = secrets.token_hex(32)
        self.folder = Path(tempfile.mkdtemp(prefix="mlray", dir="/tmp"))
        self.log_path = self.folder / "ray-start.log"
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict[str, str]:
        """What a driver needs in its environment besides the address: the token (never RAY_AUTH_MODE: the app
        must find out by itself that a token means token mode)."""
        return {"RAY_AUTH_TOKEN": self.token}

    def start(self) -> LocalHead:
        env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "TF_CPP_MIN_LOG_LEVEL": "2"}
        command = [
            ray_command(), "start", "--head", "--block",
            f"--port={self.port}", f"--num-cpus={self.num_cpus}",
            "--disable-usage-stats", "--include-dashboard=false",
            f"--ray-client-server-port={free_port()}", f"--temp-dir={self.folder / 'r'}",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray start did not finish within {START_TIMEOUT_S} s:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to `ray start --block` (it stops what it started), then SIGKILL to whatever of its group is left."""
        if self.process is not None:
            group = self.process.pid  # start_new_session: the group's id is the leader's pid
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.process.poll() is None:
                self.process.wait(10)
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)
