"""A big model store: listing it, and every page's run, with 10,000 saved models beside the shipped ones.

The store is a scratch folder (MNIST_LAB_MODELS_DIR): the shipped models plus N saved models, each a hard link to
the shipped cnn's .keras (so they cost no disk) and its own realistic metadata (3 epochs of history). Measured:

- `list_models`: the first listing (reads every JSON and checks every .keras), a kept one (the folder unchanged),
  and one after another process added a model;
- each page's script run through Streamlit's AppTest (the same script a browser's request runs, without the
  browser's drawing), the median of several reruns after a first run that loads TensorFlow, MNIST and the model;
- in headless Chromium against `streamlit run app.py`: a click on a page's link in the sidebar until that page's
  run has finished and its title shows (what a visitor waits for), the median over several rounds of all pages.

Run from the project root:

    .venv/bin/python bench/bench_store.py                  # 10,000 models
    .venv/bin/python bench/bench_store.py --models 0 --runs 5   # the shipped models alone, for comparison
    .venv/bin/python bench/bench_store.py --no-browser          # without Chromium
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import median, print_header, print_table, verdict

TARGET_SECONDS = 0.5
TITLES = {"home": "MNIST Lab", "dataset": "Dataset", "train": "Train", "draw": "Draw", "models": "Models"}
LINKS = {"home": "Home", "dataset": "Dataset", "train": "Train", "draw": "Draw", "models": "Models"}
PAGES = {"home": "pages/home.py", "dataset": "pages/dataset.py", "train": "pages/train.py", "draw": "pages/draw.py",
         "models": "pages/models.py"}


def fill_store(folder: Path, count: int) -> None:
    """The shipped models plus `count` saved ones, as a busy public server could have them."""
    shipped = benchlib.PROJECT_ROOT / "models"
    for path in shipped.iterdir():
        if path.suffix in (".keras", ".json") and not path.name.startswith("."):
            shutil.copy2(path, folder / path.name)
    template = json.loads((shipped / "cnn.json").read_text(encoding="utf-8"))
    template.update(shipped=False, command=None, history=template["history"][:3])
    for index in range(count):
        name = f"visitor-model-{index:05d}"
        os.link(folder / "cnn.keras", folder / f"{name}.keras")
        metadata = {**template, "name": name, "owner": f"visitor-{index % 97:04x}",
                    "created": f"2026-11-{1 + index % 28:02d}T{index % 24:02d}:{index % 60:02d}:00+00:00",
                    "test_accuracy": round(0.9 + (index % 97) / 1000, 4)}
        (folder / f"{name}.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def time_listing(folder: Path) -> list[list[object]]:
    from mnist_core import store

    kept_listings = getattr(store, "_listings", {})  # absent before the listing was kept (to compare with that)
    rows = []
    kept_listings.clear()
    started = time.perf_counter()
    entries = store.list_models(folder)
    rows.append(["first listing (reads every file)", f"{(time.perf_counter() - started) * 1000:,.0f}", len(entries)])
    an_hour_ago = time.time() - 3600
    os.utime(folder, (an_hour_ago, an_hour_ago))  # a store nobody changed lately
    store.list_models(folder)
    kept = []
    for _ in range(20):
        started = time.perf_counter()
        entries = store.list_models(folder)
        kept.append((time.perf_counter() - started) * 1000)
    rows.append(["again, folder unchanged (median of 20)", f"{median(kept):,.3f}", len(entries)])
    key = str(folder.resolve())
    if key in kept_listings:
        rescans = []
        for _ in range(5):
            kept_listings[key] = dataclasses.replace(kept_listings[key], trusted_until=0.0)
            started = time.perf_counter()
            store.list_models(folder)
            rescans.append((time.perf_counter() - started) * 1000)
        rows.append([f"files stat'ed again, nothing changed (every {store.LISTING_RECHECK_SECONDS:.0f} s; median of 5)",
                     f"{median(rescans):,.0f}", len(entries)])
    shutil.copy2(folder / "cnn.json", folder / "added-meanwhile.json")
    shutil.copy2(folder / "cnn.keras", folder / "added-meanwhile.keras")
    started = time.perf_counter()
    entries = store.list_models(folder)
    rows.append(["after another process added a model", f"{(time.perf_counter() - started) * 1000:,.0f}", len(entries)])
    (folder / "added-meanwhile.json").unlink()
    (folder / "added-meanwhile.keras").unlink()
    return rows


def time_pages(runs: int) -> list[list[object]]:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(benchlib.PROJECT_ROOT / "app.py"), default_timeout=300)
    app.run()
    app.sidebar.selectbox(key="active_model").set_value("cnn")
    app.run()
    print(f"  (the active-model picker offers {len(app.sidebar.selectbox(key='active_model').options):,} models)")
    rows = []
    for page, path in PAGES.items():
        app.switch_page(path)
        app.run()  # first visit: TensorFlow, the model, the evaluation on the Models page
        if app.exception:
            raise RuntimeError(f"{page}: {[error.message for error in app.exception]}")
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            app.run()
            seconds.append(time.perf_counter() - started)
        rows.append([page, f"{median(seconds):.3f}", f"{max(seconds):.3f}", verdict(median(seconds) <= TARGET_SECONDS)])
    return rows


def time_pages_in_chromium(rounds: int) -> list[list[object]]:
    from bench_startup import CHROMIUM_ARGS
    from benchlib import free_port, start_app, stop_app, wait_for_port
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = start_app(port)  # inherits MNIST_LAB_MODELS_DIR
    seconds: dict[str, list[float]] = {page: [] for page in TITLES}
    try:
        wait_for_port(port, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            finished = '[data-testid="stApp"][data-test-script-state="notRunning"]'
            page.goto(f"http://localhost:{port}/")
            page.wait_for_selector(finished, state="attached", timeout=300_000)
            for round_number in range(rounds + 1):  # the first round is the warm-up: TensorFlow, MNIST, the model
                for name in TITLES:
                    started = time.perf_counter()
                    page.get_by_test_id("stSidebarNav").get_by_role("link", name=LINKS[name]).click()
                    page.get_by_role("heading", name=TITLES[name]).first.wait_for(state="visible", timeout=300_000)
                    page.wait_for_selector(finished, state="attached", timeout=300_000)
                    if round_number:
                        seconds[name].append(time.perf_counter() - started)
                    if page.get_by_test_id("stException").count():
                        raise RuntimeError(f"{name}: {page.get_by_test_id('stException').all_inner_texts()}")
            options = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").first
            options.click()
            shown = page.get_by_role("option").count()  # the picker lists them lazily; at least the first few
            page.keyboard.press("Escape")
            browser.close()
    finally:
        stop_app(server)
    print(f"  (the active-model picker opened with {shown} option(s) drawn)")
    return [[name, f"{median(values):.3f}", f"{max(values):.3f}", verdict(median(values) <= TARGET_SECONDS)]
            for name, values in seconds.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000, help="saved models beside the shipped ones")
    parser.add_argument("--runs", type=int, default=7, help="reruns per page (median)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium measurement")
    args = parser.parse_args()

    print_header(f"A store of {args.models:,} saved models: listing and page runs")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "models"
        folder.mkdir()
        started = time.perf_counter()
        fill_store(folder, args.models)
        print(f"  store filled in {time.perf_counter() - started:.1f} s: "
              f"{len(list(folder.iterdir())):,} files; load now {benchlib.load_average():.2f}")
        print()
        os.environ["MNIST_LAB_MODELS_DIR"] = str(folder)

        print("#### list_models (ms)")
        print()
        print_table(["listing", "ms", "entries"], time_listing(folder))

        print(f"#### Page script runs through AppTest, median and worst of {args.runs} after a first visit (s)")
        print()
        load = benchlib.load_average()
        print_table(["page", "median s", "worst s", f"<= {TARGET_SECONDS} s"], time_pages(args.runs))
        print(f"  load at the start of the page runs: {load:.2f}, at the end: {benchlib.load_average():.2f}")
        print()
        if not args.no_browser:
            print(f"#### Chromium: click on the page's link -> its run finished and its title shown, median and "
                  f"worst of {args.runs} rounds after a first one (s)")
            print()
            load = benchlib.load_average()
            rows = time_pages_in_chromium(args.runs)
            print_table(["page", "median s", "worst s", f"<= {TARGET_SECONDS} s"], rows)
            print(f"  load at the start: {load:.2f}, at the end: {benchlib.load_average():.2f}")


if __name__ == "__main__":
    main()
