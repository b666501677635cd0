"""What the browser tests share: waiting for Streamlit, finding the drawing canvas, drawing, screenshots."""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect
except ImportError:  # conftest skips (or, in CI, fails) every browser test before any of them uses these
    PlaywrightError, expect = Exception, None
else:
    # What a page shows after its script run also waits for Streamlit to fetch the code of each kind of element;
    # on a busy 2-core CI machine that took more than Playwright's default 5 s (a Chinese page's heading, once).
    expect.set_options(timeout=20_000)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS_DIR = PROJECT_ROOT / "docs" / "screenshots"
APP_RUN_TIMEOUT_MS = 60_000  # the first run of a page imports TensorFlow and loads MNIST
MAIN = '[data-testid="stMain"]'


def wait_for_app(page, timeout: int = APP_RUN_TIMEOUT_MS) -> None:
    """Wait until the app is connected and its script run has finished.

    Streamlit 1.67 marks the root `[data-testid="stApp"]` with `data-test-connection-state` (CONNECTED once the
    websocket is up) and `data-test-script-state` ("initial" before the first run, "running", then "notRunning").
    Right after a click the rerun may not have started yet: wait for the expected outcome instead.
    """
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-connection-state="CONNECTED"]', state="attached", timeout=timeout
    )
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached", timeout=timeout
    )


def choose(page, combobox, option: str, attempts: int = 3) -> None:
    """Pick `option` in a select box. The sidebar's training status reruns every few seconds, and a rerun can close
    an open list before the click lands: open it again then. The box is scrolled into view first: a list clicked
    open while Playwright scrolled to it often did not open (tests/e2e/test_ownership.py)."""
    for attempt in range(attempts):
        combobox.scroll_into_view_if_needed()
        combobox.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            break
        except PlaywrightError:
            if attempt == attempts - 1:
                raise
    wait_for_app(page)


def open_page(page, base_url: str, path: str) -> None:
    """Navigate to a page of the app ("/", "/draw", ...) and wait for its first run to finish."""
    page.goto(base_url + path)
    wait_for_app(page)


def exception_messages(page) -> list[str]:
    """Texts of the Streamlit exception boxes on the page ([] when the page ran cleanly)."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def screenshot(page, name: str) -> Path | None:
    """Save docs/screenshots/NAME.png when MNIST_LAB_SCREENSHOTS=1 (for the README); otherwise do nothing."""
    if os.environ.get("MNIST_LAB_SCREENSHOTS") != "1":
        return None
    wait_for_app(page)  # no half-drawn page, no "running" indicator in the picture
    page.mouse.move(1, 1)  # no tooltip of the last button clicked over the page
    page.wait_for_timeout(300)
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- the drawing canvas -----------------------------------------------------------------------------------------


def find_canvas(page, timeout_s: float = 30):
    """The locator of the drawing surface: our canvas component's (widgets/digit_canvas.py), once its script runs.

    It renders in the page inside an open shadow root (Playwright's CSS locators pierce it). Only its own <canvas>
    will do: the Draw page has other canvases (the "Every model" table draws on a larger one), and a stroke on one of
    them would be lost. Before `data-ready` the canvas' script has not run, and a stroke would draw nothing.
    """
    canvas = page.locator(f"{MAIN} .digit-canvas[data-ready] canvas")
    try:
        expect(canvas).to_have_count(1, timeout=timeout_s * 1000)
    except AssertionError:
        shown = " ".join(page.locator(MAIN).inner_text().split())[:300]
        raise AssertionError(f"no drawing canvas ready on the page within {timeout_s} s (found "
                             f"{canvas.count()}); the page shows: {shown!r}") from None
    return canvas


def draw_path(page, canvas, points: list[tuple[float, float]]) -> None:
    """Press, drag through `points` (fractions 0..1 of the canvas box) in small steps, release.

    bounding_box() is in main-page coordinates even inside an iframe, so page.mouse works for both.
    """
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None, "the canvas has no box (hidden?)"

    def to_page(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    page.mouse.move(*to_page(points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*to_page(point), steps=3)
    page.mouse.up()


def vertical_stroke(steps: int = 40) -> list[tuple[float, float]]:
    """A '1': a straight line down the middle from 20% to 80% of the height."""
    return [(0.5, 0.2 + 0.6 * i / steps) for i in range(steps + 1)]


def closed_loop(radius_px: float, canvas_px: float, points: int = 30) -> list[tuple[float, float]]:
    """A '0': a circle around the centre, ending where it started (plus a little overlap to close it)."""
    radius = radius_px / canvas_px
    return [
        (0.5 + radius * math.sin(2 * math.pi * i / points), 0.5 - radius * math.cos(2 * math.pi * i / points))
        for i in range(points + 2)
    ]


PREDICTION = re.compile(r"Prediction:\s*(\d)")


def wait_for_prediction(page, digit: int, timeout_s: float = 30) -> None:
    """Wait until the page shows "Prediction: DIGIT"; on timeout say what it showed instead."""
    shown = page.locator(MAIN).get_by_text(PREDICTION)
    deadline = time.monotonic() + timeout_s
    last_seen: list[str] = []
    while time.monotonic() < deadline:
        last_seen = [text.strip() for text in shown.all_inner_texts()]
        if any(match.group(1) == str(digit) for text in last_seen if (match := PREDICTION.search(text))):
            return
        page.wait_for_timeout(250)
    raise AssertionError(
        f"expected 'Prediction: {digit}' within {timeout_s} s; the page showed {last_seen or 'no prediction'}"
        + (f"; exceptions: {exception_messages(page)}" if exception_messages(page) else "")
    )
