"""Several visitors drawing at once, with and without a training job running: how long each waits for its answer.

The scenario of tests/e2e/test_load.py, run standalone: its own `streamlit run app.py` (on a scratch copy of the
shipped models), Debian's Chromium through Playwright, one browser context (own Streamlit session) per visitor on
/draw. Each round every visitor draws a "1" or a "0" with the mouse, one right after the other, and the time from
mouse-up to "Prediction: D" on the page is taken in the page itself. First without training, then while the seed
CNN trains on all 60,000 images (started from the Train page by one more visitor, stopped at the end).

Run from the project root (about two minutes):

    .venv/bin/python bench/bench_load.py
    .venv/bin/python bench/bench_load.py --sessions 8 --rounds 4
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import print_header, print_table

E2E_DIR = benchlib.PROJECT_ROOT / "tests" / "e2e"
sys.path.insert(0, str(E2E_DIR))

from test_load import (  # noqa: E402  (tests/e2e must be on sys.path first)
    KeptTraining,
    first_training_size,
    images_per_second,
    latency_summary,
    new_visitor,
    run_drawing_load,
)

SERVER_START_TIMEOUT_S = 60


def browser_settings() -> tuple[str, list[str]]:
    """Chromium's path and arguments, as the browser tests use them (tests/e2e/conftest.py)."""
    spec = importlib.util.spec_from_file_location("e2e_conftest", E2E_DIR / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    return str(conftest.CHROMIUM_PATH), list(conftest.CHROMIUM_ARGS)


def start_server(models_dir: Path, log_path: Path, cores: str | None = None) -> tuple[subprocess.Popen, str]:
    """A fresh `streamlit run app.py` on a free port with a copy of the shipped models in `models_dir`; with
    `cores` ("0", "0,1") the server runs under `taskset -c cores`, as a host with fewer cores would run it."""
    port = benchlib.free_port()
    server = benchlib.start_app(port, env={"MNIST_LAB_MODELS_DIR": str(benchlib.copy_shipped_models(models_dir))},
                                cores=cores, log_path=log_path)
    try:
        benchlib.wait_for_health(port, server, timeout=SERVER_START_TIMEOUT_S)
    except (RuntimeError, TimeoutError) as error:
        server.kill()
        raise SystemExit(f"the app server did not start ({error}); see {log_path}") from error
    return server, f"http://127.0.0.1:{port}"


def row(scenario: str, sessions: int, drawings, seconds: float, training: str) -> list[object]:
    summary = latency_summary(drawings)
    wrong = sum(drawing.predicted != drawing.expected for drawing in drawings)
    figures = [f"{summary[key]:.0f}" for key in ("p50", "p95", "max")] if summary["count"] else ["-"] * 3
    return [scenario, sessions, f"{summary['count']}/{len(drawings)}", wrong, *figures, f"{seconds:.0f}", training]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="skip the rounds without training")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    print_header(f"Load: {args.sessions} visitors drawing at once, {args.rounds} drawings each, without and with "
                 "training")
    chromium_path, chromium_args = browser_settings()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        server, base_url = start_server(Path(scratch), Path(scratch) / "streamlit.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                                     args=chromium_args)
                trainer = new_visitor(browser, base_url, "/train")
                visitors = [new_visitor(browser, base_url, "/draw") for _ in range(args.sessions)]
                if not args.no_baseline:
                    started = time.monotonic()
                    drawings = run_drawing_load(visitors, args.rounds)
                    rows.append(row("no training", args.sessions, drawings, time.monotonic() - started, "-"))

                training = KeptTraining(trainer, *first_training_size())
                started = time.monotonic()
                drawings = run_drawing_load(visitors, args.rounds, training)
                seconds = time.monotonic() - started
                described = (f"seed CNN, batch 128: {images_per_second(trainer)} img/s at the end"
                             + (f" ({len(training.started)} runs)" if len(training.started) > 1 else ""))
                rows.append(row("while training", args.sessions, drawings, seconds, described))
                if training.running():
                    training.stop()
                browser.close()
        finally:
            server.terminate()
            server.wait(30)

    print("Latency from mouse-up to 'Prediction: D' on the page, in ms (timed in the browser).")
    print_table(["scenario", "sessions", "answered", "wrong", "p50 ms", "p95 ms", "max ms", "wall s", "training"],
                rows)


if __name__ == "__main__":
    main()
