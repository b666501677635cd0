"""Browser tests: one `streamlit run app.py` per session, driven by Debian's Chromium through Playwright.

Chromium lives at /usr/bin/chromium (or $CHROMIUM_PATH). Without it every test here skips, unless
MNIST_LAB_REQUIRE_BROWSER=1 (set by CI), which turns the skip into a failure.
Helpers the tests share (wait_for_app, open_page, screenshot, drawing) are in e2e_helpers.py.
The server gets its own copy of the shipped models (MNIST_LAB_MODELS_DIR) and its own data folder
(MNIST_LAB_DATA_DIR), so tests that train, delete or save drawings never touch the repository's models/ or userdata/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODELS_DIR = PROJECT_ROOT / "models"
CHROMIUM_PATH = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("MNIST_LAB_REQUIRE_BROWSER") == "1"

SERVER_START_TIMEOUT_S = 60
VIEWPORT = {"width": 1400, "height": 1000}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOG_TAIL_LINES = 60


def _browser_unavailable_reason() -> str | None:
    if not (CHROMIUM_PATH.is_file() and os.access(CHROMIUM_PATH, os.X_OK)):
        return f"Chromium not found at {CHROMIUM_PATH}; enable browser tests with: sudo apt-get install chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing; install requirements-test.txt (bash scripts/test.sh does)"
    return None


@pytest.fixture(scope="session", autouse=True)
def _require_browser():
    """Skip every browser test when Chromium is missing; fail instead when the run demands a browser."""
    reason = _browser_unavailable_reason()
    if reason is None:
        return
    if REQUIRE_BROWSER:
        pytest.fail(f"MNIST_LAB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


# --- the Streamlit server -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _copy_shipped_models(destination: Path) -> None:
    for path in sorted(SHIPPED_MODELS_DIR.glob("*")):
        # skip the store's half-written temporary files (a training may be saving right now)
        if path.suffix in (".keras", ".tflite", ".json") and ".tmp" not in path.name and not path.name.startswith("."):
            shutil.copy2(path, destination / path.name)


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


_server_logs: list[Path] = []
_server_processes: dict[str, subprocess.Popen] = {}  # base URL -> its streamlit process


def _start_server(tmp_path_factory, stack: contextlib.ExitStack, extra_env: dict[str, str] | None = None) -> str:
    """Start one `streamlit run app.py` on a free port with a scratch copy of the shipped models.

    Returns its base URL (no trailing slash) once /_stcore/health answers 200; `stack` stops it.
    """
    if not (PROJECT_ROOT / "app.py").is_file():
        pytest.fail(f"{PROJECT_ROOT / 'app.py'} does not exist", pytrace=False)

    models_dir = tmp_path_factory.mktemp("models")
    _copy_shipped_models(models_dir)
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    _server_logs.append(log_path)
    port = _free_port()
    env = {
        **os.environ,
        "MNIST_LAB_MODELS_DIR": str(models_dir),
        "MNIST_LAB_DATA_DIR": str(tmp_path_factory.mktemp("userdata")),  # collections of drawings, never userdata/
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless=true",
        f"--server.port={port}",
        "--server.address=127.0.0.1",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
        # the public config hides error details; tests want the real message when a page breaks
        "--client.showErrorDetails=full",
    ]
    base_url = f"http://127.0.0.1:{port}"
    # a file, not a pipe: nobody reads a pipe while tests run, and a full pipe would block the server
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(_stop, process)
    _server_processes[base_url] = process

    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not _health_ok(f"{base_url}/_stcore/health"):
        if process.poll() is not None:
            pytest.fail(
                f"streamlit exited with code {process.returncode} before serving; log tail:\n{_log_tail(log_path)}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"streamlit did not answer {base_url}/_stcore/health within {SERVER_START_TIMEOUT_S} s; "
                f"log tail:\n{_log_tail(log_path)}",
                pytrace=False,
            )
        time.sleep(0.25)
    return base_url


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> str:
    """The base URL (no trailing slash) of the one server the browser tests share."""
    with contextlib.ExitStack() as stack:
        yield _start_server(tmp_path_factory, stack)


@pytest.fixture
def fresh_app_server(tmp_path_factory) -> str:
    """A server of its own, for a test about what a just-started process does; stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield _start_server(tmp_path_factory, stack)


@pytest.fixture
def ray_app_server(tmp_path_factory, ray_head) -> tuple[str, int]:
    """(base URL, process id) of a server of its own whose training runs on the session's Ray head: it gets
    MNIST_LAB_RAY_ADDRESS and the head's token (tests/conftest.py's ray_head), nothing else; stopped after the test."""
    with contextlib.ExitStack() as stack:
        url = _start_server(tmp_path_factory, stack,
                            extra_env={"MNIST_LAB_RAY_ADDRESS": ray_head.address, **ray_head.environment()})
        yield url, _server_processes[url].pid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the server log tail to failing browser tests, and remember the outcome for the page fixture."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
    if report.failed:
        for log_path in _server_logs:
            report.sections.append((f"streamlit server log (tail of {log_path})", _log_tail(log_path)))


# --- the browser ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait for what a page should show; a loaded 2-core machine reruns a page in seconds, not
    # Playwright's default 5 s. A wait ends as soon as the page shows it, so this only costs time on failure.
    expect.set_options(timeout=30_000)

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request, tmp_path_factory):
    """A fresh browser tab (own cookies, so its own Streamlit session); a failing test leaves a screenshot."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    console: list[str] = []  # what the page's scripts said (the canvas tells when it mounts and resends)
    tab.on("console", lambda message: console.append(f"{time.strftime('%H:%M:%S')} {message.type}: {message.text}"))
    tab.on("pageerror", lambda error: console.append(f"{time.strftime('%H:%M:%S')} uncaught: {error}"))
    yield tab
    call_report = getattr(request.node, "report_call", None)
    if call_report is not None and call_report.failed:
        print("the page's console (last 40):\n" + "\n".join(console[-40:]), file=sys.stderr)
        failure_dir = tmp_path_factory.getbasetemp() / "e2e-failures"
        failure_dir.mkdir(exist_ok=True)
        path = failure_dir / f"{request.node.name}.png"
        try:
            tab.screenshot(path=str(path), full_page=True)
            print(f"screenshot of the failing page: {path}", file=sys.stderr)
        except Exception as error:  # the page may be gone; the test's own failure matters more
            print(f"could not take a failure screenshot: {error}", file=sys.stderr)
    context.close()
