"""Drawing latency as a person feels it: mouse-up on the canvas -> "Prediction: D" on the page, in Chromium.

One `streamlit run app.py` (a scratch copy of the shipped models), one visitor on /draw with the active model of the
sidebar (the best shipped model), no training. Each drawing is a "1" or a "0" drawn with the mouse, timed inside the
page (performance.now() at the pointerup and when the text appears, tests/e2e/test_load.py's probe), then Clear.
The first drawings warm the page up (the model and the chart libraries load) and are not counted.

Run from the project root (about a minute):

    .venv/bin/python bench/bench_draw.py
    .venv/bin/python bench/bench_draw.py --drawings 24 --model cnn
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import benchlib
from benchlib import median, percentile, print_header, print_table, verdict

E2E_DIR = benchlib.PROJECT_ROOT / "tests" / "e2e"
sys.path.insert(0, str(E2E_DIR))

from bench_load import browser_settings, start_server  # noqa: E402
from test_load import clear_canvas, collect_answers, draw_digit, new_visitor  # noqa: E402

P50_TARGET_MS, P95_TARGET_MS = 150, 300
WARM_UP_DRAWINGS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drawings", type=int, default=12)
    parser.add_argument("--model", help="active model to pick in the sidebar (default: the app's default)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    print_header(f"Draw: mouse-up -> prediction shown, {args.drawings} drawings in Chromium")
    chromium_path, chromium_args = browser_settings()
    latencies, wrong = [], 0
    with tempfile.TemporaryDirectory(prefix="bench-draw-") as scratch:
        server, base_url = start_server(Path(scratch), Path(scratch) / "streamlit.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                                     args=chromium_args)
                page = new_visitor(browser, base_url, "/draw")
                if args.model:
                    page.get_by_label("Active model").click()
                    page.get_by_role("option", name=args.model).first.click()
                for number in range(WARM_UP_DRAWINGS + args.drawings):
                    digit = number % 2
                    draw_digit(page, digit)
                    [drawing] = collect_answers([page], [digit], number)
                    if number >= WARM_UP_DRAWINGS:
                        latencies.append(drawing.latency_ms)
                        wrong += drawing.predicted != digit
                    clear_canvas(page)
                browser.close()
        finally:
            server.terminate()
            server.wait(30)

    answered = [latency for latency in latencies if latency is not None]
    p50, p95 = median(answered), percentile(answered, 0.95)
    print_table(["drawings", "answered", "wrong", "p50 ms", "p95 ms", "min ms", "max ms"],
                [[len(latencies), len(answered), wrong, f"{p50:.0f}", f"{p95:.0f}", f"{min(answered):.0f}",
                  f"{max(answered):.0f}"]])
    print(f"p50 <= {P50_TARGET_MS} ms: {verdict(p50 <= P50_TARGET_MS)}; p95 <= {P95_TARGET_MS} ms: "
          f"{verdict(p95 <= P95_TARGET_MS)}")
    print(f"load average at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
