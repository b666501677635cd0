"""What the benchmarks share: the project on sys.path, the machine's description, load checks, tables.

Not a benchmark itself; `bench_*.py` import it (they run as scripts, so this folder is on sys.path).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mnist_core import hardware  # noqa: E402  (after the project is on sys.path)

# Above this 1-minute load average (on a 2-core machine) other processes take a visible share of the CPU.
BUSY_LOAD = 1.5


def cpu_model() -> str:
    return hardware.cpuinfo().get("model name", platform.processor() or "unknown CPU")


def cpu_mhz() -> float:
    try:
        return float(hardware.cpuinfo().get("cpu MHz", "nan"))
    except ValueError:
        return float("nan")


def ram_gib() -> float:
    try:
        found = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        return int(found.group(1)) / 2**20 if found else float("nan")
    except OSError:
        return float("nan")


def os_name() -> str:
    try:
        found = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text())
        if found:
            return found.group(1)
    except OSError:
        pass
    return platform.platform()


def load_average() -> float:
    return os.getloadavg()[0]


def _process_table() -> dict[int, tuple[int, str, float]]:
    """Every process: pid -> (parent pid, command line, CPU seconds so far: user + system), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        table[int(entry.name)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / ticks)
    return table


def cpu_seconds(server_pid: int, browser_marker: str) -> dict[str, float]:
    """CPU seconds used so far by the app server itself, by its descendants (training workers and the like) and by
    every process whose command line contains `browser_marker` (Chromium's executable). Take it twice and
    subtract: processes that ended in between are not counted, so take the second reading before they end."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    descendants, waiting = [], list(children.get(server_pid, []))
    while waiting:
        pid = waiting.pop()
        descendants.append(pid)
        waiting.extend(children.get(pid, []))
    return {
        "server": table[server_pid][2] if server_pid in table else 0.0,
        "workers": sum(table[pid][2] for pid in descendants),
        "browser": sum(cpu for _, command, cpu in table.values() if browser_marker in command),
    }


def machine_lines(with_tensorflow: bool = False) -> list[str]:
    """A few lines that say on what, when and with which versions the figures were measured."""
    lines = [
        f"date: {date.today().isoformat()}",
        f"cpu: {cpu_model()}, {hardware.usable_cores()} cores at {cpu_mhz():.0f} MHz (from /proc/cpuinfo)",
        # Hosts of the same name differ (2026-12-01: a Zen 3 without AVX-512 ran everything 2.5-5x slower than the
        # Zen 4 hosts before it): the generation and the vector units say which figures compare.
        f"cpu family {hardware.cpuinfo().get('cpu family', '?')} model {hardware.cpuinfo().get('model', '?')}; "
        f"AVX-512: {'yes' if 'avx512f' in hardware.cpu_flags() else 'no'}; "
        f"bfloat16 in hardware: {'yes' if hardware.native_bfloat16() else 'no'}",
        f"ram: {ram_gib():.1f} GiB; os: {os_name()}; python {platform.python_version()}",
    ]
    if with_tensorflow:
        import keras
        import tensorflow as tf

        lines.append(f"tensorflow {tf.__version__}, keras {keras.__version__}")
    lines.append(f"load average at start: {load_average():.2f} (other processes share the CPU above ~{BUSY_LOAD})")
    return lines


def print_header(title: str, with_tensorflow: bool = False) -> None:
    print(f"# {title}")
    for line in machine_lines(with_tensorflow):
        print(f"  {line}")
    if load_average() > BUSY_LOAD:
        print(f"  WARNING: the machine is busy (load {load_average():.2f}); absolute times will be slow, ratios less so.")
    print()


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    """A Markdown table, so the output can be pasted into BENCHMARKS.md as it is."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(headers[col]), *(len(row[col]) for row in cells)) for col in range(len(headers))]
    print("| " + " | ".join(header.ljust(width) for header, width in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in cells:
        print("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |")
    print()


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) with linear interpolation, like numpy's default."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: list[float]) -> float:
    return statistics.median(values)


class Stopwatch:
    """`with Stopwatch() as watch: ...` then `watch.seconds` (wall clock) and `watch.cores` (CPU time of this
    process, all threads, over wall clock: about 2 when TensorFlow had both cores, less when others took some)."""

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.cpu_started = time.process_time()
        return self

    def __exit__(self, *_) -> None:
        self.seconds = time.perf_counter() - self.started
        self.cpu_seconds = time.process_time() - self.cpu_started
        self.cores = self.cpu_seconds / self.seconds if self.seconds > 0 else 0.0


# --- an app server of its own ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def copy_shipped_models(destination: Path) -> Path:
    """A copy of the shipped models (.keras, .json, .tflite) in `destination`, for a server's scratch store."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in (PROJECT_ROOT / "models").iterdir():
        if path.suffix in (".keras", ".json", ".tflite") and not path.name.startswith(".") and ".tmp" not in path.name:
            shutil.copy2(path, destination / path.name)
    return destination


def start_app(port: int, *, script: str = "app.py", env: dict[str, str] | None = None, cores: str | None = None,
              log_path: Path | None = None) -> subprocess.Popen:
    """`streamlit run script` on 127.0.0.1:`port` from the project root, with `env` added to this environment; with
    `cores` ("0", "0,1") under `taskset -c cores`, as a host with fewer cores would run it. Returns at once."""
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless=true", f"--server.port={port}",
               "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"]
    if cores is not None:
        command = ["taskset", "-c", cores, *command]
    output = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
                                stdout=output, stderr=subprocess.STDOUT if log_path else subprocess.DEVNULL)
    finally:
        if log_path:
            output.close()  # the server has its own copy of the file


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    """Until something listens on `port` (the server process is up, maybe before it serves pages)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} before it listened")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def wait_for_health(port: int, server: subprocess.Popen, timeout: float = 90) -> None:
    """Until the server answers /_stcore/health (it is up, as a hosted app is when a visitor arrives)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} before it answered")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"no health answer on port {port} within {timeout} s")


def stop_app(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
