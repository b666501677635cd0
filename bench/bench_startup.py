"""Cold start: `streamlit run app.py` -> the Dataset page rendered in headless Chromium, and no TensorFlow loaded;
then, for every page, a fresh server's first request -> what that page is for (the Train page's Start button, ...).

Each run starts a fresh server, opens http://localhost:PORT/dataset directly (a visitor following a link) in a
fresh browser context (empty HTTP cache: a first visit) and stops the clock when the page's title "Dataset" and
its digit grid are visible. The browser process is started before the clock: it stands
for the visitor's browser, already open. Then the server's /proc/PID/maps is read: a loaded libtensorflow means
some import on the way pulled TensorFlow in.

The first-visit table starts a fresh server per page and run, waits until it answers /_stcore/health (the server
is up, as a hosted app is when a visitor arrives), then opens the page's URL directly and stops the clock when the
page's own content is visible: the goal for every page is <= 1.5 s (issue 9). A two-line Streamlit app, served the
same way, gives the floor under every page: Streamlit's own frontend starting on an empty cache.

Run from the project root (about two minutes; needs Debian's chromium and the playwright package):

    .venv/bin/python bench/bench_startup.py
    .venv/bin/python bench/bench_startup.py --runs 5 --chromium /usr/bin/chromium
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import (
    free_port, median, print_header, print_table, start_app, stop_app, verdict, wait_for_health, wait_for_port,
)

TARGET_SECONDS = 5.0
FIRST_VISIT_TARGET_SECONDS = 1.5
# page URL -> (what shows that the page is ready for the visitor, a Playwright selector)
FIRST_VISIT_MARKS = {
    "/": ("the dataset figures", '[data-testid="stMetric"]'),
    "/dataset": ("the digit grid", ".digit-grid img"),
    "/train": ("the Start training button", 'button:has-text("Start training")'),
    "/draw": ("the drawing canvas", '[data-testid="stMain"] canvas'),
    "/models": ("the table of models", '[data-testid="stDataFrame"]'),
}
# The floor under every page: a two-line Streamlit app (a title and a metric) served the same way. What it takes is
# Streamlit's own frontend starting on an empty cache (its bundle, the websocket, the element chunks), not this app.
FLOOR_APP = 'import streamlit as st\n\nst.title("Floor")\nst.metric("Images", "70,000")\n'
FLOOR_PATH = "(two-line app)"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def tensorflow_libraries(pid: int) -> list[str]:
    """TensorFlow's shared libraries mapped into process `pid` ([] when TensorFlow was never imported)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return sorted({line.split()[-1] for line in maps.splitlines() if "tensorflow" in line and "/" in line})


def one_cold_start(browser) -> dict:
    port = free_port()
    started = time.perf_counter()
    server = start_app(port)
    try:
        wait_for_port(port, server)
        listening = time.perf_counter() - started
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"http://localhost:{port}/dataset")
        page.get_by_role("heading", name="Dataset").first.wait_for(state="visible", timeout=60_000)
        title = time.perf_counter() - started
        page.locator(FIRST_VISIT_MARKS["/dataset"][1]).first.wait_for(state="visible", timeout=60_000)
        grid = time.perf_counter() - started
        # Let the script run finish (the rest of the page) before looking at what the server has loaded.
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached",
                               timeout=60_000)
        finished = time.perf_counter() - started
        libraries = tensorflow_libraries(server.pid)
        context.close()
        return {"listening": listening, "title": title, "grid": grid, "finished": finished, "tensorflow": libraries}
    finally:
        stop_app(server)


def one_first_visit(browser, path: str, floor_script: Path | None = None) -> float:
    """Seconds from the first request of a fresh, healthy server for `path` to that page's content shown (with
    `floor_script`: the first request of a server running that script instead, to its metric shown)."""
    port = free_port()
    server = start_app(port, script=str(floor_script or "app.py"))
    try:
        wait_for_health(port, server)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        started = time.perf_counter()
        page.goto(f"http://127.0.0.1:{port}{'/' if floor_script else path}")
        mark = '[data-testid="stMetric"]' if floor_script else FIRST_VISIT_MARKS[path][1]
        page.locator(mark).first.wait_for(state="visible", timeout=60_000)
        seconds = time.perf_counter() - started
        context.close()
        return seconds
    finally:
        stop_app(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    parser.add_argument("--first-visit-runs", type=int, default=3, help="fresh servers per page (0: skip)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    print_header("bench_startup")
    rows, grids, loaded = [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            for run in range(args.runs):
                result = one_cold_start(browser)
                grids.append(result["grid"])
                loaded.extend(result["tensorflow"])
                rows.append([
                    run + 1, f"{result['listening']:.2f}", f"{result['title']:.2f}", f"{result['grid']:.2f}",
                    f"{result['finished']:.2f}", "yes" if result["tensorflow"] else "no",
                ])
            # Interleaved (page after page, round after round), so a busy moment of the machine spreads over pages.
            first_visits = {path: [] for path in [*FIRST_VISIT_MARKS, FLOOR_PATH]}
            with tempfile.TemporaryDirectory() as scratch:
                floor_script = Path(scratch) / "floor.py"
                floor_script.write_text(FLOOR_APP, encoding="utf-8")
                for _ in range(args.first_visit_runs):
                    for path in first_visits:
                        first_visits[path].append(
                            one_first_visit(browser, path, floor_script if path == FLOOR_PATH else None))
        finally:
            browser.close()
    print("## Cold start: process start -> Dataset page (seconds since `streamlit run`)\n")
    print_table(["run", "port open", "title shown", "grid shown", "script run done", "TensorFlow loaded"], rows)
    cold = median(grids)
    print(f"cold start to the grid: median {cold:.2f} s, worst {max(grids):.2f} s (target <= {TARGET_SECONDS:.0f} s, "
          f"judged on the median): {verdict(cold <= TARGET_SECONDS)}")
    print(f"Dataset page without TensorFlow: {verdict(not loaded)}"
          + (f" (loaded: {', '.join(sorted(set(loaded)))})" if loaded else ""))
    if args.first_visit_runs:
        print("\n## First request on a fresh server -> the page's content (seconds, server already healthy)\n")
        first_rows = [
            [path, mark, " / ".join(f"{seconds:.2f}" for seconds in first_visits[path]),
             f"{median(first_visits[path]):.2f}", verdict(median(first_visits[path]) <= FIRST_VISIT_TARGET_SECONDS)]
            for path, (mark, _) in [*FIRST_VISIT_MARKS.items(), (FLOOR_PATH, ("its metric", None))]
        ]
        print_table(["page", "until", "runs", "median", f"<= {FIRST_VISIT_TARGET_SECONDS} s"], first_rows)
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
