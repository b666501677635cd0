"""From the click on "Start training" to "Training finished" on the Train page, as a new visitor sees it.

Each run starts a fresh `streamlit run app.py` (a scratch copy of the shipped models), opens the Train page in
headless Chromium with the preset it preselects (the default, "fast"), optionally switches the Precision setting,
clicks Start training and waits for the saved-model message. The times are taken in the page itself: the click
and the moment "Training finished" appears (performance.now() of one page). The server's own part of the run
(start-up, each epoch, evaluation, save) is in the saved model's JSON and in bench_fast_preset.py's breakdown. The CPU
seconds each side used from the click to the message are counted too: the server, its workers, and Chromium, which
here shares the server's cores (a visitor's browser runs on their own device; a one-machine classroom's does not).

Run from the project root:

    .venv/bin/python bench/bench_train_click.py                       # the default precision, 5 runs
    .venv/bin/python bench/bench_train_click.py --precision float32
    .venv/bin/python bench/bench_train_click.py --cores 0             # the server pinned to one core (taskset)
    .venv/bin/python bench/bench_train_click.py --read-seconds 8      # click after 8 s on the page (worker warm)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import benchlib
from bench_load import browser_settings, start_server
from benchlib import median, print_header, print_table

# Set before the click: the click's time, and the time the page first shows the finished message.
CLICK_PROBE = """
(() => {
  const probe = window.__trainProbe = {clickedAt: null, finishedAt: null, text: null};
  addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (probe.clickedAt === null && button && button.textContent.includes("Start training")) {
      probe.clickedAt = performance.now();
    }
  }, true);
  const look = () => {
    if (probe.clickedAt === null || probe.finishedAt !== null) return;
    const main = document.querySelector('[data-testid="stMain"]');
    const found = main && main.textContent.match(/Training (finished|stopped|failed)[^%]*%?\\.?/);
    if (found) { probe.finishedAt = performance.now(); probe.text = found[0]; }
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""
FINISH_TIMEOUT_MS = 300_000
PRECISION_LABELS = {"float32": "exact (float32)", "bfloat16": "faster (bfloat16)"}  # as pages/train.py shows them


def one_run(playwright, chromium: tuple[str, list[str]], precision: str | None, cores: str | None,
            read_seconds: float = 0.0) -> dict:
    from e2e_helpers import open_page, wait_for_app  # tests/e2e is on sys.path through bench_load

    with tempfile.TemporaryDirectory(prefix="bench-click-") as scratch:
        models_dir = Path(scratch)
        server, base_url = start_server(models_dir, models_dir / "streamlit.log", cores=cores)
        try:
            browser = playwright.chromium.launch(executable_path=chromium[0], headless=True, args=chromium[1])
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(120_000)
            open_page(page, base_url, "/train")
            if precision is not None:
                page.get_by_role("radio", name=PRECISION_LABELS[precision], exact=True).check(force=True)
                wait_for_app(page)
            # A visitor who reads the page first clicks when the worker the page warms up has TensorFlow loaded.
            page.wait_for_timeout(read_seconds * 1000)
            page.evaluate(CLICK_PROBE)
            load = benchlib.load_average()
            cpu_before = benchlib.cpu_seconds(server.pid, Path(chromium[0]).name)
            page.get_by_role("button", name="Start training").click()
            page.wait_for_function("window.__trainProbe.finishedAt !== null", timeout=FINISH_TIMEOUT_MS,
                                   polling="raf")
            cpu_after = benchlib.cpu_seconds(server.pid, Path(chromium[0]).name)  # before the idle worker may exit
            probe = page.evaluate("window.__trainProbe")
            browser.close()
        finally:
            server.terminate()
            server.wait(30)
        saved = [path for path in models_dir.glob("*.json") if not json.loads(path.read_text()).get("shipped")]
        info = json.loads(saved[0].read_text()) if saved else {}
    return {
        "seconds": (probe["finishedAt"] - probe["clickedAt"]) / 1000,
        # CPU seconds from the click to the message: the server, its workers, the browser (which a visitor's own
        # device runs, but the bench runs beside the server on the same cores, as on a one-machine classroom).
        "cpu": {key: cpu_after[key] - cpu_before[key] for key in cpu_after},
        "message": probe["text"],
        "load": load,
        "info": info,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--precision", choices=("float32", "bfloat16"),
                        help="switch the Precision setting before the click (default: leave the preset's)")
    parser.add_argument("--cores", help="run the server under `taskset -c CORES` (for example 0: one core)")
    parser.add_argument("--read-seconds", type=float, default=0.0,
                        help="seconds on the Train page before the click (default 0: at once, the worker still cold)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    print_header("Train page: click 'Start training' (default preset) -> 'Training finished' in Chromium",
                 with_tensorflow=False)
    chromium = browser_settings()
    rows, times = [], []
    with sync_playwright() as playwright:
        for run in range(1, args.runs + 1):
            result = one_run(playwright, chromium, args.precision, args.cores, args.read_seconds)
            info = result["info"]
            config = info.get("config", {})
            epochs = info.get("history", [])
            times.append(result["seconds"])
            rows.append([
                run, f"{result['seconds']:.2f}", f"{info.get('train_seconds', float('nan')):.2f}",
                " + ".join(f"{epoch['seconds']:.2f}" for epoch in epochs),
                f"{info.get('test_accuracy', float('nan')):.4f}", config.get("architecture", "?"),
                config.get("precision", "?"), f"{result['load']:.2f}",
                " / ".join(f"{result['cpu'][key]:.1f}" for key in ("server", "workers", "browser")),
                f"{result['cpu']['browser'] / result['seconds']:.2f}",
            ])
            print(f"run {run}: {result['seconds']:.2f} s, {result['message']}", flush=True)
    print()
    print_table(["run", "click -> finished s", "train() s", "epochs s", "test accuracy", "architecture",
                 "precision", "load at click", "CPU s: server / workers / Chromium", "Chromium's cores"], rows)
    print(f"median click -> 'Training finished': {median(times):.2f} s over {len(times)} runs"
          + (f" (server on cores {args.cores})" if args.cores else "")
          + (f", clicked {args.read_seconds:g} s after the page opened" if args.read_seconds else ", clicked at once"))
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
