"""Memory of the app's server process: while it trains the strong CNN, or after a visitor browses every page.

A fresh `streamlit run app.py` serves a scratch model store (MNIST_LAB_MODELS_DIR in a temporary folder, so
nothing is added to models/). The server's VmRSS and VmHWM (its peak RSS since it started) are read from
/proc/PID/status, and /proc/PID/maps says whether TensorFlow's libraries were ever mapped into it.

`--scenario train` (the default): headless Chromium opens the Train page, picks the "strong" preset, sets the
epochs (1 by default: the whole 60,000 images with augmentation, then the test-set evaluation and the save the
app does at the end of every job), presses Start and watches until the job has finished.

`--scenario lifecycle` (issue 18's goals): the server and its training workers (its child processes) through a
training's life: a visitor opens the Train page (a worker warms up), starts the default preset, watches it, goes
to the Draw page when it has ended, and the idle time (MNIST_LAB_WORKER_IDLE_S and MNIST_LAB_EXPLAINER_IDLE_S, 20 s
here) passes. Sampled every
0.25 s: the server's RSS (goal <= 350 MB while a job trains) and server + workers (goal <= 400 MB once the idle
time has passed). Also click -> first batch shown, with a cold worker (Start at once on a fresh server) and a
warm one (Start again after the worker has been ready).

`--scenario browse` (issue 18's goal, <= 300 MB): the store holds the shipped models (both, with their .tflite);
one visitor opens Home, Dataset, Draw (draws a "1" with the mouse and waits for the prediction) and Models (the
evaluation of the active model, strong-cnn, on the 10,000 test images), then evaluates the cnn too.

Run from the project root (train: about 2-3 minutes on 2 cores for one epoch; browse: under a minute; both need
chromium and playwright):

    .venv/bin/python bench/bench_memory.py
    .venv/bin/python bench/bench_memory.py --epochs 2
    .venv/bin/python bench/bench_memory.py --scenario browse
    .venv/bin/python bench/bench_memory.py --scenario lifecycle
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib
from bench_startup import CHROMIUM_ARGS, tensorflow_libraries
from benchlib import copy_shipped_models, free_port, print_header, print_table, start_app, stop_app, verdict, wait_for_port

TARGET_BYTES = 1.2e9  # 1.2 GB (decimal, the stricter reading: 1,144 MiB)
BROWSE_TARGET_BYTES = 300e6  # issue 18: the server after browsing, both shipped models (286 MiB)
TRAINING_TARGET_BYTES = 350e6  # issue 18: the server while a job trains
IDLE_TARGET_BYTES = 400e6  # issue 18: server and workers once a job has ended and the idle time has passed
IDLE_SECONDS = 20
APP_TIMEOUT_MS = 120_000


def memory_of(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of process `pid` in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {key: int(re.search(rf"{key}:\s+(\d+) kB", status).group(1)) / 1024 for key in ("VmRSS", "VmHWM")}
    return values["VmRSS"], values["VmHWM"]


class Sampler(threading.Thread):
    """Reads the server's memory every `interval` seconds until stopped; keeps the highest RSS seen."""

    def __init__(self, pid: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.highest_rss = 0.0
        self.samples: list[tuple[float, float]] = []
        self._done = threading.Event()

    def run(self) -> None:
        started = time.perf_counter()
        while not self._done.wait(self.interval):
            try:
                rss, _ = memory_of(self.pid)
            except (OSError, AttributeError):
                return
            self.highest_rss = max(self.highest_rss, rss)
            self.samples.append((time.perf_counter() - started, rss))

    def stop(self) -> None:
        self._done.set()
        self.join()


def wait_for_app(page, timeout: int = APP_TIMEOUT_MS) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', state="attached",
                           timeout=timeout)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached",
                           timeout=timeout)


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Tab")  # commits the value
    wait_for_app(page)


def choose_strong_preset(page, epochs: int, train_size: int) -> None:
    page.get_by_role("combobox", name=re.compile("Preset")).click()
    page.get_by_role("option", name=re.compile(r"^Strongest")).click()
    wait_for_app(page)
    set_number(page, "Epochs", epochs)
    if train_size != 60_000:
        set_number(page, "Training images", train_size)


def choose_model(page, label: str, name: str, scope) -> None:
    """Pick `name` in the select box labelled `label` inside `scope` (the sidebar or the main area)."""
    scope.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(name)}( |$)")).first.click()
    wait_for_app(page)


def browse(args) -> None:
    """One visitor's tour of Home, Dataset, Draw (one prediction) and Models (evaluations), RSS after each."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(benchlib.PROJECT_ROOT / "tests" / "e2e"))
    from e2e_helpers import MAIN, draw_path, find_canvas, vertical_stroke, wait_for_prediction

    print_header("bench_memory --scenario browse")
    store = tempfile.TemporaryDirectory(prefix="mnist-lab-bench-")
    copy_shipped_models(Path(store.name))
    port = free_port()
    server = start_app(port, env={"MNIST_LAB_MODELS_DIR": store.name})
    rows = []

    def record(moment: str) -> None:
        rows.append([moment, *memory_of(server.pid), "yes" if tensorflow_libraries(server.pid) else "no"])

    try:
        wait_for_port(port, server)
        record("server started, no visitor yet")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for path, moment in (("/", "Home shown"), ("/dataset", "Dataset shown")):
                page.goto(f"http://localhost:{port}{path}")
                wait_for_app(page)
                record(moment)
            page.get_by_role("link", name="Draw").first.click()  # same session: keeps its active model
            wait_for_app(page)
            canvas = find_canvas(page)
            record("Draw shown, nothing drawn (strong-cnn loaded)")
            draw_path(page, canvas, vertical_stroke())
            wait_for_prediction(page, 1)
            wait_for_app(page)
            record("Draw: a drawn 1 predicted (strong-cnn)")
            page.get_by_role("link", name="Models").first.click()
            page.get_by_text("Hardest digit", exact=True).first.wait_for(timeout=APP_TIMEOUT_MS)
            wait_for_app(page)
            record("Models: strong-cnn evaluated on 10,000")
            choose_model(page, "Model", "cnn", page.locator(MAIN))  # waits for the run that evaluates it
            record("Models: cnn evaluated too")
            browser.close()
        time.sleep(2)
        record("2 s after the visitor left")
    finally:
        stop_app(server)
        store.cleanup()

    print("## RSS of the app's server while one visitor browses, both shipped models in the store\n")
    print_table(
        ["moment", "RSS MiB", "peak RSS so far (VmHWM) MiB", "TensorFlow mapped"],
        [[moment, f"{rss:,.0f}", f"{hwm:,.0f}", loaded] for moment, rss, hwm, loaded in rows],
    )
    after = max(row[1] for row in rows[:-1])
    print(f"highest RSS after a step {after:,.0f} MiB = {after * 2**20 / 1e6:.0f} MB (target <= 300 MB): "
          f"{verdict(after * 2**20 <= BROWSE_TARGET_BYTES)}")
    print(f"TensorFlow never loaded in the server: {verdict(all(row[3] == 'no' for row in rows))}")
    print(f"load average at the end: {benchlib.load_average():.2f}")


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


def family_rss(pid: int) -> tuple[float, float, int]:
    """(server RSS, server + children RSS, number of children) in MiB."""
    server = memory_of(pid)[0]
    children = []
    for child in children_of(pid):
        try:
            children.append(memory_of(child)[0])
        except (OSError, AttributeError):
            pass
    return server, server + sum(children), len(children)


def lifecycle(args) -> None:
    """A training's life seen from memory: Train page, cold and warm starts, the end, the idle time."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(benchlib.PROJECT_ROOT / "tests" / "e2e"))
    from e2e_helpers import MAIN

    print_header("bench_memory --scenario lifecycle")
    store = tempfile.TemporaryDirectory(prefix="mnist-lab-bench-")
    copy_shipped_models(Path(store.name))
    port = free_port()
    # Both kinds of TensorFlow process end when idle: the training worker, and the explainer the Draw page starts.
    server = start_app(port, env={"MNIST_LAB_MODELS_DIR": store.name, "MNIST_LAB_WORKER_IDLE_S": str(IDLE_SECONDS),
                                  "MNIST_LAB_EXPLAINER_IDLE_S": str(IDLE_SECONDS)})
    rows, starts = [], []
    peaks = {"server": 0.0, "family": 0.0}
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.25):
            try:
                alone, family, _ = family_rss(server.pid)
            except (OSError, AttributeError):
                return
            peaks["server"], peaks["family"] = max(peaks["server"], alone), max(peaks["family"], family)

    def record(moment: str) -> None:
        alone, family, workers = family_rss(server.pid)
        rows.append([moment, f"{alone:,.0f}", f"{family:,.0f}", workers,
                     "yes" if tensorflow_libraries(server.pid) else "no"])

    def start_and_time(page, label: str) -> None:
        started = time.perf_counter()
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(re.compile("img/s")).first.wait_for(timeout=APP_TIMEOUT_MS)
        starts.append([label, f"{time.perf_counter() - started:.2f}"])

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        wait_for_port(port, server)
        sampler.start()
        record("server started")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://localhost:{port}/train")
            wait_for_app(page)
            start_and_time(page, "cold: Start as the Train page opens (the worker still importing TensorFlow)")
            record("training (first job)")
            page.get_by_role("button", name="Stop training").click()
            page.locator(MAIN).get_by_text("Training stopped").wait_for(timeout=APP_TIMEOUT_MS)
            wait_for_app(page)
            time.sleep(3)
            peaks["server"] = peaks["family"] = 0.0
            start_and_time(page, "warm: Start again, the worker ready")
            page.locator(MAIN).get_by_text("Training finished").wait_for(timeout=900_000)
            wait_for_app(page)
            record("job ended (worker idle, waiting for the next)")
            training_peaks = dict(peaks)
            page.get_by_role("link", name="Draw").first.click()
            wait_for_app(page)
            # The Draw page starts the explainer (TensorFlow, for saliency maps): its idle time runs from when it is
            # ready, seconds later on a busy machine. Wait until every TensorFlow process has ended (the resource
            # tracker alone is left), or give up after a minute more than the idle time.
            arrived = time.monotonic()
            while (family_rss(server.pid)[2] > 1 and time.monotonic() - arrived < IDLE_SECONDS + 60):
                time.sleep(1)
            record(f"on the Draw page, {time.monotonic() - arrived:.0f} s later (idle time passed)")
            browser.close()
    finally:
        stop_sampling.set()
        stop_app(server)
        store.cleanup()

    print("## Server and training workers through a training's life (default preset)\n")
    print_table(["moment", "server RSS MiB", "server + children MiB", "child processes", "TensorFlow in the server"],
                rows)
    print("(the children: the training worker, and multiprocessing's resource tracker, ~12 MiB)")
    print(f"peak while the second job trained: server {training_peaks['server']:,.0f} MiB "
          f"({verdict(training_peaks['server'] * 2**20 <= TRAINING_TARGET_BYTES)} <= 350 MB), server + worker "
          f"{training_peaks['family']:,.0f} MiB")
    idle = float(rows[-1][2].replace(",", ""))
    print(f"server + workers after the idle time: {idle:,.0f} MiB ({verdict(idle * 2**20 <= IDLE_TARGET_BYTES)} "
          "<= 400 MB)\n")
    print_table(["click -> first batch shown in Chromium", "seconds"], starts)
    print(f"load average at the end: {benchlib.load_average():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("train", "browse", "lifecycle"), default="train")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=60_000, help="fewer images only to try the script out")
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds of training")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    args = parser.parse_args()
    if args.scenario == "browse":
        browse(args)
        return
    if args.scenario == "lifecycle":
        lifecycle(args)
        return

    from playwright.sync_api import sync_playwright

    print_header("bench_memory")
    port = free_port()
    store = tempfile.TemporaryDirectory(prefix="mnist-lab-bench-")
    server = start_app(port, env={"MNIST_LAB_MODELS_DIR": store.name})
    rows = []
    sampler = Sampler(server.pid)
    try:
        wait_for_port(port, server)
        sampler.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://localhost:{port}/dataset")
            wait_for_app(page)
            rows.append(["Dataset page shown (no TensorFlow)", *memory_of(server.pid)])
            page.goto(f"http://localhost:{port}/train")
            wait_for_app(page)
            choose_strong_preset(page, args.epochs, args.train_size)
            rows.append(["Train page shown, strong preset picked", *memory_of(server.pid)])
            page.get_by_role("button", name="Start training").click()
            started = time.perf_counter()
            outcome = page.get_by_text(re.compile(r"Training (finished|stopped|failed)"))
            outcome.first.wait_for(state="visible", timeout=args.timeout * 1000)
            seconds = time.perf_counter() - started
            message = outcome.first.inner_text()
            rows.append([f"job ended after {seconds:.0f} s", *memory_of(server.pid)])
            browser.close()
    finally:
        sampler.stop()
        stop_app(server)
        store.cleanup()

    peak = max(row[2] for row in rows)
    print(f"## Peak RSS of the app's server while it trains the strong CNN ({args.epochs} epoch(s), "
          f"{args.train_size:,} images)\n")
    print(f"job: {message}\n")
    print_table(
        ["moment", "RSS MiB", "peak RSS so far (VmHWM) MiB"],
        [[moment, f"{rss:,.0f}", f"{hwm:,.0f}"] for moment, rss, hwm in rows],
    )
    print(f"peak RSS {peak:,.0f} MiB = {peak * 2**20 / 1e9:.2f} GB (target <= 1.2 GB = "
          f"{TARGET_BYTES / 2**20:,.0f} MiB): {verdict(peak * 2**20 <= TARGET_BYTES)}")
    print(f"highest RSS sampled every 0.25 s: {sampler.highest_rss:,.0f} MiB")
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
