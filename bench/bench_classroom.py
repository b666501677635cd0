"""A classroom on one server: 20 browser sessions at once, then the same app squeezed onto one CPU.

Part 1 (`--sessions 20`): one `streamlit run app.py` (scratch copy of the shipped models), one Chromium, a context
(own cookies: its own visitor) per student. Five students queue a small training each, one after the other (all but
the first wait in the queue); eight draw digits with the mouse and read the prediction (mouse-up -> "Prediction: D"
timed in the page); the rest browse the Dataset page ("Draw again"). It runs until every queued training has ended
and at least `--rounds` rounds were drawn. Recorded: drawing latency while trainings run, the server's peak RSS
and the peak of the server and its training workers together (sampled from /proc), page errors, and whether every
queued training ran and was saved in the order it was queued.

Part 2 (`--squeeze`): the same app started under `taskset -c 0` (one CPU, as a small hosted container may get):
Home, Dataset, Draw (one drawing) and Train open without errors, and the time from Start to "Training finished"
with the default preset.

Run from the project root (several minutes; the machine should be otherwise idle):

    .venv/bin/python bench/bench_classroom.py
    .venv/bin/python bench/bench_classroom.py --squeeze-only
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import benchlib
from benchlib import percentile, print_header, print_table

E2E_DIR = benchlib.PROJECT_ROOT / "tests" / "e2e"
sys.path.insert(0, str(E2E_DIR))

from bench_load import browser_settings  # noqa: E402
from e2e_helpers import MAIN, exception_messages, expect, open_page, wait_for_app  # noqa: E402
from test_load import (  # noqa: E402
    clear_canvas,
    collect_answers,
    draw_digit,
    new_visitor,
    set_field,
    stop_if_running,
)

TRAINERS, DRAWERS = 5, 8
SMALL_TRAINING = {"architecture": "cnn", "train_size": 3000, "epochs": 1}


def rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) / 1024 if found else 0.0


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


class MemorySampler(threading.Thread):
    """The server's RSS and the server's plus its children's (the training workers), every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.server_peak = self.total_peak = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            server = rss_mib(self.pid)
            total = server + sum(rss_mib(child) for child in children_of(self.pid))
            self.server_peak = max(self.server_peak, server)
            self.total_peak = max(self.total_peak, total)

    def stop(self) -> None:
        self._done.set()
        self.join()


def start_server(models_dir: Path, log_path: Path, one_cpu: bool = False) -> tuple[subprocess.Popen, str]:
    """A fresh server on a copy of the shipped models, one job per visitor; on one core with `one_cpu`."""
    port = benchlib.free_port()
    server = benchlib.start_app(
        port, env={"MNIST_LAB_MODELS_DIR": str(benchlib.copy_shipped_models(models_dir)),
                   "MNIST_LAB_MAX_JOBS_PER_VISITOR": "1"},
        cores="0" if one_cpu else None, log_path=log_path)
    try:
        benchlib.wait_for_health(port, server)
    except (RuntimeError, TimeoutError) as error:
        server.kill()
        raise SystemExit(f"the app server did not start ({error}); see {log_path}") from error
    return server, f"http://127.0.0.1:{port}"


# Toasts (a refusal of Start is one) last a few seconds: keep the text of each one the page shows.
TOAST_PROBE = """
(() => {
  const seen = window.__toasts = [];
  new MutationObserver(() => {
    for (const toast of document.querySelectorAll('[data-testid="stToast"]')) {
      const text = toast.textContent.trim();
      if (text && !seen.includes(text)) seen.push(text);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
})();
"""


def queue_small_training(page, name: str) -> None:
    page.get_by_label("Architecture").click()
    page.get_by_role("option", name=re.compile(rf"^{SMALL_TRAINING['architecture']}:")).click()
    wait_for_app(page)
    set_field(page, "Training images", SMALL_TRAINING["train_size"])
    set_field(page, "Epochs", SMALL_TRAINING["epochs"])
    set_field(page, "Model name", name)
    page.evaluate(TOAST_PROBE)
    page.get_by_role("button", name="Start training").click()
    # It runs ("NAME · ... · started by you"), waits ("Your training NAME is number N in the queue") or has already
    # finished: a Start that did not take is said now, with what the page shows, instead of a classroom waiting for
    # it until the 30-minute deadline.
    taken = page.locator(MAIN).get_by_text(re.compile(
        rf"{re.escape(name)} · .* · started by you|Your training {re.escape(name)} is number \d+ in the queue"
        rf"|Training finished: saved as {re.escape(name)}"))
    try:
        expect(taken.first).to_be_visible(timeout=60_000)
    except AssertionError:
        shown = " ".join(page.locator(MAIN).inner_text().split())[:600]
        toasts = page.evaluate("window.__toasts")
        raise SystemExit(f"{name}: Start did not take within 60 s; toasts since the click: {toasts!r}; "
                         f"the page shows: {shown!r}") from None


def saved(models_dir: Path, name: str) -> dict | None:
    path = models_dir / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def classroom(browser, sessions: int, rounds: int) -> list[list[object]]:
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as scratch:
        models_dir = Path(scratch)
        server, base_url = start_server(models_dir, models_dir / "streamlit.log")
        sampler = MemorySampler(server.pid)
        sampler.start()
        pages = []
        try:
            trainers = [new_visitor(browser, base_url, "/train") for _ in range(TRAINERS)]
            drawers = [new_visitor(browser, base_url, "/draw") for _ in range(DRAWERS)]
            browsers = [new_visitor(browser, base_url, "/dataset") for _ in range(sessions - TRAINERS - DRAWERS)]
            for page in browsers:  # a random sample, redrawn each round
                page.get_by_text("Random", exact=True).click()
                wait_for_app(page)
            pages = trainers + drawers + browsers
            tag = uuid.uuid4().hex[:4]
            names = [f"class-{tag}-{index + 1}" for index in range(TRAINERS)]
            started = time.monotonic()
            for page, name in zip(trainers, names):
                queue_small_training(page, name)
            drawings, drawn_rounds = [], 0
            while drawn_rounds < rounds or not all(saved(models_dir, name) for name in names):
                training_now = any(
                    page.get_by_role("button", name="Stop training").is_enabled() for page in trainers
                    if page.get_by_role("button", name="Stop training").count())
                expected = [(index + drawn_rounds) % 2 for index in range(len(drawers))]
                for page, digit in zip(drawers, expected):
                    draw_digit(page, digit)
                for page in browsers:
                    page.get_by_role("button", name="Draw again").click()
                answers = collect_answers(drawers, expected, drawn_rounds)
                drawings += [(answer, training_now) for answer in answers]
                for page in drawers:
                    clear_canvas(page)
                drawn_rounds += 1
                if time.monotonic() - started > 1800:
                    raise SystemExit("the classroom did not finish its trainings within 30 minutes")
            seconds = time.monotonic() - started
            errors = sum(len(exception_messages(page)) for page in pages)
        finally:
            for page in pages[:TRAINERS]:
                stop_if_running(page)
            for page in pages:
                page.context.close()
            sampler.stop()
            server.terminate()
            server.wait(30)
        records = [saved(models_dir, name) for name in names]
        in_order = all(records) and [record["created"] for record in records] == sorted(
            record["created"] for record in records)
    while_training = [answer.latency_ms for answer, training in drawings if training and answer.latency_ms]
    wrong = sum(answer.predicted != answer.expected for answer, _ in drawings)
    unanswered = sum(answer.latency_ms is None for answer, _ in drawings)
    return [[
        sessions, drawn_rounds, len(drawings), unanswered, wrong,
        f"{statistics.median(while_training):.0f}" if while_training else "-",
        f"{percentile(while_training, 0.95):.0f}" if while_training else "-",
        f"{sampler.server_peak:,.0f}", f"{sampler.total_peak:,.0f}", errors,
        f"{sum(1 for record in records if record)}/{TRAINERS}" + (" in order" if in_order else " NOT in order"),
        f"{seconds:.0f}",
    ]]


def squeeze(browser) -> list[list[object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-squeeze-") as scratch:
        models_dir = Path(scratch)
        server, base_url = start_server(models_dir, models_dir / "streamlit.log", one_cpu=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(120_000)
            for path in ("/", "/dataset", "/draw"):
                started = time.perf_counter()
                open_page(page, base_url, path)
                rows.append([f"open {path}", f"{time.perf_counter() - started:.1f}", len(exception_messages(page))])
            from test_load import LATENCY_PROBE

            page.evaluate(LATENCY_PROBE)
            draw_digit(page, 1)
            [answer] = collect_answers([page], [1], 0)
            rows.append(["draw a 1 -> prediction", f"{(answer.latency_ms or float('nan')) / 1000:.2f}",
                         f"answer {answer.predicted}"])
            started = time.perf_counter()
            open_page(page, base_url, "/train")
            rows.append(["open /train", f"{time.perf_counter() - started:.1f}", len(exception_messages(page))])
            page.wait_for_timeout(20_000)  # the warm-up worker Train starts has imported TensorFlow by now
            started = time.perf_counter()
            page.get_by_role("button", name="Start training").click()
            page.locator(MAIN).get_by_text("Training finished").wait_for(timeout=900_000)
            finished = page.locator(MAIN).get_by_text(re.compile(r"Training finished.*")).first.inner_text()
            rows.append(["default preset: Start -> 'Training finished'", f"{time.perf_counter() - started:.1f}",
                         finished.split(", ")[-1].rstrip(".")])
            context.close()
        finally:
            server.terminate()
            server.wait(30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4, help="drawing rounds at least (more while trainings run)")
    parser.add_argument("--squeeze-only", action="store_true")
    parser.add_argument("--no-squeeze", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    print_header(f"Classroom: {args.sessions} sessions on one server; then one CPU")
    chromium_path, chromium_args = browser_settings()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True, args=chromium_args)
        if not args.squeeze_only:
            rows = classroom(browser, args.sessions, args.rounds)
            print(f"{TRAINERS} trainings queued ({SMALL_TRAINING}), {DRAWERS} students drawing, "
                  f"{args.sessions - TRAINERS - DRAWERS} browsing the Dataset page.")
            print_table(["sessions", "rounds", "drawings", "unanswered", "wrong", "p50 ms (training)",
                         "p95 ms (training)", "server peak MiB", "server+workers peak MiB", "page errors",
                         "trainings saved", "wall s"], rows)
        if not args.no_squeeze:
            print("One CPU (taskset -c 0):")
            print_table(["step", "seconds", "note"], squeeze(browser))
        browser.close()
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
