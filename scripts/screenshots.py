"""Take the README's screenshots of every page, desktop and phone, once each page shows what it is for.

Starts its own `streamlit run app.py` on a scratch copy of the shipped models and an empty data folder (so no
model or drawing left by tests shows), drives headless Chromium, and writes docs/screenshots/*.png. Each shot waits
for the page's content: the digit grid's image, the canvas and a drawn digit's answer with its steps, a training
with its curves. Look at every picture before committing it.

Run from the project root (a few minutes; needs Debian's chromium and the playwright package):

    .venv/bin/python scripts/screenshots.py
    .venv/bin/python scripts/screenshots.py --only phone-draw home
    .venv/bin/python scripts/screenshots.py --language zh_Hans     # the Chinese ones, docs/screenshots/*-zh.png

The Chinese shots need a CJK font where Chromium runs (Debian: fonts-noto-cjk; .ci/run installs it), or every
character shows as a box.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT / "tests" / "e2e"))
sys.path.insert(0, str(PROJECT_ROOT))

from e2e_helpers import (  # noqa: E402  (the browser tests' own helpers: one way to draw and wait)
    MAIN,
    draw_path,
    expect,
    find_canvas,
    open_page,
    wait_for_app,
    wait_for_prediction,
)

OUT = PROJECT_ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
SUFFIX = ""  # "-zh" for the Chinese shots (--language zh_Hans)
# What the shots wait for and click, in each language (the app follows the browser's language).
TEXTS = {
    "en": {"epochs": "Epochs", "model_name": "Model name", "start": "Start training", "stop": "Stop training",
           "per_epoch": "Per epoch: training vs validation", "prediction": "Prediction: {digit}",
           "explaining": "Starting the explainer|Computing the saliency"},
    "zh_Hans": {"epochs": "训练轮数", "model_name": "模型名称", "start": "开始训练", "stop": "停止训练",
                "per_epoch": "每轮：训练集对比验证集", "prediction": "预测结果：{digit}",
                "explaining": "正在启动解释进程|正在计算显著性图"},
}
TEXT = TEXTS["en"]


def wait_for_answer(page, digit: int) -> None:
    if TEXT is TEXTS["en"]:
        wait_for_prediction(page, digit)
    else:
        expect(page.locator(MAIN).get_by_text(TEXT["prediction"].format(digit=digit))).to_be_visible()
SEVEN = [(0.28, 0.25), (0.5, 0.24), (0.72, 0.25), (0.62, 0.45), (0.53, 0.62), (0.46, 0.8)]  # a "7", as a mouse draws it


def start_server(scratch: Path) -> tuple[subprocess.Popen, str]:
    models = scratch / "models"
    models.mkdir()
    for path in (PROJECT_ROOT / "models").iterdir():
        if path.suffix in (".keras", ".json", ".tflite"):
            shutil.copy2(path, models / path.name)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "MNIST_LAB_MODELS_DIR": str(models), "MNIST_LAB_DATA_DIR": str(scratch / "userdata"),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.port={port}",
         "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.25)
    process.kill()
    raise SystemExit("the server did not start")


def shoot(page, name: str, height: int | None = None) -> None:
    """Save the window (made `height` tall first: Streamlit scrolls inside the page, so a full-page shot would
    stop at the window's edge)."""
    if height:
        page.set_viewport_size({"width": page.viewport_size["width"], "height": height})
        page.wait_for_timeout(800)  # charts resize to the new window
    wait_for_app(page)
    page.mouse.move(1, 1)
    page.wait_for_timeout(400)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}{SUFFIX}.png"
    page.screenshot(path=str(path))
    print(f"wrote {path}")


def charts_drawn(page, count: int = 1) -> None:
    expect(page.locator(MAIN).locator(".js-plotly-plot .main-svg").nth(count - 1)).to_be_visible()


def home(page, base):
    open_page(page, base, "/")
    shoot(page, "home", 1150)


def dataset(page, base):
    open_page(page, base, "/dataset")
    expect(page.locator(MAIN).locator(".digit-grid img").first).to_be_visible()
    charts_drawn(page, 1)  # the pixel heatmap
    shoot(page, "dataset", 1600)


def draw(page, base):
    open_page(page, base, "/draw")
    draw_path(page, find_canvas(page), SEVEN)
    wait_for_answer(page, 7)
    expect(page.locator(MAIN).get_by_test_id("stImage").nth(4)).to_be_visible()  # the five steps
    # what made it say that: the explainer's worker starts TensorFlow once, then the map comes
    expect(page.locator(MAIN).get_by_text(re.compile(TEXT["explaining"]))).to_have_count(0, timeout=180_000)
    shoot(page, "draw", 1500)


def models(page, base):
    open_page(page, base, "/models")
    charts_drawn(page, 3)
    shoot(page, "models", 1900)


def train(page, base):
    from test_load import set_field, stop_if_running

    open_page(page, base, "/train")
    set_field(page, TEXT["epochs"], 3)
    set_field(page, TEXT["model_name"], "my-first")
    page.get_by_role("button", name=TEXT["start"]).click()
    try:
        # A training in progress with its curves: after its first epoch, before its last.
        expect(page.locator(MAIN).get_by_text(TEXT["per_epoch"])).to_be_visible(timeout=300_000)
        shoot(page, "train", 1500)
    finally:
        if TEXT is TEXTS["en"]:
            stop_if_running(page)
        else:  # the same as stop_if_running, with the Chinese button names
            stop = page.get_by_role("button", name=TEXT["stop"])
            if stop.is_enabled():
                stop.click()
            expect(page.get_by_role("button", name=TEXT["start"])).to_be_enabled(timeout=120_000)


def phone_home(page, base):
    open_page(page, base, "/")
    shoot(page, "phone-home")


def phone_draw(page, base):
    open_page(page, base, "/draw")
    draw_path(page, find_canvas(page), SEVEN)
    wait_for_answer(page, 7)
    shoot(page, "phone-draw", 1300)


SHOTS = {"home": home, "dataset": dataset, "draw": draw, "models": models, "train": train}
PHONE_SHOTS = {"phone-home": phone_home, "phone-draw": phone_draw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=[*SHOTS, *PHONE_SHOTS], help="take only these")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    parser.add_argument("--language", choices=["en", "zh_Hans"], default="en",
                        help="the browser's language (the app follows it): zh_Hans writes NAME-zh.png")
    args = parser.parse_args()
    global SUFFIX, TEXT
    SUFFIX = "-zh" if args.language == "zh_Hans" else ""
    TEXT = TEXTS[args.language]
    locale = "zh-CN" if args.language == "zh_Hans" else "en-US"
    wanted = set(args.only or [*SHOTS, *PHONE_SHOTS])
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="mnist-lab-screenshots-") as scratch:
        server, base = start_server(Path(scratch))
        try:
            with sync_playwright() as playwright:
                expect.set_options(timeout=60_000)
                browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                for shots, viewport, extra in ((SHOTS, DESKTOP, {}), (PHONE_SHOTS, PHONE,
                                                                       {"is_mobile": True, "has_touch": True})):
                    for name, take in shots.items():
                        if name in wanted:
                            context = browser.new_context(viewport=viewport, locale=locale, **extra)
                            take(context.new_page(), base)
                            context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
